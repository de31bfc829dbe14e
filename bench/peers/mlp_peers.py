#!/usr/bin/env python3
"""Peer figures for the MLP inference benchmark: 784-512-512-10, ReLU, ReLU, softmax.

Builds the MLP from fixed seeded weights, saves them as .npy files (w1 [784,512], b1,
w2 [512,512], b2, w3 [512,10], b3) so gradserve's C++ benchmark uses identical weights,
and times one forward pass ("a call") in
  * ONNX Runtime: an ONNX model built with the onnx helper API, intra-op threads = T,
    inter-op threads = 1, sequential execution, inputs and outputs bound once
    (IOBinding) so the figure is the engine's, not Python's argument conversion;
  * PyTorch eager: an nn.Module under torch.inference_mode, torch.set_num_threads(T);
and, with --gradserve-bench, reads gradserve's figures from its Google Benchmark
binary (BM_Mlp/batch:B/threads:T) run in the same invocation.

Each configuration warms up, then times single calls until --min-time seconds have
passed (at least MIN_ITERS calls); the figure is the median µs per call. Python peers
pay a few µs of interpreter overhead per call, which matters at batch 1 only.

Run it through bench/peers/run.sh, which provides the packages.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

LAYERS = [784, 512, 512, 10]
MIN_ITERS = 20
WARMUP_S = 0.1


# --------------------------------------------------------------------------- model


def make_weights(seed):
    """He-initialised weights and small biases, float32, keyed w1 b1 w2 b2 w3 b3."""
    rng = np.random.default_rng(seed)
    weights = {}
    for i, (fan_in, fan_out) in enumerate(zip(LAYERS, LAYERS[1:]), start=1):
        weights[f"w{i}"] = (rng.standard_normal((fan_in, fan_out)) *
                            np.sqrt(2.0 / fan_in)).astype(np.float32)
        weights[f"b{i}"] = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
    return weights


def reference(weights, x):
    """float64 NumPy forward pass, the yardstick for both peers."""
    h = x.astype(np.float64)
    for i in range(1, len(LAYERS)):
        h = h @ weights[f"w{i}"] + weights[f"b{i}"]
        if i < len(LAYERS) - 1:
            h = np.maximum(h, 0.0)
    h = np.exp(h - h.max(axis=1, keepdims=True))
    return h / h.sum(axis=1, keepdims=True)


def make_onnx(weights):
    nodes, h = [], "x"
    for i in range(1, len(LAYERS)):
        nodes.append(helper.make_node("MatMul", [h, f"w{i}"], [f"mm{i}"]))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"z{i}"]))
        if i < len(LAYERS) - 1:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i}"]))
            h = f"h{i}"
    nodes.append(helper.make_node("Softmax", [f"z{len(LAYERS) - 1}"], ["probs"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", LAYERS[0]])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", LAYERS[-1]])],
        initializer=[numpy_helper.from_array(v, name) for name, v in weights.items()],
    )
    # Opset 17 / IR 8: old enough for any recent ONNX Runtime, new enough for axis=-1.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class Mlp(torch.nn.Module):
    def __init__(self, weights):
        super().__init__()
        # nn.Linear stores [out, in]; our files are [in, out].
        self.layers = torch.nn.ModuleList()
        for i, (fan_in, fan_out) in enumerate(zip(LAYERS, LAYERS[1:]), start=1):
            layer = torch.nn.Linear(fan_in, fan_out)
            layer.weight.data = torch.from_numpy(weights[f"w{i}"].T.copy())
            layer.bias.data = torch.from_numpy(weights[f"b{i}"].copy())
            self.layers.append(layer)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return torch.softmax(self.layers[-1](x), dim=-1)


# --------------------------------------------------------------------------- timing


def median_us(call, min_time):
    """Median wall time of one call in µs, after a warm-up."""
    deadline = time.perf_counter() + WARMUP_S
    while time.perf_counter() < deadline:
        call()
    samples = []
    deadline = time.perf_counter() + min_time
    while len(samples) < MIN_ITERS or time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e3


def ort_session(model_bytes, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def time_ort(session, x, min_time):
    binding = session.io_binding()
    binding.bind_ortvalue_input("x", ort.OrtValue.ortvalue_from_numpy(x))
    binding.bind_output("probs", "cpu")
    session.run_with_iobinding(binding)
    got = binding.copy_outputs_to_cpu()[0]
    return median_us(lambda: session.run_with_iobinding(binding), min_time), got


def time_torch(module, x, threads, min_time):
    torch.set_num_threads(threads)
    tx = torch.from_numpy(x)
    with torch.inference_mode():
        got = module(tx).numpy()
        return median_us(lambda: module(tx), min_time), got


# --------------------------------------------------------------------------- gradserve


def gradserve_benchmarks(binary, benchmark_filter, env=None):
    """The "benchmarks" entries of a Google Benchmark binary's JSON output for the
    benchmarks matching `benchmark_filter`, 5 repetitions of each."""
    proc = subprocess.run(
        [binary, f"--benchmark_filter={benchmark_filter}", "--benchmark_format=json",
         "--benchmark_repetitions=5", "--benchmark_min_time=0.2"],
        capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {binary} exited {proc.returncode}:\n"
                 f"{proc.stderr}")
    return json.loads(proc.stdout)["benchmarks"]


def median_figures(benchmarks, key, field="real_time"):
    """{key(name): median of `field`} over benchmark entries; key returns None to skip.

    Takes the "median" aggregate where the binary ran repetitions, otherwise the
    median of the plain iteration entries of the same name. real_time is in µs.
    """
    to_us = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    medians, iterations = {}, {}
    for bench in benchmarks:
        k = key(bench.get("run_name", bench["name"]))
        if k is None:
            continue
        value = bench[field]
        if field == "real_time":
            value *= to_us[bench.get("time_unit", "ns")]
        if bench.get("run_type") == "aggregate":
            if bench.get("aggregate_name") == "median":
                medians[k] = value
        else:
            iterations.setdefault(k, []).append(value)
    figures = {k: statistics.median(v) for k, v in iterations.items()}
    figures.update(medians)
    return figures


def gradserve_figures(binary, weights_dir):
    """{(batch, threads): µs} from a Google Benchmark binary's BM_Mlp benchmarks.

    The binary loads the same weights as the peers from `weights_dir`.
    """
    def key(name):
        batch = re.search(r"batch[:_]?(\d+)", name)
        threads = re.search(r"threads[:_]?(\d+)", name)
        return (int(batch.group(1)), int(threads.group(1))) if batch and threads else None

    benchmarks = gradserve_benchmarks(binary, "BM_Mlp",
                                      dict(os.environ, GRADSERVE_MLP_WEIGHTS=weights_dir))
    figures = median_figures(benchmarks, key)
    if not figures:
        sys.exit(f"mlp_peers: no BM_Mlp/batch:B/threads:T benchmarks in {binary}'s output")
    return figures


# --------------------------------------------------------------------------- main


def check(peer, got, want, batch):
    err = float(np.max(np.abs(got - want)))
    if err > 1e-4:
        sys.exit(f"mlp_peers: {peer} output differs from NumPy by {err:.2e} at batch {batch}")


def print_columns(lines):
    """Prints rows of cells (the first is the header), right-aligned in columns."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))


def print_table(rows, with_gradserve):
    if with_gradserve:
        header = ["batch", "threads", "gradserve µs", "ORT µs", "torch µs",
                  "ORT/gradserve", "torch/gradserve"]
    else:
        header = ["batch", "threads", "ORT µs", "torch µs"]
    lines = [header]
    for batch, threads, gs, ort_us, torch_us in rows:
        line = [str(batch), str(threads)]
        if with_gradserve:
            line.append(f"{gs:.1f}" if gs else "-")
        line += [f"{ort_us:.1f}", f"{torch_us:.1f}"]
        if with_gradserve:
            line += [f"{ort_us / gs:.2f}" if gs else "-", f"{torch_us / gs:.2f}" if gs else "-"]
        lines.append(line)
    print_columns(lines)


def int_list(text):
    return [int(v) for v in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "out"),
                        help="where the weights (.npy) and mlp.onnx are written")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    parser.add_argument("--batches", type=int_list, default=[1, 64, 256])
    parser.add_argument("--threads", type=int_list, default=[1, 2])
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds of timed calls per configuration")
    parser.add_argument("--gradserve-bench",
                        help="gradserve's Google Benchmark binary with BM_Mlp benchmarks")
    args = parser.parse_args()

    weights = make_weights(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, value in weights.items():
        np.save(os.path.join(args.out_dir, f"{name}.npy"), value)
    model_bytes = make_onnx(weights).SerializeToString()
    with open(os.path.join(args.out_dir, "mlp.onnx"), "wb") as f:
        f.write(model_bytes)
    print(f"mlp_peers: weights (seed {args.seed}) and mlp.onnx in {args.out_dir}")
    print(f"mlp_peers: onnxruntime {ort.__version__}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs")

    # Must precede any parallel torch work; the benchmark measures intra-op threads.
    torch.set_num_interop_threads(1)
    module = Mlp(weights).eval()
    gradserve = gradserve_figures(args.gradserve_bench, args.out_dir) if args.gradserve_bench else {}

    rng = np.random.default_rng(args.seed + 1)
    inputs = {b: rng.standard_normal((b, LAYERS[0])).astype(np.float32) for b in args.batches}
    expected = {b: reference(weights, x) for b, x in inputs.items()}
    configs = [(b, t) for t in args.threads for b in args.batches]

    # One peer at a time: ORT's and torch's idle workers spin for a while after a call,
    # and on a small machine two spinning pools distort each other's figures.
    ort_us, torch_us = {}, {}
    for threads in args.threads:
        session = ort_session(model_bytes, threads)
        for batch in args.batches:
            ort_us[batch, threads], got = time_ort(session, inputs[batch], args.min_time)
            check("ORT", got, expected[batch], batch)
        del session  # stops its worker threads
    for batch, threads in configs:
        torch_us[batch, threads], got = time_torch(module, inputs[batch], threads, args.min_time)
        check("torch", got, expected[batch], batch)

    rows = [(b, t, gradserve.get((b, t)), ort_us[b, t], torch_us[b, t])
            for b, t in sorted(configs)]
    print()
    print_table(rows, bool(args.gradserve_bench))


if __name__ == "__main__":
    main()
