#!/usr/bin/env python3
"""Online training on the real gradserve binary (gradserve.v1.TrainingService
over gRPC, the REST /train and /training endpoints): steps, generations seen by
ModelInfer, mini-batching of concurrent requests, every rejection path,
checkpoint / rollback / export round trips, resuming after a restart (also past
a corrupt checkpoint), and the training metrics.

    training_test.py --gradserve BIN --models-dir configs/models --digits digits.csv.gz
"""

import json
import os
import signal
import sys
import unittest
import urllib.request

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_util  # noqa: E402
from grpc_util import triton  # noqa: E402
from training_util import (TrainingStub, load_digits, mlp_logits, read_checkpoint,  # noqa: E402
                           set_training, strip_train_signature)

ARGS = None
SERVER = None
REPO = None
X = Y = None  # the digits data set


def config_of(name):
    with open(os.path.join(ARGS.models_dir, "digits_mlp", "config.pbtxt")) as f:
        text = f.read()
    return text.replace('name: "digits_mlp"', f'name: "{name}"')


def setUpModule():
    global SERVER, REPO, X, Y
    X, Y = load_digits(ARGS.digits)
    REPO = server_util.ModelRepository(ARGS.models_dir, ["digits_mlp", "digits_cnn"])
    # A copy without a train signature, one that skips non-finite examples,
    # and one whose queue holds a single request for two seconds.
    REPO.add_model("digits_mlp", as_name="no_train")
    strip_train_signature(os.path.join(REPO.model_dir("no_train"), "1"))
    REPO.add_model("digits_mlp", as_name="skipper")
    REPO.write_config("skipper", set_training(config_of("skipper"), enabled="true",
                                              batch_size=32, nonfinite="SKIP"))
    REPO.add_model("digits_mlp", as_name="tiny_queue")
    REPO.write_config("tiny_queue", set_training(config_of("tiny_queue"), enabled="true",
                                                 batch_size=32, max_queue_size=1,
                                                 max_queue_delay_microseconds=2000000))
    SERVER = server_util.start_module_server(ARGS.gradserve, REPO)


def tearDownModule():
    server_util.stop_module_server(SERVER, REPO)


def batch(rows, offset=0):
    return {"pixels": X[offset:offset + rows], "labels": Y[offset:offset + rows]}


def predict(client, model, x):
    inp = triton.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp])
    params = result.get_response().parameters
    return result.as_numpy("logits"), params["weights_generation"].int64_param


def scrape():
    with urllib.request.urlopen("http://" + SERVER.url("metrics") + "/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text, name, **labels):
    """The value of the sample `name{labels...}` (labels a subset), or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class TrainApiTest(unittest.TestCase):
    def setUp(self):
        self.stub = TrainingStub(SERVER.grpc_address)
        self.client = triton.InferenceServerClient(SERVER.grpc_address)

    def tearDown(self):
        self.stub.close()
        self.client.close()

    def expect_error(self, code, text, model, inputs, version=""):
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.train(model, inputs, version=version)
        self.assertEqual(e.exception.code(), code, e.exception.details())
        self.assertIn(text, e.exception.details())

    def test_metadata_lists_the_training_extension(self):
        self.assertIn("training", self.client.get_server_metadata().extensions)

    def test_status_says_who_trains(self):
        s = self.stub.status("digits_mlp")
        self.assertTrue(s.enabled)
        self.assertEqual((s.optimizer, s.batch_size), ("adam", 32))
        self.assertTrue(s.checkpoint_dir.endswith("digits_mlp/1/checkpoints"), s.checkpoint_dir)
        off = self.stub.status("digits_cnn")
        self.assertFalse(off.enabled)
        self.assertIn("training is not enabled for model 'digits_cnn'", off.disabled_reason)
        no_sig = self.stub.status("no_train")
        self.assertFalse(no_sig.enabled)
        self.assertIn("no 'train' signature", no_sig.disabled_reason)

    def test_a_step_publishes_a_generation_that_inference_reports(self):
        before = self.stub.status("digits_mlp")
        logits_before, gen_before = predict(self.client, "digits_mlp", X[:4])
        self.assertEqual(gen_before, before.weights_generation)
        r = self.stub.train("digits_mlp", batch(8, 100), request_id="abc")
        self.assertEqual((r.model_name, r.model_version, r.id), ("digits_mlp", "1", "abc"))
        self.assertTrue(np.isfinite(r.loss) and r.loss > 0, r.loss)
        self.assertEqual(r.step, before.step + 1)
        self.assertEqual(r.weights_generation, before.weights_generation + 1)
        self.assertEqual(r.examples_in_step, 8)
        logits_after, gen_after = predict(self.client, "digits_mlp", X[:4])
        self.assertEqual(gen_after, r.weights_generation)
        self.assertFalse(np.allclose(logits_before, logits_after), "the step changed nothing")
        after = self.stub.status("digits_mlp")
        self.assertEqual(after.step, r.step)
        self.assertAlmostEqual(after.last_loss, r.loss, places=6)
        self.assertGreaterEqual(after.examples_seen, 8)

    def test_concurrent_requests_share_steps(self):
        # Four requests sent at once, 8 examples each, batch_size 32 and a 2 ms
        # queue delay: whatever the grouping, each step's examples_in_step is
        # the sum of its requests' rows and every response reports its step.
        futures = [self.stub.train_future("digits_mlp", batch(8, 8 * i)) for i in range(4)]
        responses = [f.result() for f in futures]
        by_generation = {}
        for r in responses:
            by_generation.setdefault(r.weights_generation, []).append(r)
        for generation, group in by_generation.items():
            self.assertEqual({r.examples_in_step for r in group}, {8 * len(group)})
            self.assertEqual(len({r.step for r in group}), 1)
            self.assertEqual(len({r.loss for r in group}), 1)
        self.assertEqual(len({r.step for r in responses}), len(by_generation))

    def test_rejections(self):
        code = grpc.StatusCode
        good = batch(4)
        self.expect_error(code.NOT_FOUND, "unknown model 'nope'", "nope", good)
        self.expect_error(code.NOT_FOUND, "", "digits_mlp", good, version="7")
        self.expect_error(code.FAILED_PRECONDITION, "training is not enabled", "digits_cnn",
                          {"pixels": np.zeros((2, 8, 8, 1), np.float32), "labels": Y[:2]})
        self.expect_error(code.FAILED_PRECONDITION, "no 'train' signature", "no_train", good)
        self.expect_error(code.INVALID_ARGUMENT, "input 'labels' is INT32 but", "digits_mlp",
                          {"pixels": X[:4], "labels": Y[:4].astype(np.int32)})
        self.expect_error(code.INVALID_ARGUMENT, "input 'labels' has shape [4,1]", "digits_mlp",
                          {"pixels": X[:4], "labels": Y[:4].reshape(4, 1)})
        self.expect_error(code.INVALID_ARGUMENT, "input 'pixels' has shape [4,63]", "digits_mlp",
                          {"pixels": X[:4, :63].copy(), "labels": Y[:4]})
        for bad_label in (10, -1):
            labels = Y[:4].copy()
            labels[2] = bad_label
            self.expect_error(code.INVALID_ARGUMENT,
                              f"label {bad_label} (example 2 of input 'labels') is not a class "
                              "index of model 'digits_mlp': expected 0 to 9", "digits_mlp",
                              {"pixels": X[:4], "labels": labels})
        nan = X[:4].copy()
        nan[3, 5] = np.nan
        self.expect_error(code.INVALID_ARGUMENT, "example 3 of input 'pixels' holds NaN or Inf",
                          "digits_mlp", {"pixels": nan, "labels": Y[:4]})
        self.expect_error(code.INVALID_ARGUMENT, "missing input 'labels'", "digits_mlp",
                          {"pixels": X[:4]})
        self.expect_error(code.INVALID_ARGUMENT, "unknown input 'image'", "digits_mlp",
                          {"pixels": X[:4], "labels": Y[:4], "image": X[:4]})
        self.expect_error(code.INVALID_ARGUMENT, "trains on 1 to batch_size = 32", "digits_mlp",
                          batch(33))
        self.expect_error(code.INVALID_ARGUMENT, "disagree on the number of examples",
                          "digits_mlp", {"pixels": X[:4], "labels": Y[:3]})
        # None of these changed the weights.
        status = self.stub.status("digits_mlp")
        _, generation = predict(self.client, "digits_mlp", X[:1])
        self.assertEqual(generation, status.weights_generation)

    def test_a_non_finite_step_is_not_applied(self):
        before = self.stub.status("digits_mlp")
        huge = np.full((4, 64), 3e38, np.float32)  # finite, but the logits overflow
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT, "non-finite loss", "digits_mlp",
                          {"pixels": huge, "labels": Y[:4]})
        after = self.stub.status("digits_mlp")
        self.assertEqual(after.weights_generation, before.weights_generation)
        self.assertEqual(after.step, before.step)
        self.assertEqual(after.nonfinite_steps, before.nonfinite_steps + 1)
        self.assertGreaterEqual(metric(scrape(), "gradserve_train_nonfinite_steps_total",
                                       model="digits_mlp"), 1)

    def test_skip_drops_non_finite_examples(self):
        nan = X[:8].copy()
        nan[[1, 6], 0] = np.inf
        r = self.stub.train("skipper", {"pixels": nan, "labels": Y[:8]})
        self.assertEqual(r.examples_in_step, 6)
        all_bad = np.full((3, 64), np.nan, np.float32)
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT, "all 3 examples hold NaN or Inf",
                          "skipper", {"pixels": all_bad, "labels": Y[:3]})
        self.assertEqual(metric(scrape(), "gradserve_train_skipped_examples_total",
                                model="skipper"), 5)

    def test_a_full_queue_is_resource_exhausted(self):
        waiting = self.stub.train_future("tiny_queue", batch(4))  # waits 2 s for company
        server_util.wait_until(lambda: self.stub.status("tiny_queue").queue_depth == 1, 5,
                               message="the first request queued")
        self.expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue is full", "tiny_queue",
                          batch(4))
        self.assertEqual(waiting.result().examples_in_step, 4)

    def test_metrics(self):
        self.stub.train("digits_mlp", batch(16))
        with self.assertRaises(grpc.RpcError):
            self.stub.train("digits_cnn", batch(2))
        text = scrape()
        status = self.stub.status("digits_mlp")
        self.assertGreaterEqual(metric(text, "gradserve_train_steps_total", model="digits_mlp",
                                       version="1"), 1)
        self.assertGreaterEqual(metric(text, "gradserve_train_examples_total",
                                       model="digits_mlp"), 16)
        self.assertEqual(metric(text, "gradserve_weights_generation", model="digits_mlp"),
                         status.weights_generation)
        self.assertAlmostEqual(metric(text, "gradserve_train_loss", model="digits_mlp"),
                               status.last_loss, places=5)
        self.assertEqual(metric(text, "gradserve_train_queue_depth", model="digits_mlp"), 0)
        self.assertIsNone(metric(text, "gradserve_train_queue_depth", model="digits_cnn"))
        # A trainable version's counters exist at 0 before their first event.
        self.assertEqual(metric(text, "gradserve_train_nonfinite_steps_total",
                                model="tiny_queue"), 0)
        self.assertIsNone(metric(text, "gradserve_train_steps_total", model="digits_cnn"))
        self.assertGreaterEqual(metric(text, "gradserve_train_step_duration_seconds_count",
                                       model="digits_mlp"), 1)
        self.assertGreaterEqual(metric(text, "gradserve_train_requests_total", model="digits_mlp",
                                       outcome="success"), 1)
        self.assertGreaterEqual(metric(text, "gradserve_train_requests_total", model="digits_cnn",
                                       outcome="failed_precondition"), 1)
        self.stub.checkpoint("digits_mlp")
        self.assertGreater(metric(scrape(), "gradserve_checkpoint_last_success_timestamp_seconds",
                                  model="digits_mlp"), 1.7e9)


class RestTrainTest(unittest.TestCase):
    def train_body(self, rows, labels=None):
        labels = Y[:rows] if labels is None else labels
        return {"id": "rest-1", "inputs": [
            {"name": "pixels", "shape": [rows, 64], "datatype": "FP32",
             "data": X[:rows].ravel().tolist()},
            {"name": "labels", "shape": [rows], "datatype": "INT64",
             "data": [int(v) for v in labels]}]}

    def test_train_status_and_checkpoint(self):
        code, before = SERVER.rest("GET", "/v2/models/digits_mlp/training")
        self.assertEqual(code, 200, before)
        code, r = SERVER.rest("POST", "/v2/models/digits_mlp/versions/1/train", self.train_body(5))
        self.assertEqual(code, 200, r)
        self.assertEqual((r["id"], r["examples_in_step"]), ("rest-1", 5))
        self.assertEqual(r["step"], before["step"] + 1)
        self.assertGreater(r["weights_generation"], before["weights_generation"])
        code, c = SERVER.rest("POST", "/v2/models/digits_mlp/training/checkpoint")
        self.assertEqual(code, 200, c)
        self.assertTrue(os.path.exists(c["checkpoint"]["path"]))
        code, e = SERVER.rest("POST", "/v2/models/digits_mlp/train",
                              self.train_body(3, labels=[1, 12, 3]))
        self.assertEqual(code, 400)
        self.assertIn("label 12", e["error"])
        code, e = SERVER.rest("POST", "/v2/models/digits_cnn/train", self.train_body(2))
        self.assertEqual(code, 400)
        self.assertIn("training is not enabled", e["error"])
        code, e = SERVER.rest("GET", "/v2/models/digits_mlp/train")
        self.assertEqual(code, 405)
        # The README's example request.
        with open(os.path.join(os.path.dirname(ARGS.models_dir), "examples",
                               "digit_train.json")) as f:
            code, r = SERVER.rest("POST", "/v2/models/digits_mlp/train", json.load(f))
        self.assertEqual((code, r["examples_in_step"]), (200, 4), r)
        code, e = SERVER.rest("POST", "/v2/models/digits_mlp/training/rollback",
                              {"checkpoint": "ckpt-nope"})
        self.assertEqual(code, 404)
        self.assertIn("no checkpoint 'ckpt-nope'", e["error"])


class DurabilityTest(unittest.TestCase):
    """Own server in EXPLICIT mode (so an exported version can be loaded)."""

    def setUp(self):
        self.repo = server_util.ModelRepository(ARGS.models_dir, ["digits_mlp"])
        self.args = ["--model-control-mode", "explicit", "--load-model", "digits_mlp"]

    def tearDown(self):
        self.repo.remove()

    def start(self):
        server = server_util.GradserveServer(ARGS.gradserve, self.repo.path, self.args)
        server.start()
        return server, TrainingStub(server.grpc_address), triton.InferenceServerClient(
            server.grpc_address)

    def train(self, stub, steps, offset=0):
        for i in range(steps):
            stub.train("digits_mlp", batch(32, (offset + 32 * i) % 1700))

    def test_rollback_export_and_resume(self):
        server, stub, client = self.start()
        try:
            self.train(stub, 3)
            a = stub.checkpoint("digits_mlp").checkpoint
            # The file holds what the server serves: recompute in float64.
            step, weights = read_checkpoint(a.path)
            self.assertEqual(step, a.step)
            logits_a, gen = predict(client, "digits_mlp", X[:16])
            self.assertEqual(gen, a.weights_generation)
            np.testing.assert_allclose(logits_a, mlp_logits(weights, X[:16]), rtol=1e-4, atol=1e-4)
            self.train(stub, 4, offset=500)
            logits_b, _ = predict(client, "digits_mlp", X[:16])
            self.assertFalse(np.allclose(logits_a, logits_b))

            back = stub.rollback("digits_mlp", checkpoint=a.name)
            self.assertEqual((back.restored.name, back.step), (a.name, a.step))
            self.assertEqual(back.weights_generation, a.weights_generation + 4 + 1)
            logits, gen = predict(client, "digits_mlp", X[:16])
            self.assertEqual(gen, back.weights_generation)
            np.testing.assert_array_equal(logits, logits_a)
            with self.assertRaises(grpc.RpcError) as e:
                stub.rollback("digits_mlp", checkpoint="ckpt-000000000999")
            self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertIn(a.name, e.exception.details())  # lists what there is

            # Export: a new version folder that serves the same predictions.
            exported = stub.export("digits_mlp")
            self.assertEqual(exported.exported_version, 2)
            self.assertTrue(os.path.exists(os.path.join(exported.path, "saved_model.pb")))
            with self.assertRaises(grpc.RpcError) as e:
                stub.export("digits_mlp", export_version=2)
            self.assertEqual(e.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
            client.load_model("digits_mlp")  # the policy serves the newest: 2
            server_util.wait_until(lambda: client.is_model_ready("digits_mlp", "2"), 30)
            result = client.infer("digits_mlp", [self._input(X[:16])], model_version="2")
            np.testing.assert_allclose(result.as_numpy("logits"), logits_a, rtol=1e-6, atol=1e-6)
            self.assertEqual(stub.status("digits_mlp").step, a.step)  # optimizer state came along
        finally:
            server.stop()

    def test_resume_after_sigterm_and_past_a_corrupt_checkpoint(self):
        server, stub, client = self.start()
        self.train(stub, 5)
        first = stub.checkpoint("digits_mlp").checkpoint
        self.train(stub, 3, offset=300)
        logits, _ = predict(client, "digits_mlp", X[:8])
        status = stub.status("digits_mlp")
        server.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(timeout=20), 0, server.log_text())
        # SIGTERM wrote a final checkpoint of the last generation.
        names = sorted(os.listdir(status.checkpoint_dir))
        self.assertEqual(names[-1], f"ckpt-{status.weights_generation:012d}.gsckpt")

        server, stub, client = self.start()
        try:
            again = stub.status("digits_mlp")
            self.assertEqual((again.step, again.weights_generation),
                             (status.step, status.weights_generation))
            self.assertIn("resumed training from", server.log_text())
            resumed, gen = predict(client, "digits_mlp", X[:8])
            self.assertEqual(gen, status.weights_generation)
            np.testing.assert_array_equal(resumed, logits)
        finally:
            server.stop()

        # Corrupt the newest checkpoint: the server skips it, says so, and
        # resumes from the one before.
        newest = os.path.join(status.checkpoint_dir, names[-1])
        with open(newest, "r+b") as f:
            f.seek(200)
            byte = f.read(1)
            f.seek(200)
            f.write(bytes([byte[0] ^ 0xFF]))
        server, stub, client = self.start()
        try:
            self.assertIn(f"skipping checkpoint {newest}", server.log_text())
            again = stub.status("digits_mlp")
            self.assertEqual((again.step, again.weights_generation),
                             (first.step, first.weights_generation))
        finally:
            server.stop()

    @staticmethod
    def _input(x):
        inp = triton.InferInput("pixels", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        return inp


def main():
    global ARGS
    parser = server_util.add_common_args(__import__("argparse").ArgumentParser())
    parser.add_argument("--digits", required=True, help="configs/datasets/digits/digits.csv.gz")
    ARGS, rest = server_util.parse_args(parser)
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
