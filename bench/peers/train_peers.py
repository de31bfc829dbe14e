#!/usr/bin/env python3
"""Peer figures for the training-step benchmark: PyTorch (CPU, eager) beside gradserve.

The models, as bench/train_bench.cc builds them in gradserve:
  * mlp: 784-512-512-10, ReLU hidden layers;
  * cnn: 28x28x1 -> conv 3x3 32 (no padding), ReLU -> maxpool 2 -> conv 3x3 64,
    ReLU -> maxpool 2 -> flatten (1600) -> dense 10;
loss = mean cross-entropy of the logits and int64 labels in [0,10); Glorot-uniform
kernels, zero biases; SGD with learning rate 0.01, or Adam with Keras's defaults
(lr 1e-3, betas 0.9 / 0.999, eps 1e-7), PyTorch's default optimizer implementation.

One step is zero_grad + forward + loss + backward + optimizer step on a fixed random
batch, timed like mlp_peers.py: warm-up, then single steps until --min-time seconds
have passed (at least MIN_ITERS); the figure is the median µs per step, with
torch.set_num_threads(T) and one inter-op thread. With --gradserve-bench, gradserve's
figures come from its Google Benchmark binary (BM_Train{Mlp,Cnn}/{sgd,adam}/batch:B/
threads:T) run in the same invocation, with its step's heap peak (step_peak_MB).

Run it through bench/peers/run.sh train, which provides the packages.
"""

import argparse
import os
import re

import numpy as np
import torch

from mlp_peers import gradserve_benchmarks, median_figures, median_us, print_columns

CLASSES = 10
# (model, optimizer, batch, threads) measured by default: the set.
CONFIGS = ([("mlp", opt, b, t) for opt in ("sgd", "adam") for b in (64, 256) for t in (1, 2)] +
           [("cnn", "adam", 64, t) for t in (1, 2)])


def make_model(name):
    if name == "mlp":
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, CLASSES))
    else:
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(1600, CLASSES))
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return model


def make_optimizer(name, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)


def time_torch_step(model_name, optimizer_name, batch, threads, min_time, seed):
    """(median µs per step, first loss, last loss)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = make_model(model_name)
    optimizer = make_optimizer(optimizer_name, model.parameters())
    rng = np.random.default_rng(seed)
    shape = (batch, 784) if model_name == "mlp" else (batch, 1, 28, 28)
    x = torch.from_numpy(rng.uniform(-1, 1, shape).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, CLASSES, batch, dtype=np.int64))
    losses = []

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())  # no .item() inside the timed step

    us = median_us(step, min_time)
    return us, float(losses[0]), float(losses[-1])


def gradserve_train_figures(binary):
    """{(model, optimizer, batch, threads): (µs, step peak MB)} from train_bench."""
    def key(name):
        m = re.match(r"BM_Train(\w+)/(\w+)/batch:(\d+)/threads:(\d+)", name)
        return (m.group(1).lower(), m.group(2), int(m.group(3)), int(m.group(4))) if m else None

    benchmarks = gradserve_benchmarks(binary, "BM_Train")
    times = median_figures(benchmarks, key)
    peaks = median_figures(benchmarks, key, "step_peak_MB")
    return {k: (times[k], peaks.get(k)) for k in times}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds of timed steps per configuration")
    parser.add_argument("--gradserve-bench",
                        help="gradserve's train_bench binary (BM_Train* benchmarks)")
    args = parser.parse_args()

    print(f"train_peers: torch {torch.__version__}, {os.cpu_count()} CPUs")
    # Must precede any parallel torch work; the benchmark measures intra-op threads.
    torch.set_num_interop_threads(1)
    gradserve = gradserve_train_figures(args.gradserve_bench) if args.gradserve_bench else {}

    header = ["model", "optimizer", "batch", "threads", "gradserve µs", "torch µs",
              "torch/gradserve", "gradserve step peak MB", "torch loss first→last"]
    lines = [header]
    for model, opt, batch, threads in CONFIGS:
        torch_us, first, last = time_torch_step(model, opt, batch, threads, args.min_time,
                                                args.seed)
        gs_us, gs_mb = gradserve.get((model, opt, batch, threads), (None, None))
        lines.append([model, opt, str(batch), str(threads),
                      f"{gs_us:.0f}" if gs_us else "-", f"{torch_us:.0f}",
                      f"{torch_us / gs_us:.2f}" if gs_us else "-",
                      f"{gs_mb:.2f}" if gs_mb is not None else "-",
                      f"{first:.3f}→{last:.3f}"])
    print()
    print_columns(lines)


if __name__ == "__main__":
    main()
