#!/usr/bin/env python3
"""The REST API of the real gradserve binary (Open Inference Protocol v2 over
HTTP, serving/http_server.h), end to end over loopback: every endpoint, the
official tritonclient.http unchanged (binary and JSON tensors, compressed
requests) giving bit-for-bit the numbers gRPC gives (typed and raw), keep-alive
and concurrent connections, every rejection with its HTTP status and message,
repository control in none and explicit mode, and SIGTERM with a REST request
queued and a keep-alive connection open.

    rest_test.py --gradserve BIN --models-dir configs/models [unittest args]
"""

import gzip
import http.client
import json
import os
import select
import signal
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tritonclient.http as triton_http  # noqa: E402

import server_util  # noqa: E402
from grpc_util import (Stub, outputs_of, raw_request, slow_config, triton,  # noqa: E402
                       typed_request, InferenceServerException)

ARGS = None
REPO = None
SERVER = None
SEED = int.from_bytes(os.urandom(4), "little")
MLP, CNN = "digits_mlp", "digits_cnn"
BROKEN = "broken_mlp"  # its saved_model.pb is garbage: UNAVAILABLE
BATCH = "batch_mlp"    # runs only full batches of 8 rows (or after 30 s)
PIXELS = "pixels"
_NP = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64,
       "BOOL": np.bool_, "FP16": np.float16}


def setUpModule():
    global REPO, SERVER
    print(f"random seed {SEED}", file=sys.stderr)
    REPO = server_util.ModelRepository(ARGS.models_dir, [MLP, CNN])
    REPO.add_model(MLP, as_name=BROKEN)
    with open(os.path.join(REPO.model_dir(BROKEN), "1", "saved_model.pb"), "wb") as f:
        f.write(b"\x0a\xff\xff\xff\x0fnot a saved model")
    REPO.add_model(MLP, as_name=BATCH)
    REPO.write_config(BATCH, slow_config(BATCH).replace(
        "dynamic_batching {", "dynamic_batching { preferred_batch_size: 8"))
    SERVER = server_util.start_module_server(ARGS.gradserve, REPO)


def tearDownModule():
    server_util.stop_module_server(SERVER, REPO)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def tensors(self):
        """(JSON header, {output name: array}) of an infer response, binary or not."""
        length = self.headers.get("inference-header-content-length")
        head = json.loads(self.body if length is None else self.body[:int(length)])
        binary = b"" if length is None else self.body[int(length):]
        out, offset = {}, 0
        for o in head["outputs"]:
            size = o.get("parameters", {}).get("binary_data_size")
            if size is None:
                a = np.array(o["data"], dtype=_NP[o["datatype"]])
            else:
                a = np.frombuffer(binary[offset:offset + size], dtype=_NP[o["datatype"]])
                offset += size
            out[o["name"]] = a.reshape(o["shape"])
        assert offset == len(binary), (offset, len(binary))
        return head, out


class Http:
    """One HTTP/1.1 connection (http.client keeps it alive between calls)."""

    def __init__(self, port=None, timeout=30):
        self.conn = http.client.HTTPConnection("127.0.0.1", port or SERVER.ports["http"],
                                               timeout=timeout)

    def call(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())

    def close(self):
        self.conn.close()


def json_input(x, name=PIXELS, datatype="FP32", nested=False):
    return {"name": name, "datatype": datatype, "shape": list(x.shape),
            "data": x.tolist() if nested else x.ravel().tolist()}


def binary_body(request, blobs):
    """Body and headers of Triton's binary tensor data extension."""
    head = json.dumps(request).encode()
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def assert_error(test, response, status, *fragments):
    """`response` is an error of `status` whose message holds every fragment."""
    test.assertEqual(response.status, status, response.body)
    test.assertEqual(response.headers.get("content-type"), "application/json")
    message = response.json()["error"]
    for fragment in fragments:
        test.assertIn(fragment, message)
    return message


class RestTest(unittest.TestCase):
    def setUp(self):
        self.http = Http()
        self.client = triton_http.InferenceServerClient(SERVER.url("http"))
        self.grpc = triton.InferenceServerClient(SERVER.grpc_address)
        self.stub = Stub(SERVER.grpc_address)
        self.rng = np.random.default_rng(SEED)

    def tearDown(self):
        for c in (self.http, self.client, self.grpc, self.stub):
            c.close()

    def x(self, rows=2, cols=64):
        return self.rng.uniform(0, 1, (rows, cols)).astype(np.float32)

    def assertError(self, response, status, *fragments):
        return assert_error(self, response, status, *fragments)

    def infer(self, body, model=MLP, headers=None):
        return self.http.call("POST", f"/v2/models/{model}/infer", body, headers)


class EndpointTest(RestTest):
    def test_server_metadata_and_health(self):
        meta = self.http.call("GET", "/v2").json()
        grpc_meta = self.grpc.get_server_metadata()
        self.assertEqual(meta, {"name": grpc_meta.name, "version": grpc_meta.version,
                                "extensions": list(grpc_meta.extensions)})
        self.assertIn("binary_tensor_data", meta["extensions"])
        for path in ("/v2/health/live", "/v2/health/ready"):
            r = self.http.call("GET", path)
            self.assertEqual((r.status, r.body), (200, b""), path)
        self.assertTrue(self.client.is_server_live() and self.client.is_server_ready())

    def test_model_metadata_matches_grpc(self):
        g = self.grpc.get_model_metadata(MLP, as_json=True)
        for path in (f"/v2/models/{MLP}", f"/v2/models/{MLP}/versions/1"):
            m = self.http.call("GET", path).json()
            self.assertEqual((m["name"], m["versions"], m["platform"]),
                             (MLP, ["1"], g["platform"]))
            self.assertEqual(m["inputs"], [{"name": PIXELS, "datatype": "FP32", "shape": [-1, 64]}])
            self.assertEqual([o["name"] for o in m["outputs"]], ["logits", "probabilities"])
        self.assertEqual(self.client.get_model_metadata(MLP)["inputs"][0]["shape"], [-1, 64])

    def test_model_ready(self):
        for path in (f"/v2/models/{MLP}/ready", f"/v2/models/{MLP}/versions/1/ready"):
            self.assertEqual(self.http.call("GET", path).status, 200, path)
        # Not ready is 400 (KServe v2: "a 4xx status code indicating false").
        self.assertError(self.http.call("GET", "/v2/models/no_such_model/ready"), 400,
                         "unknown model 'no_such_model'")
        self.assertError(self.http.call("GET", f"/v2/models/{MLP}/versions/9/ready"), 400,
                         "has no version 9")
        self.assertError(self.http.call("GET", f"/v2/models/{BROKEN}/ready"), 400, BROKEN)
        self.assertError(self.http.call("GET", f"/v2/models/{MLP}/versions/v1/ready"), 400,
                         "'v1' is not a positive integer")
        self.assertTrue(self.client.is_model_ready(MLP))
        self.assertFalse(self.client.is_model_ready(BROKEN))

    def test_model_config(self):
        config = self.http.call("GET", f"/v2/models/{MLP}/config").json()
        versioned = self.http.call("GET", f"/v2/models/{MLP}/versions/1/config").json()
        self.assertEqual(config, versioned)
        self.assertEqual(config, self.client.get_model_config(MLP))
        grpc_config = self.grpc.get_model_config(MLP, as_json=True)["config"]
        self.assertEqual((config["name"], config["max_batch_size"]), (MLP, 64))
        self.assertEqual(grpc_config["max_batch_size"], 64)
        # 64-bit fields are numbers (proto3's canonical JSON would print strings).
        self.assertEqual(config["dynamic_batching"]["max_queue_delay_microseconds"], 500)
        self.assertEqual(config["input"][0]["dims"], [64])
        self.assertEqual(config["input"][0]["data_type"], "TYPE_FP32")
        self.assertError(self.http.call("GET", "/v2/models/no_such_model/config"), 404,
                         "unknown model")

    def test_statistics(self):
        every = self.http.call("GET", "/v2/models/stats").json()["model_stats"]
        self.assertEqual(sorted((m["name"], m["version"]) for m in every),
                         sorted([(BATCH, "1"), (CNN, "1"), (MLP, "1")]))
        before = self.http.call("GET", f"/v2/models/{CNN}/stats").json()["model_stats"]
        self.assertEqual(len(before), 1)
        images = self.rng.uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
        for _ in range(2):
            r = self.infer({"inputs": [json_input(images, "images")]}, model=CNN)
            self.assertEqual(r.status, 200, r.body)
        after = self.http.call("GET", f"/v2/models/{CNN}/versions/1/stats").json()["model_stats"][0]
        self.assertIsInstance(after["inference_count"], int)  # a number, not a string
        self.assertEqual(after["inference_count"] - before[0]["inference_count"], 6)
        success = after["inference_stats"]["success"]
        self.assertEqual(success["count"] - before[0]["inference_stats"]["success"]["count"], 2)
        self.assertGreater(success["ns"], 0)
        self.assertEqual(self.client.get_inference_statistics(CNN)["model_stats"][0]["name"], CNN)
        self.assertError(self.http.call("GET", "/v2/models/no_such_model/stats"), 404,
                         "no_such_model")

    def test_repository_index(self):
        every = self.http.call("POST", "/v2/repository/index").json()
        entries = {(m["name"], m["version"]): (m["state"], m["reason"]) for m in every}
        self.assertEqual(entries[(MLP, "1")], ("READY", ""))
        self.assertEqual(entries[(BROKEN, "1")][0], "UNAVAILABLE")
        self.assertIn("saved_model.pb", entries[(BROKEN, "1")][1])
        ready = self.http.call("POST", "/v2/repository/index", {"ready": True}).json()
        self.assertEqual(sorted(m["name"] for m in ready), sorted([BATCH, CNN, MLP]))
        self.assertEqual(self.client.get_model_repository_index(), every)
        self.assertError(self.http.call("POST", "/v2/repository/index", {"ready": "yes"}), 400,
                         "'ready' must be a boolean")

    def test_load_and_unload_refused_without_model_control(self):
        for action in ("load", "unload"):
            self.assertError(self.http.call("POST", f"/v2/repository/models/{MLP}/{action}"), 400,
                             "model control is disabled")
        self.assertTrue(self.client.is_model_ready(MLP))


class InferTest(RestTest):
    def test_tritonclient_matches_grpc_typed_and_raw(self):
        x = self.x(5)
        raw = outputs_of(self.stub.infer(raw_request(MLP, {PIXELS: x})))
        typed = outputs_of(self.stub.infer(typed_request(MLP, {PIXELS: x})))
        results = []
        for binary_in in (True, False):
            inp = triton_http.InferInput(PIXELS, [5, 64], "FP32")
            inp.set_data_from_numpy(x, binary_data=binary_in)
            # No outputs named: binary_data_output, so every output is binary.
            results.append(self.client.infer(MLP, [inp], request_id=f"r-{binary_in}"))
            for binary_out in (True, False):
                outs = [triton_http.InferRequestedOutput(n, binary_data=binary_out)
                        for n in ("logits", "probabilities")]
                results.append(self.client.infer(MLP, [inp], outputs=outs))
        for result in results:
            response = result.get_response()
            self.assertEqual((response["model_name"], response["model_version"]), (MLP, "1"))
            self.assertEqual(response["parameters"], {"batch_size": 5, "weights_generation": 0})
            for name in ("logits", "probabilities"):
                got = result.as_numpy(name)
                self.assertEqual((got.dtype, got.shape), (np.float32, (5, 10)))
                np.testing.assert_array_equal(got, raw[name], err_msg=name)
                np.testing.assert_array_equal(got, typed[name], err_msg=name)
        self.assertEqual(results[0].get_response()["id"], "r-True")
        self.assertIn("binary_data_size", results[0].get_output("logits")["parameters"])
        self.assertIn("data", results[2].get_output("logits"))
        # Compressed request bodies, as tritonclient sends them.
        inp = triton_http.InferInput(PIXELS, [5, 64], "FP32")
        inp.set_data_from_numpy(x)
        for algorithm in ("gzip", "deflate"):
            got = self.client.infer(MLP, [inp], request_compression_algorithm=algorithm)
            np.testing.assert_array_equal(got.as_numpy("logits"), raw["logits"])

    def test_plain_json_nested_data_and_output_choices(self):
        x = self.x(3)
        expected = outputs_of(self.stub.infer(raw_request(MLP, {PIXELS: x})))
        r = self.infer({"id": "j1", "inputs": [json_input(x, nested=True)]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertNotIn("inference-header-content-length", r.headers)
        head, out = r.tensors()
        self.assertEqual(head["id"], "j1")
        self.assertEqual(len(head["outputs"][0]["data"]), 30)  # flat
        for name in expected:
            np.testing.assert_array_equal(out[name], expected[name])
        # One binary output, one JSON; requested order kept; a subset.
        r = self.infer({"inputs": [json_input(x)],
                        "parameters": {"binary_data_output": True},
                        "outputs": [{"name": "probabilities"},
                                    {"name": "logits", "parameters": {"binary_data": False}}]})
        self.assertEqual(r.headers["content-type"], "application/octet-stream")
        head, out = r.tensors()
        self.assertEqual([o["name"] for o in head["outputs"]], ["probabilities", "logits"])
        self.assertEqual(head["outputs"][0]["parameters"], {"binary_data_size": 120})
        self.assertIn("data", head["outputs"][1])
        for name in expected:
            np.testing.assert_array_equal(out[name], expected[name])
        r = self.infer({"inputs": [json_input(x)], "outputs": [{"name": "logits"}]})
        self.assertEqual([o["name"] for o in r.json()["outputs"]], ["logits"])
        r = self.http.call("POST", f"/v2/models/{MLP}/versions/1/infer",
                           {"inputs": [json_input(x)]})
        self.assertEqual(r.json()["model_version"], "1")

    def test_binary_inputs_by_hand(self):
        x = self.x(2)
        request = {"inputs": [{"name": PIXELS, "datatype": "FP32", "shape": [2, 64],
                               "parameters": {"binary_data_size": 512}}]}
        body, headers = binary_body(request, [x.tobytes()])
        _, out = self.infer(body, headers=headers).tensors()
        expected = outputs_of(self.stub.infer(raw_request(MLP, {PIXELS: x})))
        np.testing.assert_array_equal(out["logits"], expected["logits"])

    def test_timeout_parameter_is_the_deadline(self):
        r = self.infer({"inputs": [json_input(self.x())], "parameters": {"timeout": 1}})
        self.assertError(r, 503, "deadline")

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        x = self.x(1)
        calls = [("GET", "/v2/health/ready", None, 200), ("GET", "/v2", None, 200),
                 ("POST", f"/v2/models/{MLP}/infer", {"inputs": [json_input(x)]}, 200),
                 ("GET", "/v2/nothing", None, 404), ("GET", f"/v2/models/{MLP}/infer", None, 405),
                 ("POST", f"/v2/models/{MLP}/infer", b"{not json", 400),
                 ("POST", "/v2/repository/index", None, 200),
                 ("POST", f"/v2/models/{MLP}/infer", {"inputs": [json_input(x)]}, 200)]
        local = None
        for method, path, body, status in calls:
            r = self.http.call(method, path, body)
            self.assertEqual(r.status, status, (path, r.body))
            self.assertNotEqual(r.headers.get("connection"), "close")
            name = self.http.conn.sock.getsockname()
            self.assertEqual(local or name, name, "the connection was reopened")
            local = name
        # HTTP/1.0 without keep-alive: answered, then closed.
        with socket.create_connection(("127.0.0.1", SERVER.ports["http"]), timeout=10) as s:
            s.sendall(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
            data = b"".join(iter(lambda: s.recv(4096), b""))
            self.assertTrue(data.startswith(b"HTTP/1.0 200"), data)

    def test_concurrent_connections_batch_together(self):
        # BATCH runs a batch once 8 rows are queued; the server has 4 io
        # threads, so 8 requests only meet if no io thread waits for inference.
        results = [None] * 8

        def send(i):
            conn = Http(timeout=25)
            try:
                results[i] = conn.call("POST", f"/v2/models/{BATCH}/infer",
                                       {"inputs": [json_input(self.x(1))]})
            finally:
                conn.close()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for r in results:
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["parameters"]["batch_size"], 8)


class RejectionTest(RestTest):
    def test_unknown_models_and_versions(self):
        body = {"inputs": [json_input(self.x())]}
        self.assertError(self.infer(body, "no_such_model"), 404, "unknown model 'no_such_model'")
        self.assertError(self.http.call("POST", f"/v2/models/{MLP}/versions/9/infer", body), 404,
                         f"model '{MLP}' has no version 9")
        self.assertError(self.http.call("POST", f"/v2/models/{MLP}/versions/v1/infer", body), 400,
                         "'v1' is not a positive integer")
        self.assertError(self.infer(body, BROKEN), 503, f"model '{BROKEN}' has no ready version")
        self.assertError(self.http.call("GET", "/v2/models/no_such_model"), 404, "no_such_model")
        inp = triton_http.InferInput(PIXELS, [2, 64], "FP32")
        inp.set_data_from_numpy(self.x())
        with self.assertRaises(InferenceServerException) as cm:
            self.client.infer("no_such_model", [inp])
        self.assertEqual(cm.exception.status(), "404")
        self.assertIn("unknown model 'no_such_model'", cm.exception.message())

    def test_bad_tensors(self):
        x = self.x()

        def with_input(**changes):
            return {"inputs": [dict(json_input(x), **changes)]}
        cases = [
            (with_input(datatype="FLOAT"), "unknown datatype 'FLOAT'"),
            (with_input(datatype="FP64"), "input 'pixels' is FP64", f"model '{MLP}' expects FP32"),
            (with_input(shape=[2, 63], data=x[:, :63].ravel().tolist()),
             "input 'pixels' has shape", "expects"),
            (with_input(shape=[2, 64], data=x.ravel().tolist()[:-1]),
             "(128 elements) but its data holds 127 values"),
            (with_input(shape=[-2, 64]), "negative dimension -2"),
            (with_input(data=["a"] * 128), "element 0 of its data is \"a\"; give numbers"),
            (with_input(datatype="INT32", data=[1.5] * 128), "is INT32", "give integers"),
            (with_input(datatype="FP16"), "FP16, which has no JSON form"),
            (with_input(data=7), "give an array"),
            ({"inputs": [{"name": PIXELS, "datatype": "FP32", "shape": [2, 64]}]},
             "has neither 'data' nor parameters.binary_data_size"),
            ({"inputs": []}, f"missing input '{PIXELS}'"),
            ({"inputs": [json_input(x, name="image")]}, "unknown input 'image'"),
            ({}, "needs an 'inputs' array"),
            ([1, 2], "must be a JSON object"),
            ({"inputs": [json_input(x)], "outputs": [{"name": "scores"}]},
             "unknown output 'scores'"),
            ({"inputs": [json_input(x)],
              "outputs": [{"name": "logits", "parameters": {"classification": 3}}]},
             "classification"),
            ({"inputs": [json_input(x)], "parameters": {"binary_data_output": 1}},
             "'binary_data_output' must be a boolean"),
        ]
        for body, *fragments in cases:
            with self.subTest(body=json.dumps(body)[:80]):
                self.assertError(self.infer(body), 400, *fragments)

    def test_malformed_json_and_binary_framing(self):
        message = self.assertError(self.infer(b'{"inputs": [}'), 400, "not valid JSON")
        self.assertIn("parse error", message)  # the parser's own words
        self.assertError(self.infer(b""), 400, "not valid JSON")
        x = self.x()
        request = {"inputs": [{"name": PIXELS, "datatype": "FP32", "shape": [2, 64],
                               "parameters": {"binary_data_size": 512}}]}
        body, headers = binary_body(request, [x.tobytes()[:-4]])
        self.assertError(self.infer(body, headers=headers), 400, "binary_data_size 512",
                         "only 508 bytes")
        body, headers = binary_body(request, [x.tobytes() + b"\0" * 4])
        self.assertError(self.infer(body, headers=headers), 400, "516 bytes of binary data",
                         "add up to 512")
        request["inputs"][0]["parameters"]["binary_data_size"] = 508
        body, headers = binary_body(request, [x.tobytes()[:-4]])
        self.assertError(self.infer(body, headers=headers), 400, "512 bytes",
                         "hold 508 bytes")
        self.assertError(self.infer(b'{"inputs": []}\0\1'), 400, "not valid JSON", "byte 14 is NUL")
        self.assertError(self.infer(body), 400)  # no header: all JSON
        self.assertError(self.infer(body, headers={"Inference-Header-Content-Length": "x"}), 400,
                         "Inference-Header-Content-Length must be a byte count")
        self.assertError(self.infer(body, headers={"Inference-Header-Content-Length": "99999"}),
                         400, "the body holds only")
        self.assertError(self.infer(json.dumps(request).encode()), 400,
                         "no Inference-Header-Content-Length")

    def test_transport_rejections(self):
        self.assertError(self.http.call("GET", "/v2/unknown"), 404, "no such endpoint")
        self.assertError(self.http.call("GET", "/v1/models"), 404)
        self.assertError(self.http.call("GET", "/v2/models"), 404)
        for method, path, allowed in (("GET", f"/v2/models/{MLP}/infer", "POST"),
                                      ("POST", "/v2/health/live", "GET"),
                                      ("GET", "/v2/repository/index", "POST"),
                                      ("DELETE", f"/v2/models/{MLP}", "GET")):
            r = self.http.call(method, path)
            self.assertError(r, 405, f"use {allowed}")
            self.assertEqual(r.headers["allow"], allowed)
        self.assertError(self.http.call("GET", "/v2/models/a%zz"), 400, "malformed request target")
        self.assertError(self.infer(b"x", headers={"Content-Encoding": "br"}), 415, "br")
        self.assertError(self.infer(b"not gzip", headers={"Content-Encoding": "gzip"}), 400,
                         "not valid gzip/deflate data")
        ok = gzip.compress(json.dumps({"inputs": [json_input(self.x())]}).encode())
        self.assertEqual(self.infer(ok, headers={"Content-Encoding": "gzip"}).status, 200)
        # A body over the limit (256 MiB) is refused from its Content-Length alone.
        conn = Http()
        conn.conn.putrequest("POST", f"/v2/models/{MLP}/infer")
        conn.conn.putheader("Content-Length", str(300 << 20))
        conn.conn.endheaders()
        r = conn.conn.getresponse()
        self.assertEqual(r.status, 413)
        self.assertIn("over the limit", json.loads(r.read())["error"])
        conn.close()
        # Not HTTP at all.
        with socket.create_connection(("127.0.0.1", SERVER.ports["http"]), timeout=10) as s:
            s.sendall(b"HELLO?\r\n\r\n")
            data = b"".join(iter(lambda: s.recv(4096), b""))
            self.assertTrue(data.startswith(b"HTTP/1.1 400"), data)
            self.assertIn(b"malformed HTTP request", data)

    def test_still_serving_after_rejections(self):
        self.test_bad_tensors()
        self.test_transport_rejections()
        r = self.infer({"inputs": [json_input(self.x(4))]})
        self.assertEqual(r.tensors()[1]["probabilities"].shape, (4, 10))


class ExplicitModeTest(unittest.TestCase):
    """Repository control through REST, on a server of its own."""

    def setUp(self):
        self.repo = server_util.ModelRepository(ARGS.models_dir, [MLP, CNN])
        self.server = server_util.GradserveServer(
            ARGS.gradserve, self.repo.path, ["--model-control-mode=explicit",
                                             f"--load-model={MLP}"])
        self.server.start()
        self.http = Http(self.server.ports["http"])

    def tearDown(self):
        self.http.close()
        self.server.kill()
        self.repo.remove()

    def test_load_and_unload(self):
        assert_error(self, self.http.call("GET", f"/v2/models/{CNN}/ready"), 400)
        self.assertEqual(self.http.call("POST", f"/v2/repository/models/{CNN}/load").status, 200)
        self.assertEqual(self.http.call("GET", f"/v2/models/{CNN}/ready").status, 200)
        images = np.zeros((1, 8, 8, 1), np.float32)
        r = self.http.call("POST", f"/v2/models/{CNN}/infer",
                           {"inputs": [json_input(images, "images")]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.http.call("POST", f"/v2/repository/models/{CNN}/unload",
                                        {"parameters": {}}).status, 200)
        assert_error(self, self.http.call("GET", f"/v2/models/{CNN}/ready"), 400)
        assert_error(self, self.http.call("POST", "/v2/repository/models/no_such_model/load"), 404,
                         "no_such_model")
        assert_error(self, self.http.call("POST", f"/v2/repository/models/{CNN}/load",
                                        {"parameters": {"config": "{}"}}), 400, "not supported")
        assert_error(self, self.http.call("POST", f"/v2/repository/models/{CNN}/load", b"{"), 400,
                         "not valid JSON")
        client = triton_http.InferenceServerClient(self.server.url("http"))
        client.load_model(CNN)
        self.assertTrue(client.is_model_ready(CNN))
        client.unload_model(CNN)
        self.assertFalse(client.is_model_ready(CNN))
        client.close()


class ShutdownTest(unittest.TestCase):
    def test_sigterm_answers_a_queued_request_and_exits(self):
        repo = server_util.ModelRepository(ARGS.models_dir, [MLP])
        repo.add_model(MLP, as_name=BATCH)
        repo.write_config(BATCH, slow_config(BATCH, max_queue_size=1))
        server = server_util.GradserveServer(ARGS.gradserve, repo.path, ["--exit-timeout-secs=20"])
        try:
            server.start()
            body = {"inputs": [json_input(np.zeros((1, 64), np.float32))]}
            idle = Http(server.ports["http"])
            self.assertEqual(idle.call("GET", "/v2/health/live").status, 200)  # stays open
            conn = Http(server.ports["http"])
            conn.conn.request("POST", f"/v2/models/{BATCH}/infer", json.dumps(body).encode())
            # The queue holds one request: once a probe finds it full, ours is
            # queued. A probe that gets in first expires at once (timeout 1 us);
            # ours, refused meanwhile, is sent again.
            probe = Http(server.ports["http"])
            probe_body = dict(body, parameters={"timeout": 1})

            def queued():
                if select.select([conn.conn.sock], [], [], 0)[0]:
                    refused = conn.conn.getresponse().read()
                    self.assertIn(b"queue is full", refused)
                    conn.conn.request("POST", f"/v2/models/{BATCH}/infer",
                                      json.dumps(body).encode())
                r = probe.call("POST", f"/v2/models/{BATCH}/infer", probe_body)
                self.assertEqual(r.status, 503, r.body)
                return b"queue is full" in r.body
            server_util.wait_until(queued, timeout=15, message="a full queue")
            server.send_signal(signal.SIGTERM)
            r = conn.conn.getresponse()
            data = r.read()
            self.assertEqual(r.status, 200, data)
            self.assertEqual(json.loads(data)["parameters"]["batch_size"], 1)
            self.assertEqual(server.wait(timeout=15), 0)
            for c in (idle, conn, probe):
                c.close()
        except BaseException:
            server.dump_log()
            raise
        finally:
            server.kill()
            repo.remove()


def main():
    global ARGS
    ARGS, rest = server_util.parse_args()
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
