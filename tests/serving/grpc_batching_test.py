#!/usr/bin/env python3
"""Dynamic batching of the real gradserve binary over loopback gRPC: 64
concurrent clients each get exactly their own rows back, batches of more than
one request really form, a full queue answers RESOURCE_EXHAUSTED at once, and
a request whose deadline passes while queued is dropped before it runs.

    grpc_batching_test.py --gradserve BIN --models-dir configs/models [unittest args]
"""

import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import server_util  # noqa: E402
from grpc_util import (Stub, digits_rows, grpc, int_param, outputs_of,  # noqa: E402
                       raw_request, slow_config, triton)

ARGS = None
REPO = None
SERVER = None
SEED = int.from_bytes(os.urandom(4), "little")

MLP = "digits_mlp"        # batches within 10 ms
QUEUE2 = "queue2_mlp"     # max_queue_size 2, batches wait 2 s
DEADLINE = "deadline_mlp"  # batches wait 1.5 s
CLIENTS = 64
REQUESTS_PER_CLIENT = 4


def setUpModule():
    global REPO, SERVER
    print(f"random seed {SEED}", file=sys.stderr)
    REPO = server_util.ModelRepository(ARGS.models_dir, [MLP])
    REPO.write_config(MLP, slow_config(MLP, max_queue_size=1024, delay_us=10_000))
    REPO.add_model(MLP, as_name=QUEUE2)
    REPO.write_config(QUEUE2, slow_config(QUEUE2, max_queue_size=2, delay_us=2_000_000))
    REPO.add_model(MLP, as_name=DEADLINE)
    REPO.write_config(DEADLINE, slow_config(DEADLINE, delay_us=1_500_000))
    SERVER = server_util.start_module_server(ARGS.gradserve, REPO)


def tearDownModule():
    server_util.stop_module_server(SERVER, REPO)


def stats(client, model):
    return client.get_inference_statistics(model, "1").model_stats[0]


def singles(stub, rows_list):
    """Each request run alone, one after the other: its outputs."""
    out = []
    for rows in rows_list:
        r = stub.infer(raw_request(MLP, {"pixels": rows}))
        assert int_param(r, "batch_size") == len(rows), "a lone request ran in a batch"
        out.append(outputs_of(r))
    return out


class BatchingTest(unittest.TestCase):
    def setUp(self):
        self.client = triton.InferenceServerClient(SERVER.grpc_address)
        self.stub = Stub(SERVER.grpc_address)

    def tearDown(self):
        self.client.close()
        self.stub.close()

    def test_concurrent_clients_get_their_own_rows(self):
        rng = np.random.default_rng(SEED)
        # requests[c][k]: client c's k-th request, 1 to 3 distinct rows.
        requests = [[digits_rows(rng, int(rng.integers(1, 4))) for _ in range(REQUESTS_PER_CLIENT)]
                    for _ in range(CLIENTS)]
        expected = [singles(self.stub, client) for client in requests]
        before = stats(self.client, MLP)

        results = [[None] * REQUESTS_PER_CLIENT for _ in range(CLIENTS)]
        errors = []
        start = threading.Barrier(CLIENTS)

        def run(c):
            try:
                with Stub(SERVER.grpc_address) as stub:
                    start.wait(timeout=30)
                    for k, rows in enumerate(requests[c]):
                        results[c][k] = stub.infer(
                            raw_request(MLP, {"pixels": rows}, request_id=f"{c}/{k}"), timeout=30)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((c, repr(e)))

        threads = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")
        self.assertEqual(errors, [])

        batch_sizes = []
        max_diff = 0.0
        for c in range(CLIENTS):
            for k, rows in enumerate(requests[c]):
                r = results[c][k]
                self.assertEqual((r.id, r.model_version), (f"{c}/{k}", "1"))
                got = outputs_of(r)
                for name in ("logits", "probabilities"):
                    self.assertEqual(got[name].shape, (len(rows), 10))
                    diff = np.abs(got[name] - expected[c][k][name]).max()
                    max_diff = max(max_diff, float(diff))
                    np.testing.assert_allclose(got[name], expected[c][k][name], rtol=1e-5,
                                               atol=1e-6, err_msg=f"client {c} request {k} {name}")
                batch = int_param(r, "batch_size")
                self.assertGreaterEqual(batch, len(rows))
                self.assertLessEqual(batch, 64)
                batch_sizes.append(batch)
        n = CLIENTS * REQUESTS_PER_CLIENT
        rows = sum(len(x) for client in requests for x in client)
        after = stats(self.client, MLP)
        executions = after.execution_count - before.execution_count
        print(f"{n} requests, {rows} rows in {executions} batches; largest batch "
              f"{max(batch_sizes)} rows; largest difference from the lone runs {max_diff:g}",
              file=sys.stderr)
        self.assertGreater(max(batch_sizes), max(len(x) for c in requests for x in c))
        self.assertEqual(after.inference_stats.success.count - before.inference_stats.success.count,
                         n)
        self.assertEqual(after.inference_count - before.inference_count, rows)
        self.assertLess(executions, n)
        self.assertEqual(after.inference_stats.fail.count, before.inference_stats.fail.count)

    def test_full_queue_rejects_at_once(self):
        rng = np.random.default_rng(SEED + 1)
        rows = [digits_rows(rng, 1) for _ in range(3)]
        want = singles(self.stub, rows)
        # Three requests at once; the queue takes two and the batch waits 2 s
        # for company, so exactly one (whichever arrives last) is refused, and
        # refused while the other two still wait.
        futures = [self.stub.infer_future(raw_request(QUEUE2, {"pixels": r})) for r in rows]
        first = server_util.wait_until(lambda: [f for f in futures if f.done()], 10,
                                       message="the first answer")
        self.assertEqual(len(first), 1, "more than one request finished at once")
        rejected = first[0]
        self.assertEqual(rejected.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, rejected.details())
        self.assertIn("queue is full (max_queue_size 2)", rejected.details())
        for i, f in enumerate(futures):
            if f is rejected:
                continue
            r = f.result(timeout=30)
            self.assertEqual(int_param(r, "batch_size"), 2)
            np.testing.assert_allclose(outputs_of(r)["probabilities"], want[i]["probabilities"],
                                       rtol=1e-5, atol=1e-6)
        s = stats(self.client, QUEUE2)
        self.assertEqual((s.inference_stats.success.count, s.inference_stats.fail.count), (2, 1))
        self.assertEqual((s.execution_count, s.inference_count), (1, 2))
        # Once the queue emptied, requests are taken again.
        again = [self.stub.infer_future(raw_request(QUEUE2, {"pixels": r})) for r in rows[:2]]
        for f in again:
            self.assertEqual(int_param(f.result(timeout=30), "batch_size"), 2)

    def test_expired_request_is_dropped_unrun(self):
        rng = np.random.default_rng(SEED + 2)
        a, b = digits_rows(rng, 1), digits_rows(rng, 1)
        # A waits in the queue (the batch waits 1.5 s for company) past its
        # 0.3 s deadline.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.infer(raw_request(DEADLINE, {"pixels": a}), timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # B, queued behind the expired A: when the batch is due, A is dropped,
        # so B runs alone (a batch of 1, not 2).
        r = self.stub.infer(raw_request(DEADLINE, {"pixels": b}), timeout=30)
        self.assertEqual(int_param(r, "batch_size"), 1)
        s = server_util.wait_until(
            lambda: (lambda s: s if s.inference_stats.fail.count >= 1 else None)(
                stats(self.client, DEADLINE)), 10, message="the expired request's failure")
        self.assertEqual(s.inference_stats.fail.count, 1)
        self.assertEqual(s.inference_stats.success.count, 1)
        self.assertEqual((s.execution_count, s.inference_count), (1, 1))


def main():
    global ARGS
    ARGS, rest = server_util.parse_args()
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
