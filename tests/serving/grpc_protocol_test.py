#!/usr/bin/env python3
"""The gRPC protocol of the real gradserve binary, end to end over loopback,
with the official Triton client (tritonclient.grpc) and its raw stubs: health
and metadata, model readiness, config, statistics, the repository index, and
ModelInfer's answers (typed and raw contents, checked against a float64 NumPy
forward pass of the saved weights and against `gradserve-model run`) and
every rejection with its status code and message.

    grpc_protocol_test.py --gradserve BIN --models-dir configs/models \
        --gradserve-model BIN [unittest args]
"""

import argparse
import os
import struct
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import server_util  # noqa: E402
from grpc_util import (Stub, code_of, int_param, outputs_of, raw_request,  # noqa: E402
                       reference_run, service_pb2, triton, typed_request,
                       InferenceServerException)

ARGS = None
REPO = None
SERVER = None
SEED = int.from_bytes(os.urandom(4), "little")
MLP = "digits_mlp"
CNN = "digits_cnn"  # used by the statistics test only, so its counts are exact
BROKEN = "broken_mlp"  # a copy of digits_mlp whose saved_model.pb is garbage


def setUpModule():
    global REPO, SERVER
    print(f"random seed {SEED}", file=sys.stderr)
    REPO = server_util.ModelRepository(ARGS.models_dir, [MLP, CNN])
    REPO.add_model(MLP, as_name=BROKEN)
    with open(os.path.join(REPO.model_dir(BROKEN), "1", "saved_model.pb"), "wb") as f:
        f.write(b"\x0a\xff\xff\xff\x0fnot a saved model")
    SERVER = server_util.start_module_server(ARGS.gradserve, REPO)


def tearDownModule():
    server_util.stop_module_server(SERVER, REPO)


# -- an independent reference: the checkpoint read here, the MLP in float64 ---

def _varint(b, i):
    value, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def _fields(b):
    """(field number, value) of a protobuf message: ints or bytes."""
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            value, i = b[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        out.append((key >> 3, value))
    return out


_CKPT_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


def read_checkpoint(path):
    """{name: array} of a gradserve checkpoint (graph/checkpoint.h, Note
    [Checkpoint layout]): the trailer locates the CheckpointIndex proto."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"GSCKPT01" and data[-8:] == b"GSCKPT01", path
    offset, size, crc = struct.unpack("<QQI", data[-28:-8])
    index = data[offset:offset + size]
    assert zlib.crc32(index) == crc, "index crc"
    tensors = {}
    for field, entry in _fields(index):
        if field != 1:
            continue
        e = dict(_fields(entry))
        dims = []
        for f, dim in _fields(e.get(3, b"")):
            if f == 2:
                dims.append(dict(_fields(dim)).get(1, 0))
        start, n = e.get(4, 0), e.get(5, 0)
        raw = data[start:start + n]
        assert zlib.crc32(raw) == e.get(6, 0), e[1]
        tensors[e[1].decode()] = np.frombuffer(raw, _CKPT_DTYPES[e[2]]).reshape(dims)
    return tensors


def mlp_forward_float64(version_dir, x):
    """digits_mlp (graph/example_models.h) in float64: logits, probabilities."""
    w = {k: v.astype(np.float64) for k, v in
         read_checkpoint(os.path.join(version_dir, "variables", "variables.ckpt")).items()}
    h = x.astype(np.float64)
    h = np.maximum(h @ w["dense1/kernel"] + w["dense1/bias"], 0)
    h = np.maximum(h @ w["dense2/kernel"] + w["dense2/bias"], 0)
    logits = h @ w["dense3/kernel"] + w["dense3/bias"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits, e / e.sum(axis=1, keepdims=True)


class ProtocolTest(unittest.TestCase):
    def setUp(self):
        self.client = triton.InferenceServerClient(SERVER.grpc_address)
        self.stub = Stub(SERVER.grpc_address)
        self.rng = np.random.default_rng(SEED)

    def tearDown(self):
        self.client.close()
        self.stub.close()

    def assertRejected(self, call, code, *fragments):
        """`call()` fails with `code`, its message holding every fragment."""
        with self.assertRaises((InferenceServerException, Exception)) as cm:
            call()
        error = cm.exception
        message = error.message() if isinstance(error, InferenceServerException) else \
            error.details()
        self.assertEqual(code_of(error), code, message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message


class ServerTest(ProtocolTest):
    def test_live_ready_and_metadata(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        meta = self.client.get_server_metadata()
        self.assertEqual(meta.name, "gradserve")
        self.assertTrue(meta.version)
        for ext in ("model_repository", "model_configuration", "statistics",
                    "binary_tensor_data"):
            self.assertIn(ext, meta.extensions)


class ModelInfoTest(ProtocolTest):
    def test_model_ready(self):
        self.assertTrue(self.client.is_model_ready(MLP))
        self.assertTrue(self.client.is_model_ready(MLP, "1"))
        self.assertFalse(self.client.is_model_ready(MLP, "2"))  # no such version
        self.assertFalse(self.client.is_model_ready("no_such_model"))
        self.assertFalse(self.client.is_model_ready(BROKEN))  # its load failed
        self.assertRejected(lambda: self.client.is_model_ready(MLP, "one"),
                            "INVALID_ARGUMENT", "'one' is not a positive integer")

    def test_model_metadata(self):
        meta = self.client.get_model_metadata(MLP)
        self.assertEqual(meta.name, MLP)
        self.assertEqual(list(meta.versions), ["1"])
        self.assertEqual(meta.platform, "gradserve_savedmodel")
        self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in meta.inputs],
                         [("pixels", "FP32", [-1, 64])])
        self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in meta.outputs],
                         [("logits", "FP32", [-1, 10]), ("probabilities", "FP32", [-1, 10])])
        self.assertEqual(self.client.get_model_metadata(MLP, "1").name, MLP)
        self.assertRejected(lambda: self.client.get_model_metadata("no_such_model"),
                            "NOT_FOUND", "unknown model 'no_such_model'")
        self.assertRejected(lambda: self.client.get_model_metadata(MLP, "3"),
                            "NOT_FOUND", "no version 3")
        self.assertRejected(lambda: self.client.get_model_metadata(BROKEN),
                            "UNAVAILABLE", BROKEN)

    def test_model_config(self):
        config = self.client.get_model_config(MLP).config
        self.assertEqual(config.name, MLP)
        self.assertEqual(config.max_batch_size, 64)
        self.assertEqual(config.dynamic_batching.max_queue_delay_microseconds, 500)
        self.assertEqual([(t.name, list(t.dims)) for t in config.input], [("pixels", [64])])
        self.assertEqual([(t.name, list(t.dims)) for t in config.output],
                         [("logits", [10]), ("probabilities", [10])])
        self.assertEqual(config.input[0].data_type, triton.model_config_pb2.TYPE_FP32)
        self.assertRejected(lambda: self.client.get_model_config("no_such_model"),
                            "NOT_FOUND", "no_such_model")

    def test_repository_index(self):
        every = {(m.name, m.version): m for m in self.client.get_model_repository_index().models}
        self.assertEqual(sorted(every), [(BROKEN, "1"), (CNN, "1"), (MLP, "1")])
        self.assertEqual(every[(MLP, "1")].state, "READY")
        self.assertEqual(every[(CNN, "1")].state, "READY")
        broken = every[(BROKEN, "1")]
        self.assertEqual(broken.state, "UNAVAILABLE")
        self.assertIn(os.path.join(BROKEN, "1"), broken.reason)
        ready = self.stub.stub.RepositoryIndex(service_pb2.RepositoryIndexRequest(ready=True))
        self.assertEqual(sorted((m.name, m.version, m.state) for m in ready.models),
                         [(CNN, "1", "READY"), (MLP, "1", "READY")])


class StatisticsTest(ProtocolTest):
    def stats(self):
        s = self.client.get_inference_statistics(CNN, "1").model_stats
        self.assertEqual(len(s), 1)
        return s[0]

    def test_counts_grow_with_requests(self):
        before = self.stats()
        self.assertEqual((before.name, before.version), (CNN, "1"))
        # Warm-up runs are not traffic.
        self.assertEqual(before.inference_count, 0)
        self.assertEqual(before.execution_count, 0)
        self.assertEqual(before.inference_stats.success.count, 0)
        for k in range(1, 4):
            images = self.rng.uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
            inp = triton.InferInput("images", list(images.shape), "FP32")
            inp.set_data_from_numpy(images)
            self.client.infer(CNN, [inp])
            s = self.stats()
            st = s.inference_stats
            self.assertEqual(st.success.count, k)
            self.assertEqual(s.inference_count, 2 * k)  # rows
            self.assertEqual(s.execution_count, k)  # sequential: one batch each
            self.assertEqual(st.queue.count, k)
            self.assertEqual(st.compute_infer.count, k)
            self.assertGreater(st.queue.ns, 0)
            self.assertGreater(st.compute_infer.ns, 0)
            self.assertGreaterEqual(st.success.ns, st.queue.ns + st.compute_infer.ns)
            self.assertGreater(s.last_inference, 0)
            self.assertEqual(st.fail.count, 0)
        # A rejected request counts as a failure, not as an inference.
        bad = triton.InferInput("images", [1, 8, 8, 2], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 8, 8, 2), np.float32))
        self.assertRaises(InferenceServerException, self.client.infer, CNN, [bad])
        s = self.stats()
        self.assertEqual(s.inference_stats.fail.count, 1)
        self.assertEqual(s.inference_count, 6)
        # Without a name: every ready model.
        every = self.client.get_inference_statistics().model_stats
        self.assertEqual(sorted((m.name, m.version) for m in every), [(CNN, "1"), (MLP, "1")])
        self.assertRejected(lambda: self.client.get_inference_statistics("no_such_model"),
                            "NOT_FOUND", "no_such_model")


class InferTest(ProtocolTest):
    def test_typed_and_raw_agree_with_references(self):
        x = self.rng.uniform(0, 1, (5, 64)).astype(np.float32)
        # Raw contents, through the official client.
        inp = triton.InferInput("pixels", [5, 64], "FP32")
        inp.set_data_from_numpy(x)
        raw_result = self.client.infer(MLP, [inp], request_id="raw-1")
        raw = raw_result.get_response()
        self.assertEqual((raw.model_name, raw.model_version, raw.id), (MLP, "1", "raw-1"))
        self.assertEqual(len(raw.raw_output_contents), 2)
        # Typed contents, through the raw stub.
        typed = self.stub.infer(typed_request(MLP, {"pixels": x}, request_id="typed-1"))
        self.assertEqual(typed.id, "typed-1")
        self.assertEqual(len(typed.raw_output_contents), 0)
        self.assertEqual(len(typed.outputs[0].contents.fp32_contents), 50)
        got_raw, got_typed = outputs_of(raw), outputs_of(typed)
        self.assertEqual([o.name for o in raw.outputs], ["logits", "probabilities"])
        for name in ("logits", "probabilities"):
            self.assertEqual(got_raw[name].shape, (5, 10))
            self.assertEqual(got_raw[name].dtype, np.float32)
            np.testing.assert_array_equal(got_raw[name], got_typed[name], err_msg=name)
            np.testing.assert_array_equal(got_raw[name], raw_result.as_numpy(name))
        # The same model in one in-process Session::Run (gradserve-model run).
        version_dir = os.path.join(REPO.model_dir(MLP), "1")
        ref = reference_run(ARGS.gradserve_model, version_dir, x)
        for name in ("logits", "probabilities"):
            np.testing.assert_allclose(got_raw[name], ref[name], rtol=1e-6, atol=1e-6,
                                       err_msg=name)
        # An independent float64 forward pass of the saved weights.
        logits64, probs64 = mlp_forward_float64(version_dir, x)
        np.testing.assert_allclose(got_raw["logits"], logits64, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got_raw["probabilities"], probs64, atol=1e-5)
        np.testing.assert_allclose(got_raw["probabilities"].sum(axis=1), 1.0, atol=1e-5)
        # Response parameters: the weights generation (untrained online: 0)
        # and the rows of the batch the request ran in (alone here).
        for r in (raw, typed):
            self.assertEqual(int_param(r, "weights_generation"), 0)
            self.assertEqual(int_param(r, "batch_size"), 5)

    def test_requested_outputs_subset(self):
        x = self.rng.uniform(0, 1, (3, 64)).astype(np.float32)
        full = outputs_of(self.stub.infer(raw_request(MLP, {"pixels": x})))
        inp = triton.InferInput("pixels", [3, 64], "FP32")
        inp.set_data_from_numpy(x)
        result = self.client.infer(MLP, [inp],
                                   outputs=[triton.InferRequestedOutput("probabilities")])
        self.assertEqual([o.name for o in result.get_response().outputs], ["probabilities"])
        self.assertIsNone(result.as_numpy("logits"))
        np.testing.assert_array_equal(result.as_numpy("probabilities"), full["probabilities"])
        # Requested order is kept.
        both = self.stub.infer(typed_request(MLP, {"pixels": x},
                                             outputs=["probabilities", "logits"]))
        self.assertEqual([o.name for o in both.outputs], ["probabilities", "logits"])
        np.testing.assert_array_equal(outputs_of(both)["logits"], full["logits"])

    def test_explicit_version(self):
        x = self.rng.uniform(0, 1, (1, 64)).astype(np.float32)
        r = self.stub.infer(raw_request(MLP, {"pixels": x}, version="1"))
        self.assertEqual(r.model_version, "1")


class RejectionTest(ProtocolTest):
    """Each bad request gets its status code and a message naming the fault;
    the server keeps serving."""

    def infer(self, request):
        return lambda: self.stub.infer(request)

    def x(self, rows=2, cols=64, dtype=np.float32):
        return self.rng.uniform(0, 1, (rows, cols)).astype(dtype)

    def test_unknown_model_and_version(self):
        inp = triton.InferInput("pixels", [1, 64], "FP32")
        inp.set_data_from_numpy(self.x(1))
        self.assertRejected(lambda: self.client.infer("no_such_model", [inp]),
                            "NOT_FOUND", "unknown model 'no_such_model'")
        self.assertRejected(lambda: self.client.infer(MLP, [inp], model_version="9"),
                            "NOT_FOUND", f"model '{MLP}' has no version 9")
        self.assertRejected(lambda: self.client.infer(MLP, [inp], model_version="v1"),
                            "INVALID_ARGUMENT", "'v1' is not a positive integer")
        self.assertRejected(lambda: self.client.infer(MLP, [inp], model_version="0"),
                            "INVALID_ARGUMENT", "'0' is not a positive integer")
        self.assertRejected(lambda: self.client.infer(BROKEN, [inp]),
                            "UNAVAILABLE", f"model '{BROKEN}' has no ready version")

    def test_bad_inputs(self):
        self.assertRejected(self.infer(raw_request(MLP, {"pixels": self.x(dtype=np.float64)})),
                            "INVALID_ARGUMENT", "input 'pixels' is FP64",
                            f"model '{MLP}' expects FP32")
        self.assertRejected(self.infer(raw_request(MLP, {"pixels": self.x(cols=63)})),
                            "INVALID_ARGUMENT", "input 'pixels' has shape", "expects")
        self.assertRejected(self.infer(raw_request(MLP, {"pixels": self.x(rows=65)})),
                            "INVALID_ARGUMENT", "batch of 65", "max_batch_size = 64")
        self.assertRejected(self.infer(raw_request(MLP, {"pixels": self.x()[0]})),
                            "INVALID_ARGUMENT", "input 'pixels' has shape")
        self.assertRejected(self.infer(raw_request(MLP, {"image": self.x()})),
                            "INVALID_ARGUMENT", "unknown input 'image'",
                            "its inputs are: pixels")
        self.assertRejected(self.infer(raw_request(MLP, {})),
                            "INVALID_ARGUMENT", "missing input 'pixels'")
        self.assertRejected(self.infer(raw_request(MLP, [("pixels", self.x()),
                                                         ("pixels", self.x())])),
                            "INVALID_ARGUMENT", "input 'pixels' is given twice")
        self.assertRejected(self.infer(typed_request(MLP, [("pixels", self.x()),
                                                           ("pixels", self.x())])),
                            "INVALID_ARGUMENT", "input 'pixels' is given twice")

    def test_bad_contents(self):
        # Raw bytes that do not match the shape.
        r = raw_request(MLP, {"pixels": self.x()})
        r.raw_input_contents[0] = r.raw_input_contents[0][:-4]
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "input 'pixels'",
                            "512 bytes", "hold 508 bytes")
        # Typed contents whose element count does not match the shape.
        r = typed_request(MLP, {"pixels": self.x()})
        del r.inputs[0].contents.fp32_contents[-1]
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "input 'pixels'",
                            "128 elements", "fp32_contents holds 127")
        # Typed contents in the list of another datatype.
        r = typed_request(MLP, {"pixels": self.x()})
        r.inputs[0].contents.int_contents.append(1)
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "contents.fp32_contents",
                            "contents.int_contents is set")
        # More raw_input_contents than inputs.
        r = raw_request(MLP, {"pixels": self.x()})
        r.raw_input_contents.append(b"\0" * 4)
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "1 inputs but 2 raw_input_contents")
        # Raw and typed contents mixed.
        r = typed_request(MLP, {"pixels": self.x()})
        r.raw_input_contents.append(self.x().tobytes())
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "input 'pixels' has typed contents",
                            "use one form")
        # A datatype the protocol does not know; a negative dimension.
        r = raw_request(MLP, {"pixels": self.x()})
        r.inputs[0].datatype = "FLOAT"
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "unknown datatype 'FLOAT'")
        r = raw_request(MLP, {"pixels": self.x()})
        r.inputs[0].shape[0] = -2
        self.assertRejected(self.infer(r), "INVALID_ARGUMENT", "negative dimension -2")

    def test_bad_requested_outputs(self):
        self.assertRejected(self.infer(raw_request(MLP, {"pixels": self.x()}, outputs=["scores"])),
                            "INVALID_ARGUMENT", "unknown output 'scores'",
                            "its outputs are: logits, probabilities")
        self.assertRejected(self.infer(raw_request(MLP, {"pixels": self.x()},
                                                   outputs=["logits", "logits"])),
                            "INVALID_ARGUMENT", "output 'logits' is requested twice")

    def test_server_still_serves_after_rejections(self):
        self.test_bad_inputs()
        x = self.x(4)
        r = outputs_of(self.stub.infer(raw_request(MLP, {"pixels": x})))
        self.assertEqual(r["probabilities"].shape, (4, 10))


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--gradserve-model", required=True, help="the gradserve-model tool")
    ARGS, rest = server_util.parse_args(parser)
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
