#!/usr/bin/env python3
"""Online training under load on the real gradserve binary.

Drift recovery: digits_mlp trained only on the digits 0-4 (make-example-models
on that subset) is served; a client streams Train calls with examples of all
ten digits while other clients keep predicting. Accuracy on held-out 5-9
(measured through ModelInfer) must rise from near 0 to >= 90% with no failed
predict request.

Consistency: while one client trains (a step per call) and checkpoints after
every step, others predict; every predict response must equal, within float32
rounding, the float64 recomputation of the model with the weights of the
generation it reports (read from that generation's checkpoint file). A batch
that saw half-updated weights, or reported the wrong generation, would differ
by far more than rounding: consecutive generations' outputs differ by >= 100x
the tolerance, which the test also checks.

    training_online_test.py --gradserve BIN --models-dir configs/models
        --make-example-models BIN --digits digits.csv.gz
"""

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import threading
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_util  # noqa: E402
from grpc_util import triton  # noqa: E402
from training_util import (TrainingStub, load_digits, mlp_logits, read_checkpoint,  # noqa: E402
                           set_training)

ARGS = None


def infer_input(x):
    inp = triton.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return inp


class Predictors:
    """`n` threads predicting rows of `x` until stop(); counts failures and
    keeps (generation, inputs, logits) samples when `keep` is set."""

    def __init__(self, address, x, n=2, keep=False, rows=4):
        self.address, self.x, self.keep, self.rows = address, x, keep, rows
        self.failures, self.count, self.samples = [], 0, []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]
        for t in self.threads:
            t.start()

    def run(self, seed):
        client = triton.InferenceServerClient(self.address)
        rng = np.random.default_rng(seed)
        while not self.done.is_set():
            x = self.x[rng.integers(0, len(self.x), self.rows)]
            try:
                result = client.infer("digits_mlp", [infer_input(x)])
                generation = result.get_response().parameters["weights_generation"].int64_param
                with self.lock:
                    self.count += 1
                    if self.keep:
                        self.samples.append((generation, x, result.as_numpy("logits")))
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(repr(e))
        client.close()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()


class OnlineTrainingTest(unittest.TestCase):
    def setUp(self):
        self.repo = server_util.ModelRepository(ARGS.models_dir)
        self.x, self.y = load_digits(ARGS.digits)

    def tearDown(self):
        self.repo.remove()

    def accuracy(self, client, x, y):
        logits = np.concatenate([  # max_batch_size 64
            client.infer("digits_mlp", [infer_input(x[i:i + 64])]).as_numpy("logits")
            for i in range(0, len(x), 64)])
        return float(np.mean(np.argmax(logits, axis=1) == y))

    def test_drift_recovery(self):
        # The model of digits 0-4 only, from fresh initial weights.
        with tempfile.TemporaryDirectory() as tmp:
            subset = os.path.join(tmp, "digits_0_4.csv.gz")
            with gzip.open(ARGS.digits, "rt") as f, gzip.open(subset, "wt") as out:
                out.writelines(line for line in f if line.strip() and int(line.split(",")[-1]) < 5)
            subprocess.run([ARGS.make_example_models, "--out", self.repo.path, "--models",
                            "digits_mlp", "--digits", subset], check=True,
                           stdout=subprocess.DEVNULL)
        with open(os.path.join(ARGS.models_dir, "digits_mlp", "config.pbtxt")) as f:
            self.repo.write_config("digits_mlp", f.read())  # the shipped config: it trains
        rng = np.random.default_rng()
        order = rng.permutation(len(self.y))
        held, stream = order[:360], order[360:]
        hi = held[self.y[held] >= 5]
        lo = held[self.y[held] < 5]
        with server_util.GradserveServer(ARGS.gradserve, self.repo.path) as server:
            server.start()
            client = triton.InferenceServerClient(server.grpc_address)
            stub = TrainingStub(server.grpc_address)
            start = self.accuracy(client, self.x[hi], self.y[hi])
            self.assertLess(start, 0.1, "the 0-4 model already knows 5-9")
            predictors = Predictors(server.grpc_address, self.x[held])
            try:
                history = [start]
                for epoch in range(40):
                    for i in range(0, len(stream), 32):
                        rows = stream[i:i + 32]
                        stub.train("digits_mlp", {"pixels": self.x[rows], "labels": self.y[rows]})
                    history.append(self.accuracy(client, self.x[hi], self.y[hi]))
                    if history[-1] >= 0.9:
                        break
                    stream = stream[rng.permutation(len(stream))]
            finally:
                predictors.stop()
            print(f"accuracy on held-out 5-9 by epoch: {[round(a, 3) for a in history]}; "
                  f"{predictors.count} predictions during training", file=sys.stderr)
            self.assertGreaterEqual(history[-1], 0.9, history)
            self.assertGreaterEqual(self.accuracy(client, self.x[lo], self.y[lo]), 0.9,
                                    "it forgot 0-4")
            self.assertEqual(predictors.failures, [])
            self.assertGreater(predictors.count, 50)
            stub.close()
            client.close()

    def test_every_prediction_matches_its_generation(self):
        self.repo.add_model("digits_mlp")
        with open(os.path.join(ARGS.models_dir, "digits_mlp", "config.pbtxt")) as f:
            config = f.read()
        # A large learning rate: every step moves the outputs far more than
        # float32 rounding. No cadence checkpoints; the test takes its own.
        self.repo.write_config("digits_mlp", set_training(
            config, enabled="true", batch_size=32, max_queue_delay_microseconds=0,
            keep_checkpoints=1000, optimizer="{ adam { learning_rate: 0.01 } }"))
        steps = 30
        with server_util.GradserveServer(ARGS.gradserve, self.repo.path) as server:
            server.start()
            stub = TrainingStub(server.grpc_address)
            checkpoints = {0: stub.checkpoint("digits_mlp").checkpoint.path}
            predictors = Predictors(server.grpc_address, self.x, n=3, keep=True)
            rng = np.random.default_rng()
            try:
                for _ in range(steps):
                    rows = rng.integers(0, len(self.y), 32)
                    r = stub.train("digits_mlp", {"pixels": self.x[rows], "labels": self.y[rows]})
                    c = stub.checkpoint("digits_mlp").checkpoint
                    self.assertEqual(c.weights_generation, r.weights_generation)
                    checkpoints[r.weights_generation] = c.path
            finally:
                predictors.stop()
            stub.close()
        self.assertEqual(predictors.failures, [])
        weights = {g: read_checkpoint(p)[1] for g, p in checkpoints.items()}
        seen = {}
        for generation, x, logits in predictors.samples:
            self.assertIn(generation, weights)
            want = mlp_logits(weights[generation], x)
            np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4,
                                       err_msg=f"generation {generation}")
            seen[generation] = seen.get(generation, 0) + 1
        print(f"{len(predictors.samples)} predictions over {len(seen)} generations checked",
              file=sys.stderr)
        self.assertGreaterEqual(len(seen), steps // 3, seen)
        # The check has teeth: neighbouring generations differ by far more
        # than the tolerance on the same input.
        probe = self.x[:16]
        for g in range(steps):
            gap = np.max(np.abs(mlp_logits(weights[g + 1], probe) - mlp_logits(weights[g], probe)))
            self.assertGreater(gap, 1e-2, f"generations {g} and {g + 1} look alike")


def main():
    global ARGS
    parser = server_util.add_common_args(argparse.ArgumentParser())
    parser.add_argument("--make-example-models", required=True)
    parser.add_argument("--digits", required=True)
    ARGS, rest = server_util.parse_args(parser)
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
