"""Where models run: instance_group KIND_GPU / KIND_CPU and --device, end to end.

The real gradserve binary serves digits_mlp twice: as configured (KIND_CPU) and
as mlp_gpu (KIND_GPU). On a machine with a GPU, mlp_gpu loads onto cuda:0,
answers within 1e-4 of the CPU copy on fresh random inputs, trains (a Train
call runs its step on the GPU), and /metrics reports the GPU's memory. Without
one, mlp_gpu fails to load with the reason in the repository index and in its
inference error, while the CPU copy serves. --device=cuda:0 without a GPU, or a
malformed --device, stops the server at start with exit status 2 and the
reason.

CUDA graphs (optimization { cuda { graphs: true } }, Note [Graph batch sizes]
in serving/servable.h): a KIND_CPU copy with graphs loads, says in the log that
they have no effect there, and answers as the CPU model does; a graph_spec
batch size above max_batch_size keeps its model from loading, with the field
in the repository index. With a GPU, a KIND_GPU copy with graphs for batch
sizes 1, 8 and 32 records them at warm-up, answers within 1e-4 of the CPU for
batches of those sizes, of sizes padded up to them and of a size above them
all, counts only the real rows in its statistics, and after Train steps its
graph runs still agree with a run that uses no graph.
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
CPU_GRAPHS, BAD_GRAPHS, GPU_GRAPHS = "mlp_cpu_graphs", "mlp_bad_graphs", "mlp_gpu_graphs"
GRAPH_SIZES = (1, 8, 32)
SEED = int.from_bytes(os.urandom(4), "little")
RNG = np.random.default_rng(SEED)


def setUpModule():
    global REPO, SERVER, HAS_GPU
    print(f"random seed {SEED}", file=sys.stderr)
    REPO = server_util.ModelRepository(ARGS.models_dir, [CPU_MODEL])
    REPO.add_model(CPU_MODEL, as_name=GPU_MODEL)
    with open(os.path.join(REPO.model_dir(CPU_MODEL), "config.pbtxt")) as f:
        config = f.read()
    gpu_config = config.replace("kind: KIND_CPU", "kind: KIND_GPU, gpus: [0]")
    REPO.write_config(GPU_MODEL, renamed(gpu_config, GPU_MODEL))
    specs = ", ".join(f"{{ batch_size: {b} }}" for b in GRAPH_SIZES)
    for name, text in (
            (CPU_GRAPHS, config + "optimization { cuda { graphs: true } }\n"),
            (BAD_GRAPHS, config + "optimization { cuda { graphs: true "
                                  "graph_spec [ { batch_size: 100 } ] } }\n"),
            (GPU_GRAPHS, gpu_config + f"optimization {{ cuda {{ graphs: true "
                                      f"graph_spec [ {specs} ] }} }}\n")):
        REPO.add_model(CPU_MODEL, as_name=name)
        REPO.write_config(name, renamed(text, name))
    SERVER = server_util.start_module_server(ARGS.gradserve, REPO)
    HAS_GPU = "models run on cuda:0" in SERVER.log_text()


def renamed(config, name):
    return config.replace(f'name: "{CPU_MODEL}"', f'name: "{name}"')


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


def answer(model, x):
    status, body = infer(model, x)
    if status != 200:
        raise AssertionError(f"{model}: HTTP {status}: {body}")
    return probabilities(body)


def inference_count(model):
    status, body = SERVER.rest("GET", f"/v2/models/{model}/versions/1/stats")
    if status != 200:
        raise AssertionError(f"{model} stats: HTTP {status}: {body}")
    return body["model_stats"][0]["inference_count"]


def train(model, x):
    status, body = SERVER.rest("POST", f"/v2/models/{model}/train", {"inputs": [
        {"name": "pixels", "shape": list(x.shape), "datatype": "FP32",
         "data": x.ravel().tolist()},
        {"name": "labels", "shape": [len(x)], "datatype": "INT64",
         "data": RNG.integers(0, 10, len(x)).tolist()}]})
    if status != 200:
        raise AssertionError(f"{model} train: HTTP {status}: {body}")


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


class CudaGraphsTest(unittest.TestCase):
    def test_graphs_on_the_cpu_have_no_effect(self):
        self.assertIn(f"model '{CPU_GRAPHS}' version 1: optimization.cuda.graphs has no effect "
                      "on the CPU", SERVER.log_text())
        rows_sent = 0
        for rows in (1, 5, 64):
            x = RNG.uniform(0, 16, (rows, 64)).astype(np.float32)
            np.testing.assert_allclose(answer(CPU_GRAPHS, x), answer(CPU_MODEL, x), rtol=1e-5,
                                       atol=1e-6)
            rows_sent += rows
        self.assertEqual(inference_count(CPU_GRAPHS), rows_sent)  # warm-ups are not counted

    def test_graph_spec_above_max_batch_size_fails_to_load(self):
        status, index = SERVER.rest("POST", "/v2/repository/index")
        self.assertEqual(status, 200, index)
        entries = {m["name"]: m for m in index}
        self.assertEqual(entries[BAD_GRAPHS]["state"], "UNAVAILABLE")
        self.assertIn("optimization.cuda.graph_spec batch_size 100 is outside "
                      "[1, max_batch_size = 64]", entries[BAD_GRAPHS]["reason"])
        status, body = infer(BAD_GRAPHS, RNG.uniform(0, 16, (1, 64)).astype(np.float32))
        self.assertNotEqual(status, 200, body)

    def test_gpu_graphs_match_the_cpu_before_and_after_training(self):
        if not HAS_GPU:
            self.skipTest("no GPU: " + re.search(r"no GPU: (.*)\)", SERVER.log_text()).group(1))
        line = re.search(rf"model '{GPU_GRAPHS}' version 1: .*CUDA graphs.*", SERVER.log_text())
        self.assertIsNotNone(line, "no CUDA graphs line in the log")
        sizes = ", ".join(str(b) for b in GRAPH_SIZES)
        self.assertTrue(line.group(0).endswith(f"CUDA graphs recorded for batch sizes {sizes}"),
                        line.group(0))
        rows_sent = 0
        # Graph sizes; sizes padded to 8 and 32; a size above them all (no graph).
        for rows in GRAPH_SIZES + (3, 20, 64):
            x = RNG.uniform(0, 16, (rows, 64)).astype(np.float32)
            gpu = answer(GPU_GRAPHS, x)
            self.assertEqual(gpu.shape, (rows, 10))
            np.testing.assert_allclose(gpu, answer(CPU_MODEL, x), rtol=1e-4, atol=1e-5,
                                       err_msg=f"a batch of {rows}")
            rows_sent += rows
        self.assertEqual(inference_count(GPU_GRAPHS), rows_sent)  # padding is not counted

        # Train steps update the weights the graphs read: afterwards a graph
        # run (8 rows), a padded one (5 rows -> 8) and a run of 40 rows (above
        # every size, no graph) agree on the rows they share.
        x = RNG.uniform(0, 16, (40, 64)).astype(np.float32)
        before = answer(GPU_GRAPHS, x[:8])
        for _ in range(2):
            train(GPU_GRAPHS, x[:8])
        graph = answer(GPU_GRAPHS, x[:8])
        padded = answer(GPU_GRAPHS, x[:5])
        plain = answer(GPU_GRAPHS, x)
        self.assertGreater(np.abs(graph - before).max(), 0, "the graph runs the old weights")
        np.testing.assert_allclose(graph, plain[:8], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(padded, plain[:5], rtol=1e-4, atol=1e-5)


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
