#!/usr/bin/env python3
"""Crash safety of training checkpoints on the real gradserve binary: rounds of
`kill -9` at random moments while a client trains (checkpoints every few steps,
plus ModelCheckpoint calls). After each kill every checkpoint file on disk
reads back intact (magic, trailer, index and per-tensor crc32); the restarted
server serves and resumes from a checkpoint whose step is at least the last
one ModelCheckpoint acknowledged.

    training_crash_test.py --gradserve BIN --models-dir configs/models --digits digits.csv.gz
"""

import argparse
import os
import random
import signal
import sys
import threading
import time
import unittest

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_util  # noqa: E402
from grpc_util import triton  # noqa: E402
from training_util import TrainingStub, load_digits, read_checkpoint, set_training  # noqa: E402

ARGS = None
ROUNDS = 5


class CrashTest(unittest.TestCase):
    def test_kill_9_never_corrupts_and_resume_keeps_acknowledged_steps(self):
        x, y = load_digits(ARGS.digits)
        repo = server_util.ModelRepository(ARGS.models_dir, ["digits_mlp"])
        with open(os.path.join(ARGS.models_dir, "digits_mlp", "config.pbtxt")) as f:
            repo.write_config("digits_mlp", set_training(
                f.read(), enabled="true", batch_size=32, checkpoint_every_steps=7,
                keep_checkpoints=3))
        ckpt_dir = os.path.join(repo.model_dir("digits_mlp"), "1", "checkpoints")
        acknowledged = 0  # the highest step ModelCheckpoint returned
        try:
            for round_ in range(ROUNDS):
                server = server_util.GradserveServer(ARGS.gradserve, repo.path)
                server.start()
                stub = TrainingStub(server.grpc_address)
                status = stub.status("digits_mlp")
                self.assertGreaterEqual(status.step, acknowledged,
                                        f"round {round_}: resumed behind an acknowledged step")
                if round_ > 0:
                    self.assertIn("resumed training from", server.log_text())
                client = triton.InferenceServerClient(server.grpc_address)
                inp = triton.InferInput("pixels", [4, 64], "FP32")
                inp.set_data_from_numpy(x[:4])
                self.assertEqual(client.infer("digits_mlp", [inp]).as_numpy("logits").shape,
                                 (4, 10))
                client.close()

                stop = threading.Event()

                def train():
                    rng = np.random.default_rng()
                    while not stop.is_set():
                        rows = rng.integers(0, len(y), 32)
                        try:
                            stub.train("digits_mlp", {"pixels": x[rows], "labels": y[rows]})
                        except grpc.RpcError:
                            return  # the server died under us
                trainers = [threading.Thread(target=train) for _ in range(2)]
                for t in trainers:
                    t.start()
                deadline = time.monotonic() + random.uniform(0.3, 1.5)
                while time.monotonic() < deadline:
                    time.sleep(random.uniform(0.02, 0.2))
                    try:
                        acknowledged = max(acknowledged, stub.checkpoint("digits_mlp").checkpoint.step)
                    except grpc.RpcError:
                        break
                time.sleep(random.uniform(0, 0.05))  # kill mid-step or mid-write
                os.kill(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
                stop.set()
                for t in trainers:
                    t.join()
                stub.close()
                server.kill()
                # Every checkpoint left is whole; temporaries are the only debris.
                names = os.listdir(ckpt_dir)
                finished = [n for n in names if n.endswith(".gsckpt")]
                self.assertTrue(finished, names)
                for name in names:
                    if ".tmp-" in name:
                        continue
                    step, tensors = read_checkpoint(os.path.join(ckpt_dir, name))
                    self.assertIn("dense1/kernel", tensors)
                    self.assertEqual(int(tensors["global_step"]), step)
            print(f"{ROUNDS} kill -9 rounds; last acknowledged step {acknowledged}",
                  file=sys.stderr)
        finally:
            repo.remove()


def main():
    global ARGS
    parser = server_util.add_common_args(argparse.ArgumentParser())
    parser.add_argument("--digits", required=True)
    ARGS, rest = server_util.parse_args(parser)
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
