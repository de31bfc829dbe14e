#!/usr/bin/env python3
"""Model versions coming and going under load, on the real gradserve binary
over loopback gRPC.

Poll mode: a new version (one more epoch of training) dropped into the
repository takes over with no failed request, each answer computed by the
version it names; a broken version is reported UNAVAILABLE with its reason by
RepositoryIndex while the previous one keeps serving. Explicit mode:
RepositoryModelLoad / Unload, NOT_FOUND for a model the repository lacks, and
an Unload that lets the requests already queued finish.

    grpc_reload_test.py --gradserve BIN --models-dir configs/models \
        --gradserve-model BIN --digits configs/datasets/digits/digits.csv.gz
"""

import argparse
import os
import time
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import server_util  # noqa: E402
from grpc_util import (Load, Stub, code_of, digits_rows, grpc, int_param,  # noqa: E402
                       outputs_of, raw_request, reference_run, slow_config,
                       fill_queue, triton, InferenceServerException)

ARGS = None
SEED = int.from_bytes(os.urandom(4), "little")
MLP = "digits_mlp"
CNN = "digits_cnn"
SLOW = "slow_mlp"


def train_one_epoch(version_dir, out_dir):
    """A new version: `version_dir` trained one more epoch (new weights)."""
    subprocess.run([ARGS.gradserve_model, "train", "--model", version_dir, "--data", ARGS.digits,
                    "--scale", "1/16", "--epochs", "1", "--output", out_dir], check=True,
                   stdout=subprocess.DEVNULL)


def corrupt_saved_model(version_dir):
    path = os.path.join(version_dir, "saved_model.pb")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        for i in range(0, len(data), 7):
            data[i] ^= 0xA5
        f.seek(0)
        f.write(data)


def index(client):
    return {(m.name, m.version): (m.state, m.reason)
            for m in client.get_model_repository_index().models}


class PollModeTest(unittest.TestCase):
    def setUp(self):
        self.repo = server_util.ModelRepository(ARGS.models_dir, [MLP])
        self.tmp = tempfile.TemporaryDirectory()
        self.server = server_util.GradserveServer(
            ARGS.gradserve, self.repo.path,
            ["--model-control-mode=poll", "--repository-poll-secs=1"])
        self.load = None
        self.client = None

    def tearDown(self):
        if self.load is not None:
            self.load.stop()
        if self.client is not None:
            self.client.close()
        self.server.kill()
        self.repo.remove()
        self.tmp.cleanup()

    def test_new_version_takes_over_without_failures_and_broken_one_is_reported(self):
        try:
            self.check_reloads()
        except BaseException:
            self.server.dump_log()
            raise

    def check_reloads(self):
        v1 = os.path.join(self.repo.model_dir(MLP), "1")
        v2_src = os.path.join(self.tmp.name, "v2")
        train_one_epoch(v1, v2_src)
        x = digits_rows(np.random.default_rng(SEED), 4)
        expected = {"1": reference_run(ARGS.gradserve_model, v1, x),
                    "2": reference_run(ARGS.gradserve_model, v2_src, x)}
        self.assertFalse(np.allclose(expected["1"]["logits"], expected["2"]["logits"]),
                         "the trained version has the same weights")

        self.server.start()
        self.client = triton.InferenceServerClient(self.server.grpc_address)
        self.load = Load(self.server.grpc_address,
                         lambda t, i: raw_request(MLP, {"pixels": x}, request_id=f"{t}/{i}"),
                         threads=4).start()
        ok = lambda version: lambda r: r[3] == "OK" and r[4].model_version == version  # noqa
        server_util.wait_until(lambda: self.load.count(ok("1")) >= 20, 20,
                               message="load on version 1")

        self.repo.add_version(MLP, 2, v2_src)
        server_util.wait_until(lambda: self.load.count(ok("2")) >= 1, 20,
                               message="a response from version 2")
        seen = self.load.count(ok("2"))
        server_util.wait_until(lambda: self.load.count(ok("2")) >= seen + 20, 20,
                               message="more responses from version 2")
        # Version 1 retired (version policy: latest 1).
        server_util.wait_until(lambda: sorted(index(self.client)) == [(MLP, "2")], 10,
                               message="version 1 unloaded")

        # A broken version 3: its load fails, version 2 keeps serving.
        log_mark = len(self.server.log_text())
        self.repo.add_version(MLP, 3, v2_src, mutate=corrupt_saved_model)
        server_util.wait_until(
            lambda: index(self.client).get((MLP, "3"), ("",))[0] == "UNAVAILABLE", 20,
            message="version 3 reported UNAVAILABLE")
        state, reason = index(self.client)[(MLP, "3")]
        self.assertIn(os.path.join(MLP, "3"), reason)
        self.assertEqual(index(self.client)[(MLP, "2")], ("READY", ""))
        self.assertTrue(self.client.is_model_ready(MLP, "2"))
        self.assertFalse(self.client.is_model_ready(MLP, "3"))
        with Stub(self.server.grpc_address) as stub:
            with self.assertRaises(grpc.RpcError) as cm:
                stub.infer(raw_request(MLP, {"pixels": x}, version="3"))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("version 3 is UNAVAILABLE", cm.exception.details())
        # The poller does not retry an unchanged broken version: over three more
        # scans (1 s apart) under load, the failure is logged once.
        failed = f"failed to load model '{MLP}' version 3"
        self.server.wait_for_log(failed, 20, after=log_mark)
        time.sleep(3.5)
        self.assertEqual(self.server.log_text()[log_mark:].count(failed), 1)
        seen = self.load.count(ok("2"))
        server_util.wait_until(lambda: self.load.count(ok("2")) >= seen + 20, 20,
                               message="version 2 serving after the failed load")
        results = self.load.stop()
        self.load = None

        failures = [r for r in results if r[3] != "OK"]
        self.assertEqual(failures[:5], [], f"{len(failures)} of {len(results)} requests failed")
        per_version = {}
        last_version = {}
        for thread, _, _, _, response in results:
            version = response.model_version
            per_version[version] = per_version.get(version, 0) + 1
            # Each answer comes from the weights of the version it names.
            got = outputs_of(response)
            np.testing.assert_allclose(got["logits"], expected[version]["logits"], rtol=1e-5,
                                       atol=1e-5, err_msg=f"response {response.id}")
            # A client never goes back to the older version.
            self.assertGreaterEqual(int(version), last_version.get(thread, 1))
            last_version[thread] = int(version)
        print(f"{len(results)} requests, none failed; per version {per_version}", file=sys.stderr)
        self.assertEqual(set(per_version), {"1", "2"})


class ExplicitModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.repo = server_util.ModelRepository(ARGS.models_dir, [MLP, CNN])
        cls.repo.add_model(MLP, as_name=SLOW)
        cls.repo.write_config(SLOW, slow_config(SLOW, max_queue_size=3, delay_us=30_000_000))
        cls.server = server_util.GradserveServer(
            ARGS.gradserve, cls.repo.path,
            ["--model-control-mode=explicit", f"--load-model={MLP}"])
        try:
            cls.server.start()
        except Exception:
            cls.repo.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.repo.remove()

    def setUp(self):
        self.client = triton.InferenceServerClient(self.server.grpc_address)
        self.stub = Stub(self.server.grpc_address)
        self.rng = np.random.default_rng(SEED)

    def tearDown(self):
        self.client.close()
        self.stub.close()

    def images(self):
        return self.rng.uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)

    def assertCode(self, call, code, fragment=""):
        with self.assertRaises(Exception) as cm:
            call()
        e = cm.exception
        message = e.message() if isinstance(e, InferenceServerException) else e.details()
        self.assertEqual(code_of(e), code, message)
        self.assertIn(fragment, message)

    def test_load_and_unload(self):
        self.assertTrue(self.client.is_model_ready(MLP))
        self.assertFalse(self.client.is_model_ready(CNN))
        self.assertEqual(index(self.client)[(CNN, "")], ("UNAVAILABLE", "not loaded"))
        infer_cnn = lambda: self.stub.infer(raw_request(CNN, {"images": self.images()}))  # noqa
        self.assertCode(infer_cnn, "UNAVAILABLE", f"model '{CNN}' is not loaded")

        self.client.load_model(CNN)
        self.assertTrue(self.client.is_model_ready(CNN))
        self.assertEqual(index(self.client)[(CNN, "1")], ("READY", ""))
        self.assertEqual(outputs_of(infer_cnn())["probabilities"].shape, (2, 10))

        self.client.unload_model(CNN)
        self.assertFalse(self.client.is_model_ready(CNN))
        self.assertEqual(index(self.client)[(CNN, "")][0], "UNAVAILABLE")
        self.assertCode(infer_cnn, "UNAVAILABLE", CNN)
        # Loading again brings it back.
        self.client.load_model(CNN)
        self.assertTrue(self.client.is_model_ready(CNN))
        self.assertEqual(outputs_of(infer_cnn())["logits"].shape, (2, 10))
        # digits_mlp was not touched.
        self.assertTrue(self.client.is_model_ready(MLP))

    def test_load_of_a_model_the_repository_lacks(self):
        self.assertCode(lambda: self.client.load_model("no_such_model"), "NOT_FOUND",
                        "the repository has no model 'no_such_model'")
        self.assertCode(lambda: self.client.unload_model("no_such_model"), "NOT_FOUND",
                        "no_such_model")
        self.assertTrue(self.client.is_server_ready())

    def test_unload_lets_queued_requests_finish(self):
        self.client.load_model(SLOW)
        rows = digits_rows(self.rng, 1)
        # Three requests provably queued (the next one is refused: queue full);
        # the batch would wait 30 s for company.
        queued, _ = fill_queue(self.stub, lambda: raw_request(SLOW, {"pixels": rows}), 3)
        self.client.unload_model(SLOW)  # returns once the version drained
        for f in queued:
            self.assertTrue(f.done(), "unload returned before its requests finished")
            r = f.result()
            self.assertEqual((r.model_version, int_param(r, "batch_size")), ("1", 3))
            self.assertEqual(outputs_of(r)["probabilities"].shape, (1, 10))
        self.assertFalse(self.client.is_model_ready(SLOW))
        self.assertCode(lambda: self.stub.infer(raw_request(SLOW, {"pixels": rows})),
                        "UNAVAILABLE", SLOW)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--gradserve-model", required=True, help="the gradserve-model tool")
    parser.add_argument("--digits", required=True, help="configs/datasets/digits/digits.csv.gz")
    ARGS, rest = server_util.parse_args(parser)
    print(f"random seed {SEED}", file=sys.stderr)
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
