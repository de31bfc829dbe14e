#!/usr/bin/env python3
"""The Python client (clients/python, package gradserve_client) end to end:
pip-installed into a fresh virtual environment, against the real gradserve.

    python_client_test.py --gradserve BIN --models-dir configs/models \
        --source-dir REPO_ROOT [--venv-cache DIR]

Two halves in this one file:
  - the driver (this interpreter, standard library only): makes a venv
    without system site packages, pip-installs a copy of clients/python into
    it (pip builds the package, generating its protobuf modules with
    grpcio-tools: needs PyPI or a wheel mirror, uses pip's cache), starts
    gradserve on a temporary copy of digits_mlp (explicit model control, so
    load/unload work), then runs the checks and examples/classify_digits.py
    with the venv's python;
  - the checks (`--checks ADDRESS`, run by the venv's python): unittest cases
    calling every Client method, with only gradserve_client, grpcio, protobuf
    and numpy importable.

The venv is made afresh in a temporary folder and removed, unless
--venv-cache DIR is given: then it is kept under DIR, named by a hash of
clients/python, the three .proto files and the interpreter, and reused while
they are unchanged (a warm run needs no network).
"""

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

MODEL = "digits_mlp"
PROTOS = ("proto/model_config.proto", "proto/grpc_service.proto", "proto/training.proto")
_SKIP = ("build", "dist", "__pycache__")


# ---------------------------------------------------------------- the driver

def _package_files(package_dir):
    """clients/python's source files, relative, sorted (no build outputs)."""
    files = []
    for folder, dirs, names in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP and not d.endswith(".egg-info"))
        for name in names:
            if name.endswith((".pyc", "_pb2.py", "_pb2_grpc.py")):
                continue
            files.append(os.path.relpath(os.path.join(folder, name), package_dir))
    return sorted(files)


def _venv_key(source_dir, package_dir):
    h = hashlib.sha256(sys.version.encode() + sys.executable.encode())
    for base, rel in ([(package_dir, f) for f in _package_files(package_dir)]
                      + [(source_dir, p) for p in PROTOS]):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(base, rel), "rb") as f:
            h.update(f.read() + b"\0")
    return h.hexdigest()[:16]


def _make_venv(path, source_dir, package_dir):
    """A venv at `path` with gradserve_client installed from a copy of
    clients/python (the source tree is left untouched by the build)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    python = os.path.join(path, "bin", "python")
    with tempfile.TemporaryDirectory(prefix="gradserve-client-src-") as tmp:
        copy = os.path.join(tmp, "python")
        shutil.copytree(package_dir, copy, ignore=shutil.ignore_patterns(
            *_SKIP, "*.egg-info", "*.pyc", "*_pb2.py", "*_pb2_grpc.py"))
        env = dict(os.environ, GRADSERVE_PROTO_ROOT=source_dir, PIP_DISABLE_PIP_VERSION_CHECK="1")
        subprocess.run([python, "-m", "pip", "install", "--quiet", copy], check=True, env=env)
    print(f"venv with gradserve_client made in {time.monotonic() - started:.1f} s: {path}",
          flush=True)
    return python


def _venv_python(args, package_dir, scratch):
    """The venv's python: cached under --venv-cache, else fresh in scratch."""
    if not args.venv_cache:
        return _make_venv(os.path.join(scratch, "venv"), args.source_dir, package_dir)
    path = os.path.join(args.venv_cache, "python-client-venv-" +
                        _venv_key(args.source_dir, package_dir))
    os.makedirs(args.venv_cache, exist_ok=True)
    # Made in place (a venv cannot move), marked complete last; the lock keeps
    # two runs from building it at once.
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(path, ".complete")):
            print(f"reusing {path}", flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
            _make_venv(path, args.source_dir, package_dir)
            open(os.path.join(path, ".complete"), "w").close()
    return os.path.join(path, "bin", "python")


def drive(args):
    source_dir = os.path.abspath(args.source_dir)
    args.source_dir = source_dir
    package_dir = os.path.join(source_dir, "clients", "python")
    digits = os.path.join(source_dir, "configs", "datasets", "digits", "digits.csv.gz")
    sys.path.insert(0, os.path.join(source_dir, "tests", "serving"))
    from server_util import GradserveServer, ModelRepository

    scratch = tempfile.mkdtemp(prefix="gradserve-python-client-")
    repo = None
    try:
        python = _venv_python(args, package_dir, scratch)
        repo = ModelRepository(args.models_dir, [MODEL])
        flags = ["--model-control-mode=explicit", f"--load-model={MODEL}"]
        with GradserveServer(args.gradserve, repo.path, flags) as server:
            server.start()
            address = server.grpc_address
            env = dict(os.environ, PYTHONNOUSERSITE="1")
            env.pop("PYTHONPATH", None)
            checks = subprocess.run([python, os.path.abspath(__file__), "--checks", address,
                                     "--digits", digits], env=env)
            example = subprocess.run(
                [python, os.path.join(package_dir, "examples", "classify_digits.py"),
                 "--url", address, "--data", digits, "--train"],
                env=env, stdout=subprocess.PIPE, text=True)
            print(example.stdout, end="")
            if checks.returncode != 0 or example.returncode != 0:
                server.dump_log()
        accuracy = re.search(r"accuracy ([0-9.]+) on", example.stdout)
        ok = (checks.returncode == 0 and example.returncode == 0 and accuracy is not None
              and float(accuracy.group(1)) > 0.9 and "train: loss" in example.stdout)
        print("python_client_test:", "PASSED" if ok else "FAILED", flush=True)
        return 0 if ok else 1
    finally:
        if repo is not None:
            repo.remove()
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- the checks
# Run by the venv's python (--checks): gradserve_client, numpy and the
# standard library only.

ADDRESS = None
DIGITS = None


def load_digits():
    import gzip

    import numpy as np
    with gzip.open(DIGITS, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return (table[:, :64] / 16.0).astype(np.float32), table[:, 64]


class ClientChecks(unittest.TestCase):
    """Every Client method against the server; numbered: they run in order
    (training changes the weights; unloading comes last)."""

    @classmethod
    def setUpClass(cls):
        from gradserve_client import Client
        cls.x, cls.y = load_digits()
        cls.client = Client(ADDRESS, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def assertCode(self, code, call, *args, **kwargs):
        from gradserve_client import GradserveError
        with self.assertRaises(GradserveError) as raised:
            call(*args, **kwargs)
        self.assertEqual(raised.exception.code, code, raised.exception.message)
        self.assertTrue(raised.exception.message)
        return raised.exception

    def test_00_clean_environment(self):
        # The venv sees no system site packages: no Triton client beside ours.
        import importlib.util
        self.assertIsNone(importlib.util.find_spec("tritonclient"))
        self.assertIsNone(importlib.util.find_spec("grpc_tools"))  # build-time only

    def test_01_health(self):
        self.assertTrue(self.client.live())
        self.assertTrue(self.client.ready())
        self.assertTrue(self.client.ready(MODEL))
        self.assertTrue(self.client.ready(MODEL, version="1"))
        self.assertFalse(self.client.ready("no_such_model"))

    def test_02_metadata(self):
        from gradserve_client import TensorInfo
        server = self.client.server_metadata()
        self.assertEqual(server.name, "gradserve")
        self.assertIn("training", server.extensions)
        m = self.client.metadata(MODEL)
        self.assertEqual((m.name, m.versions, m.platform), (MODEL, ("1",), "gradserve_savedmodel"))
        self.assertEqual(m.inputs, (TensorInfo("pixels", "FP32", (-1, 64)),))
        self.assertEqual(m.outputs, (TensorInfo("logits", "FP32", (-1, 10)),
                                     TensorInfo("probabilities", "FP32", (-1, 10))))
        self.assertEqual(self.client.metadata(MODEL, version="1"), m)
        self.assertCode("NOT_FOUND", self.client.metadata, "no_such_model")
        self.assertCode("NOT_FOUND", self.client.metadata, MODEL, version="7")

    def test_03_infer_digits(self):
        import numpy as np
        probabilities, logits = [], []
        for start in range(0, len(self.x), 64):
            r = self.client.infer(MODEL, {"pixels": self.x[start:start + 64]}, request_id="r1")
            self.assertEqual(sorted(r), ["logits", "probabilities"])
            self.assertEqual((r.model_name, r.model_version, r.id), (MODEL, "1", "r1"))
            self.assertIn("weights_generation", r.parameters)
            probabilities.append(r["probabilities"])
            logits.append(r["logits"])
        p, z = np.concatenate(probabilities), np.concatenate(logits)
        self.assertEqual((p.dtype, p.shape), (np.float32, (len(self.x), 10)))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
        # probabilities = softmax(logits), recomputed in float64.
        z64 = z.astype(np.float64)
        e = np.exp(z64 - z64.max(axis=1, keepdims=True))
        np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
        accuracy = float(np.mean(p.argmax(axis=1) == self.y))
        print(f"\n  accuracy {accuracy:.4f} on {len(self.y)} digits", file=sys.stderr)
        self.assertGreater(accuracy, 0.9)
        # One output asked for; the arrays are writable.
        r = self.client.infer(MODEL, {"pixels": self.x[:3]}, outputs=["probabilities"])
        self.assertEqual(list(r), ["probabilities"])
        np.testing.assert_allclose(r["probabilities"], p[:3], rtol=1e-6)
        r["probabilities"][0, 0] = 0.0

    def test_04_infer_errors(self):
        import numpy as np
        x = self.x[:2]
        self.assertCode("NOT_FOUND", self.client.infer, "no_such_model", {"pixels": x})
        self.assertCode("NOT_FOUND", self.client.infer, MODEL, {"pixels": x}, version="7")
        self.assertCode("INVALID_ARGUMENT", self.client.infer, MODEL, {"pixels": x[:, :63]})
        self.assertCode("INVALID_ARGUMENT", self.client.infer, MODEL,
                        {"pixels": x.astype(np.float64)})
        self.assertCode("INVALID_ARGUMENT", self.client.infer, MODEL, {"image": x})
        self.assertCode("INVALID_ARGUMENT", self.client.infer, MODEL, {"pixels": x},
                        outputs=["no_such_output"])
        with self.assertRaises(TypeError):  # no protocol datatype: caught before sending
            self.client.infer(MODEL, {"pixels": x.astype(np.complex64)})

    def test_05_tensor_round_trip(self):
        # Every datatype through the raw form and the typed form, decoded by
        # the code infer() uses (tensors.decode_outputs on a ModelInferResponse).
        import numpy as np
        from gradserve_client import GradserveError, tensors
        from gradserve_client._proto import grpc_service_pb2 as pb
        rng = np.random.default_rng(7)
        arrays = {"BOOL": rng.random((2, 3)) > 0.5, "FP16": rng.random((4,)).astype(np.float16),
                  "FP32": rng.random((2, 2)).astype(np.float32),
                  "FP64": rng.random((3, 1)), "BYTES": np.array([[b"ab", b""], [b"\x00z", b"xyz"]],
                                                                dtype=object)}
        for bits in (8, 16, 32, 64):
            for kind in ("int", "uint"):
                dtype = np.dtype(f"{kind}{bits}")
                info = np.iinfo(dtype)
                arrays[f"{kind.upper()}{bits}"] = np.array([[info.min, 0, 1, info.max]], dtype)
        raw, typed = pb.ModelInferResponse(), pb.ModelInferResponse()
        fields = {"BOOL": "bool_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
                  "INT64": "int64_contents", "UINT64": "uint64_contents", "BYTES": "bytes_contents"}
        for datatype, a in arrays.items():
            got_type, shape, data = tensors.encode(a)
            self.assertEqual((got_type, shape), (datatype, a.shape))
            raw.outputs.add(name=datatype, datatype=datatype, shape=shape)
            raw.raw_output_contents.append(data)
            if datatype != "FP16":
                field = fields.get(datatype, "int_contents" if datatype.startswith("INT")
                                   else "uint_contents")
                t = typed.outputs.add(name=datatype, datatype=datatype, shape=shape)
                getattr(t.contents, field).extend(a.ravel().tolist())
        for response in (raw, pb.ModelInferResponse.FromString(raw.SerializeToString()), typed):
            decoded = tensors.decode_outputs(response)
            for name, array in decoded.items():
                expected = arrays[name]
                self.assertEqual(array.dtype, expected.dtype, name)
                np.testing.assert_array_equal(array, expected, err_msg=name)
        # str elements encode as UTF-8; BF16 (the high half of an FP32) widens
        # exactly to float32.
        self.assertEqual(tensors.encode(np.array(["é"]))[2], b"\x02\x00\x00\x00\xc3\xa9")
        values = np.array([1.0, -2.5, 0.15625, 65536.0], np.float32)
        bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
        np.testing.assert_array_equal(tensors.decode("b", "BF16", [2, 2], bf16),
                                      values.reshape(2, 2))
        # Malformed: bytes that do not fit the shape; an unknown datatype.
        bad = pb.ModelInferResponse()
        bad.outputs.add(name="o", datatype="FP32", shape=[3])
        bad.raw_output_contents.append(b"\0" * 8)
        with self.assertRaises(GradserveError) as raised:
            tensors.decode_outputs(bad)
        self.assertEqual(raised.exception.code, "INTERNAL")
        with self.assertRaises(GradserveError) as raised:
            tensors.decode("o", "COMPLEX64", [1], b"\0" * 8)
        self.assertEqual(raised.exception.code, "UNIMPLEMENTED")

    def test_06_train(self):
        import numpy as np
        before = self.client.training_status(MODEL)
        self.assertTrue(before.enabled, before.disabled_reason)
        self.assertEqual((before.optimizer, before.batch_size), ("adam", 32))
        r = self.client.train(MODEL, self.x[:32], self.y[:32], request_id="t1")
        self.assertEqual((r.model_name, r.model_version, r.id), (MODEL, "1", "t1"))
        self.assertEqual(r.step, before.step + 1)
        self.assertGreater(r.weights_generation, before.weights_generation)
        self.assertEqual(r.examples_in_step, 32)
        self.assertTrue(np.isfinite(r.loss) and r.loss >= 0, r.loss)
        # The dict form, naming the train signature's inputs.
        r2 = self.client.train(MODEL, {"pixels": self.x[32:64], "labels": self.y[32:64]},
                               version="1")
        self.assertEqual(r2.step, r.step + 1)
        after = self.client.training_status(MODEL)
        self.assertEqual((after.step, after.weights_generation), (r2.step, r2.weights_generation))
        self.assertEqual(after.steps_applied, before.steps_applied + 2)
        self.assertEqual(after.last_loss, r2.loss)
        # Predictions now use the new weights.
        p = self.client.infer(MODEL, {"pixels": self.x[:4]})
        self.assertEqual(p.parameters["weights_generation"], r2.weights_generation)
        # Rejections.
        self.assertCode("INVALID_ARGUMENT", self.client.train, MODEL, self.x[:2], np.array([3, 10]))
        self.assertCode("INVALID_ARGUMENT", self.client.train, MODEL, self.x[:2], self.y[:3])
        self.assertCode("INVALID_ARGUMENT", self.client.train, MODEL, {"pixels": self.x[:2]})
        self.assertCode("NOT_FOUND", self.client.train, "no_such_model", {"pixels": self.x[:2]},
                        self.y[:2])
        with self.assertRaises(ValueError):
            self.client.train(MODEL, {"pixels": self.x[:2], "labels": self.y[:2]}, self.y[:2])
        self.assertCode("NOT_FOUND", self.client.training_status, "no_such_model")

    def test_07_checkpoint_rollback_export(self):
        ckpt = self.client.checkpoint(MODEL)
        status = self.client.training_status(MODEL)
        self.assertEqual((ckpt.step, ckpt.weights_generation),
                         (status.step, status.weights_generation))
        self.assertTrue(os.path.isfile(ckpt.path), ckpt.path)
        self.assertGreater(ckpt.time_unix_seconds, 0)
        self.assertEqual(status.last_checkpoint, ckpt)
        self.assertEqual(status.checkpoints[0].name, ckpt.name)
        self.client.train(MODEL, self.x[64:96], self.y[64:96])
        back = self.client.rollback(MODEL, ckpt.name)
        self.assertEqual((back.restored.name, back.step), (ckpt.name, ckpt.step))
        self.assertGreater(back.weights_generation, ckpt.weights_generation)
        newest = self.client.training_status(MODEL).checkpoints[0]
        self.assertEqual(self.client.rollback(MODEL).restored, newest)  # "": the newest
        self.assertCode("NOT_FOUND", self.client.rollback, MODEL, "no-such-checkpoint")
        exported = self.client.export(MODEL)
        self.assertEqual(exported.exported_version, 2)
        self.assertTrue(os.path.isdir(exported.path), exported.path)
        self.assertCode("ALREADY_EXISTS", self.client.export, MODEL, export_version=2)

    def test_08_repository(self):
        import numpy as np
        from gradserve_client import ModelState
        self.assertIn(ModelState(MODEL, "1", "READY", ""), self.client.repository_index())
        self.assertEqual(self.client.repository_index(ready_only=True)[0].name, MODEL)
        self.client.unload(MODEL)
        self.assertFalse(self.client.ready(MODEL))
        error = self.assertCode("UNAVAILABLE", self.client.infer, MODEL, {"pixels": self.x[:1]})
        self.assertIn(MODEL, error.message)
        self.client.load(MODEL)
        self.assertTrue(self.client.ready(MODEL))
        # The reload serves the highest version: the one exported above.
        r = self.client.infer(MODEL, {"pixels": self.x[:1]})
        self.assertEqual(r.model_version, "2")
        self.assertAlmostEqual(float(np.sum(r["probabilities"])), 1.0, places=5)
        self.assertCode("NOT_FOUND", self.client.load, "no_such_model")

    def test_09_connection(self):
        from gradserve_client import Client, GradserveError
        with Client(ADDRESS) as client:
            self.assertTrue(client.live())
        with self.assertRaises(Exception):  # closed: grpc's ValueError
            client.live()
        with Client("127.0.0.1:1", timeout=5) as client:
            with self.assertRaises(GradserveError) as raised:
                client.live()
            self.assertEqual(raised.exception.code, "UNAVAILABLE")
            self.assertEqual(raised.exception.status_code.name, "UNAVAILABLE")

    def test_10_private_descriptor_pool(self):
        # The generated modules keep out of protobuf's default pool, so a
        # second copy of the `inference` messages (tritonclient's, registered
        # as "grpc_service.proto") loads beside them: simulated here.
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from gradserve_client._proto import grpc_service_pb2, model_config_pb2
        default = descriptor_pool.Default()
        with self.assertRaises(KeyError):
            default.FindMessageTypeByName("inference.ModelInferRequest")
        for module, name in ((model_config_pb2, "model_config.proto"),
                             (grpc_service_pb2, "grpc_service.proto")):
            fd = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
            fd.name = name
            fd.dependency[:] = [d.replace("proto/", "") for d in fd.dependency]
            default.AddSerializedFile(fd.SerializeToString())
        theirs = message_factory.GetMessageClass(
            default.FindMessageTypeByName("inference.ModelInferRequest"))
        ours = grpc_service_pb2.ModelInferRequest(model_name=MODEL)
        self.assertIsNot(theirs, grpc_service_pb2.ModelInferRequest)
        self.assertEqual(theirs.FromString(ours.SerializeToString()).model_name, MODEL)
        self.assertTrue(self.client.live())


def run_checks(address, digits):
    global ADDRESS, DIGITS
    ADDRESS, DIGITS = address, digits
    suite = unittest.TestLoader().loadTestsFromTestCase(ClientChecks)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", metavar="ADDRESS",
                        help="(internal) run the checks against this gRPC address")
    parser.add_argument("--digits", help="(with --checks) digits.csv.gz")
    parser.add_argument("--gradserve", help="the gradserve binary")
    parser.add_argument("--models-dir", help="the example model repository (configs/models)")
    parser.add_argument("--source-dir", help="the repository's root")
    parser.add_argument("--venv-cache", help="keep and reuse the venv under this folder")
    args = parser.parse_args()
    if args.checks:
        return run_checks(args.checks, args.digits)
    if not (args.gradserve and args.models_dir and args.source_dir):
        parser.error("--gradserve, --models-dir and --source-dir are required")
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
