"""Where models run: instance_group KIND_GPU / KIND_CPU and --device, end to end.

The real gradserve binary serves digits_mlp twice: as configured (KIND_CPU) and
as mlp_gpu (KIND_GPU). On a machine with a GPU, mlp_gpu loads onto cuda:0,
answers within 1e-4 of the CPU copy on fresh random inputs, trains (a Train
call runs its step on the GPU), and /metrics reports the GPU's memory. Without
one, mlp_gpu fails to load with the reason in the repository index and in its
inference error, while the CPU copy serves. --device=cuda:0 without a GPU, or a
malformed --device, stops the server at start with exit status 2 and the
reason.
"""

import os
import re
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import server_util  # noqa: E402

ARGS, UNITTEST_ARGV = server_util.parse_args()
CPU_MODEL, GPU_MODEL = "digits_mlp", "mlp_gpu"
SEED = int.from_bytes(os.urandom(4), "little")
RNG = np.random.default_rng(SEED)


def setUpModule():
    global REPO, SERVER, HAS_GPU
    print(f"random seed {SEED}", file=sys.stderr)
    REPO = server_util.ModelRepository(ARGS.models_dir, [CPU_MODEL])
    REPO.add_model(CPU_MODEL, as_name=GPU_MODEL)
    with open(os.path.join(REPO.model_dir(CPU_MODEL), "config.pbtxt")) as f:
        config = f.read()
    REPO.write_config(GPU_MODEL, config.replace(f'name: "{CPU_MODEL}"', f'name: "{GPU_MODEL}"')
                      .replace("kind: KIND_CPU", "kind: KIND_GPU, gpus: [0]"))
    SERVER = server_util.start_module_server(ARGS.gradserve, REPO)
    HAS_GPU = "models run on cuda:0" in SERVER.log_text()


def tearDownModule():
    server_util.stop_module_server(SERVER, REPO)


def infer(model, x):
    status, body = SERVER.rest("POST", f"/v2/models/{model}/infer", {"inputs": [
        {"name": "pixels", "shape": list(x.shape), "datatype": "FP32",
         "data": x.ravel().tolist()}]})
    return status, body


def probabilities(body):
    out = body["outputs"][0]
    return np.array(out["data"], np.float64).reshape(out["shape"])


class DeviceTest(unittest.TestCase):
    def test_the_cpu_copy_serves_either_way(self):
        status, body = infer(CPU_MODEL, RNG.uniform(0, 16, (3, 64)).astype(np.float32))
        self.assertEqual(status, 200, body)

    def test_gpu_model_without_a_gpu_fails_with_the_reason(self):
        if HAS_GPU:
            self.skipTest("this machine has a GPU")
        status, index = SERVER.rest("POST", "/v2/repository/index")
        entries = {m["name"]: m for m in index}
        self.assertEqual(entries[GPU_MODEL]["state"], "UNAVAILABLE")
        self.assertIn("asks for a GPU (instance_group KIND_GPU), but there is none",
                      entries[GPU_MODEL]["reason"])
        status, body = infer(GPU_MODEL, RNG.uniform(0, 16, (2, 64)).astype(np.float32))
        self.assertIn(status, (400, 503), body)
        self.assertIn("asks for a GPU", body["error"])

    def test_gpu_model_matches_the_cpu_and_trains(self):
        if not HAS_GPU:
            self.skipTest("no GPU: " + re.search(r"no GPU: (.*)\)", SERVER.log_text()).group(1))
        self.assertRegex(SERVER.log_text(), rf"model '{GPU_MODEL}' version 1 .*nodes on cuda:0")
        for rows in (1, 7, 64):
            x = RNG.uniform(0, 16, (rows, 64)).astype(np.float32)
            s_cpu, cpu = infer(CPU_MODEL, x)
            s_gpu, gpu = infer(GPU_MODEL, x)
            self.assertEqual((s_cpu, s_gpu), (200, 200), (cpu, gpu))
            np.testing.assert_allclose(probabilities(gpu), probabilities(cpu), rtol=1e-4,
                                       atol=1e-5)
        x = RNG.uniform(0, 16, (8, 64)).astype(np.float32)
        before = probabilities(infer(GPU_MODEL, x)[1])
        status, trained = SERVER.rest("POST", f"/v2/models/{GPU_MODEL}/train", {"inputs": [
            {"name": "pixels", "shape": [8, 64], "datatype": "FP32", "data": x.ravel().tolist()},
            {"name": "labels", "shape": [8], "datatype": "INT64",
             "data": RNG.integers(0, 10, 8).tolist()}]})
        self.assertEqual(status, 200, trained)
        after = probabilities(infer(GPU_MODEL, x)[1])
        self.assertGreater(np.abs(after - before).max(), 0, "the step changed nothing")
        with urllib.request.urlopen(f"http://{SERVER.url('metrics')}/metrics") as r:
            metrics = r.read().decode()
        used = re.search(r'gradserve_device_memory_used_bytes\{device="cuda:0"\} (\S+)', metrics)
        self.assertIsNotNone(used, "no device memory metric")
        self.assertGreater(float(used.group(1)), 0)


class DeviceFlagTest(unittest.TestCase):
    def run_server(self, *flags):
        return subprocess.run([ARGS.gradserve, f"--model-repository={REPO.path}",
                               "--address=127.0.0.1", "--grpc-port=0", "--http-port=0",
                               "--metrics-port=0", *flags], capture_output=True, text=True,
                              timeout=30)

    def test_malformed_device_is_refused(self):
        for flag, reason in (("--device=tpu:0", "expected auto, cpu or cuda:N"),
                             ("--device=cuda:x", "must be an integer >= 0"),
                             ("--gpu-matmul-precision=fp8", "float32, tf32, bfloat16 or float16")):
            r = self.run_server(flag)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(reason, r.stderr)

    def test_missing_gpu_is_refused(self):
        r = self.run_server("--device=cuda:63")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--device=cuda:63: no such GPU", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=UNITTEST_ARGV)
