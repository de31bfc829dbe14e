#!/usr/bin/env python3
"""Graceful shutdown of the real gradserve binary: SIGTERM while requests run
and wait in a queue. Every request the server had accepted completes
successfully; a request that reaches the server after shutdown began may be
refused with UNAVAILABLE (or, if it reached gRPC's transport but no handler
before gRPC stopped, CANCELLED by gRPC itself), and nothing else; the process
exits 0 within --exit-timeout-secs.

    grpc_shutdown_test.py --gradserve BIN --models-dir configs/models [unittest args]
"""

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import server_util  # noqa: E402
from grpc_util import (Load, Stub, digits_rows, fill_queue, int_param, outputs_of,  # noqa: E402
                       raw_request, slow_config)

ARGS = None
SEED = int.from_bytes(os.urandom(4), "little")
MLP = "digits_mlp"  # steady load: requests running and briefly queued
SLOW = "slow_mlp"   # requests queued until the shutdown (the batch would wait 60 s)
EXIT_TIMEOUT_SECS = 10
QUEUED = 4


class ShutdownTest(unittest.TestCase):
    def setUp(self):
        self.repo = server_util.ModelRepository(ARGS.models_dir, [MLP])
        self.repo.add_model(MLP, as_name=SLOW)
        self.repo.write_config(SLOW, slow_config(SLOW, max_queue_size=QUEUED,
                                                 delay_us=60_000_000))
        self.server = server_util.GradserveServer(
            ARGS.gradserve, self.repo.path, [f"--exit-timeout-secs={EXIT_TIMEOUT_SECS}"])
        self.load = None

    def tearDown(self):
        if self.load is not None:
            self.load.stop()
        self.server.kill()
        self.repo.remove()

    def test_sigterm_finishes_accepted_requests_and_exits_zero(self):
        try:
            self.check_shutdown()
        except BaseException:
            self.server.dump_log()
            raise

    def check_shutdown(self):
        rng = np.random.default_rng(SEED)
        x = digits_rows(rng, 2)
        self.server.start()
        # Six clients in a loop; each stops at its first failure, as a client
        # of a stopping server would.
        self.load = Load(self.server.grpc_address,
                         lambda t, i: raw_request(MLP, {"pixels": x}, request_id=f"{t}/{i}"),
                         threads=6, stop_on_error=True).start()
        server_util.wait_until(lambda: self.load.count(lambda r: r[3] == "OK") >= 50, 20,
                               message="steady load")
        with Stub(self.server.grpc_address) as stub:
            queued, rejected = fill_queue(
                stub, lambda: raw_request(SLOW, {"pixels": digits_rows(rng, 1)}), QUEUED)

            sigterm_at = time.monotonic()
            self.server.send_signal(signal.SIGTERM)
            try:
                rc = self.server.wait(timeout=EXIT_TIMEOUT_SECS + 20)
            except subprocess.TimeoutExpired:
                self.fail(f"still running {EXIT_TIMEOUT_SECS + 20} s after SIGTERM")
            exit_secs = time.monotonic() - sigterm_at
            results = self.load.stop()
            self.load = None

            # The queued requests ran (flushed together when the server drained).
            outcomes = []
            for f in queued:
                try:
                    r = f.result(timeout=5)
                    outcomes.append(("OK", int_param(r, "batch_size"),
                                     outputs_of(r)["probabilities"].shape))
                except Exception as e:  # noqa: BLE001
                    outcomes.append((f.code().name, f.details()) if f.done() else repr(e))
            self.assertEqual(outcomes, [("OK", QUEUED, (1, 10))] * QUEUED)

        self.assertEqual(rc, 0, "exit status")
        self.assertLessEqual(exit_secs, EXIT_TIMEOUT_SECS, "exit took longer than the timeout")

        # The steady load, by when each request ran relative to SIGTERM:
        #   finished before it: OK;
        #   in flight at that moment, or sent after: OK; UNAVAILABLE when it
        #   reached the server after the shutdown began ("the server is
        #   shutting down") or reached no server (connection refused or
        #   closed); or CANCELLED, which gRPC itself answers for a call that
        #   reached the transport but no handler when its server shut down.
        # Requests the server had accepted are the queued ones above: all OK.
        def kind(r):
            if r[3] == "UNAVAILABLE":
                return "UNAVAILABLE (server)" if "shutting down" in r[4] else \
                    "UNAVAILABLE (transport)"
            return r[3]
        counts = {"before": {}, "during": {}, "after": {}}
        for r in results:
            when = "before" if r[2] < sigterm_at else "during" if r[1] < sigterm_at else "after"
            counts[when][kind(r)] = counts[when].get(kind(r), 0) + 1
        print(f"exit {rc} after {exit_secs:.2f} s; {QUEUED} queued requests OK; steady-load "
              f"outcomes by when the request ran relative to SIGTERM: {counts}",
              file=sys.stderr)
        self.assertEqual(set(counts["before"]), {"OK"})
        late = {"OK", "UNAVAILABLE (server)", "UNAVAILABLE (transport)", "CANCELLED"}
        for when in ("during", "after"):
            odd = [r[3:] for r in results if kind(r) not in late]
            self.assertLessEqual(set(counts[when]), late, odd[:3])
        for r in results:
            if r[3] == "CANCELLED":
                self.assertEqual(r[4], "CANCELLED")  # gRPC's own, not the server's
        for r in results:
            if r[3] == "OK":
                self.assertEqual(r[4].model_name, MLP)
        self.assertIn("received SIGTERM", self.server.log_text())
        self.assertIn("stopped", self.server.log_text())


def main():
    global ARGS
    ARGS, rest = server_util.parse_args()
    print(f"random seed {SEED}", file=sys.stderr)
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
