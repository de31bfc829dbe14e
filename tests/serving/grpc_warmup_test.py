#!/usr/bin/env python3
"""config.pbtxt model_warmup on the real gradserve binary: warm-up requests from
random data, zeros and a raw file load the version READY; a warm-up whose file
has the wrong size (or which names too large a batch) fails that version's load
with a reason naming the warm-up, while the server and the other models serve."""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_util  # noqa: E402
from grpc_util import triton  # noqa: E402

ARGS = None
BASE = """name: "{name}"
max_batch_size: 8
dynamic_batching {{ max_queue_delay_microseconds: 100 }}
"""
WARMUP = """model_warmup [
  {{ name: "random" batch_size: 4 count: 2
     inputs {{ key: "pixels" value: {{ data_type: TYPE_FP32 dims: [64] random_data: true }} }} }},
  {{ name: "zeros" batch_size: 1
     inputs {{ key: "pixels" value: {{ data_type: TYPE_FP32 dims: [64] zero_data: true }} }} }},
  {{ name: "file" batch_size: {rows}
     inputs {{ key: "pixels" value: {{ data_type: TYPE_FP32 dims: [64] input_data_file: "pixels.bin" }} }} }}
]
"""


class WarmupTest(unittest.TestCase):
    def test_warmups_run_and_a_bad_one_fails_only_its_model(self):
        repo = server_util.ModelRepository(ARGS.models_dir)
        try:
            for name, rows, file_rows in (("good", 2, 2), ("bad_file", 2, 3), ("too_big", 9, 9)):
                repo.add_model("digits_mlp", as_name=name)
                os.makedirs(os.path.join(repo.model_dir(name), "warmup"))
                np.random.default_rng().random((file_rows, 64), dtype=np.float32).tofile(
                    os.path.join(repo.model_dir(name), "warmup", "pixels.bin"))
                repo.write_config(name, BASE.format(name=name) + WARMUP.format(rows=rows))
            with server_util.GradserveServer(ARGS.gradserve, repo.path) as server:
                server.start()
                client = triton.InferenceServerClient(server.grpc_address)
                states = {m.name: (m.state, m.reason)
                          for m in client.get_model_repository_index().models}
                self.assertEqual(states["good"], ("READY", ""))
                self.assertEqual(states["bad_file"][0], "UNAVAILABLE")
                self.assertIn("model_warmup 'file'", states["bad_file"][1])
                self.assertIn("raw contents hold 768 bytes", states["bad_file"][1])
                self.assertEqual(states["too_big"][0], "UNAVAILABLE")
                self.assertIn("batch_size 9 exceeds max_batch_size 8", states["too_big"][1])
                # Warm-up is not traffic: the statistics start at zero.
                stats = client.get_inference_statistics("good").model_stats[0]
                self.assertEqual(stats.execution_count, 0)
                self.assertEqual(stats.inference_stats.success.count, 0)
                self.assertTrue(client.is_server_ready())
                client.close()
        finally:
            repo.remove()


def main():
    global ARGS
    ARGS, rest = server_util.parse_args()
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
