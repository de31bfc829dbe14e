"""gRPC helpers shared by tests/serving/grpc_*_test.py: the official Triton
client (tritonclient.grpc) for ordinary calls, the raw stubs it ships
(service_pb2 / service_pb2_grpc) for hand-made requests and futures."""

import os
import subprocess
import tempfile
import threading
import time

import grpc
import numpy as np
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from server_util import wait_until

_MAX_MESSAGE = 64 << 20


class Stub:
    """A channel and the raw GRPCInferenceService stub over it."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.max_send_message_length", _MAX_MESSAGE),
                              ("grpc.max_receive_message_length", _MAX_MESSAGE)])
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def infer(self, request, timeout=None):
        return self.stub.ModelInfer(request, timeout=timeout)

    def infer_future(self, request, timeout=None):
        return self.stub.ModelInfer.future(request, timeout=timeout)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64",
              np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64"}


def raw_request(model, inputs, version="", outputs=(), request_id=""):
    """A ModelInferRequest with `inputs` ({name: array}, or a list of
    (name, array) pairs to repeat a name) in raw_input_contents."""
    r = service_pb2.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, a in (inputs.items() if isinstance(inputs, dict) else inputs):
        a = np.ascontiguousarray(a)
        r.inputs.add(name=name, datatype=_DATATYPES[a.dtype], shape=a.shape)
        r.raw_input_contents.append(a.tobytes())
    for name in outputs:
        r.outputs.add(name=name)
    return r


def typed_request(model, inputs, version="", outputs=(), request_id=""):
    """The same with typed contents (fp32_contents, int64_contents, ...)."""
    r = service_pb2.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, a in (inputs.items() if isinstance(inputs, dict) else inputs):
        t = r.inputs.add(name=name, datatype=_DATATYPES[a.dtype], shape=a.shape)
        field = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents",
                 "INT64": "int64_contents"}[t.datatype]
        getattr(t.contents, field).extend(a.ravel().tolist())
    for name in outputs:
        r.outputs.add(name=name)
    return r


_NP = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}
_TYPED = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents",
          "INT64": "int64_contents"}


def outputs_of(response):
    """{name: array} of a ModelInferResponse (raw or typed contents)."""
    out = {}
    for i, o in enumerate(response.outputs):
        dtype = _NP[o.datatype]
        if response.raw_output_contents:
            a = np.frombuffer(response.raw_output_contents[i], dtype=dtype)
        else:
            a = np.array(getattr(o.contents, _TYPED[o.datatype]), dtype=dtype)
        out[o.name] = a.reshape(tuple(o.shape))
    return out


def int_param(response, name):
    """An int64 response parameter (weights_generation, batch_size)."""
    p = response.parameters[name]
    assert p.WhichOneof("parameter_choice") == "int64_param", (name, p)
    return p.int64_param


def code_of(error):
    """The status code name of a grpc.RpcError or an InferenceServerException."""
    if isinstance(error, grpc.RpcError):
        return error.code().name
    return str(error.status()).replace("StatusCode.", "")


def slow_config(name, max_queue_size=0, delay_us=30_000_000, max_batch_size=64):
    """A config.pbtxt whose batches wait `delay_us` for company (no preferred
    sizes, so only a full batch of max_batch_size rows runs earlier): requests
    of a few rows sit queued, deterministically, until the delay, a drain or
    a shutdown."""
    queue = f" default_queue_policy {{ max_queue_size: {max_queue_size} }}" if max_queue_size else ""
    return (f'name: "{name}"\nplatform: "gradserve_savedmodel"\n'
            f"max_batch_size: {max_batch_size}\n"
            f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us}{queue} }}\n"
            "instance_group [{ kind: KIND_CPU, count: 1 }]\n")


def fill_queue(stub, make_request, capacity, probe_wait=1.0, max_probes=20, timeout=10):
    """Sends `capacity` requests, then probes until one is rejected with
    RESOURCE_EXHAUSTED: at that moment the model's queue (max_queue_size =
    capacity, a long delay: see slow_config) provably holds `capacity` of the
    requests sent. Returns (queued, rejected): the futures still pending once
    the rejections arrived (exactly `capacity`; in flight on the server), and
    the ones rejected with RESOURCE_EXHAUSTED."""
    futures = [stub.infer_future(make_request()) for _ in range(capacity)]
    for _ in range(max_probes):
        probe = stub.infer_future(make_request())
        futures.append(probe)
        try:
            probe.result(timeout=probe_wait)
        except grpc.FutureTimeoutError:
            continue  # queued (an earlier request is still on its way)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            break
        raise AssertionError("a request ran although the queue delay is long")
    else:
        raise AssertionError(f"no RESOURCE_EXHAUSTED after {max_probes} probes")
    # Rejections come back at once; what stays pending is what the queue holds.
    wait_until(lambda: sum(not f.done() for f in futures) <= capacity, timeout,
               message="rejections of the requests the full queue refused")
    queued = [f for f in futures if not f.done()]
    rejected = [f for f in futures if f.done()]
    assert len(queued) == capacity, f"{len(queued)} requests queued, expected {capacity}"
    for f in rejected:
        assert f.exception() is not None and f.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f
    return queued, rejected


def reference_run(gradserve_model, model_dir, pixels, input_name="pixels"):
    """Outputs of `gradserve-model run` (one in-process Session::Run) on
    `pixels`: {output name: array}."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.npy")
        np.save(path, pixels)
        out = os.path.join(tmp, "out")
        subprocess.run([gradserve_model, "run", "--model", model_dir, "--input",
                        f"{input_name}={path}", "--output-dir", out], check=True,
                       stdout=subprocess.DEVNULL)
        return {name[:-4]: np.load(os.path.join(out, name)) for name in os.listdir(out)}


def digits_rows(rng, n):
    """n rows of 64 digits pixels in [0, 1] (float32)."""
    return rng.uniform(0.0, 1.0, size=(n, 64)).astype(np.float32)


class Load:
    """Threads sending requests in a loop until stop(); every outcome is
    recorded as (thread, start time, end time, status code name, response or
    None). `make(thread_index, i)` builds the i-th request of a thread; with
    stop_on_error a thread ends after its first failed request."""

    def __init__(self, address, make, threads=4, stop_on_error=False):
        self.address = address
        self.make = make
        self.stop_on_error = stop_on_error
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _run(self, index):
        with Stub(self.address) as s:
            i = 0
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    r = s.infer(self.make(index, i), timeout=30)
                    outcome = ("OK", r)
                except grpc.RpcError as e:
                    outcome = (e.code().name, e.details())
                with self._lock:
                    self.results.append((index, start, time.monotonic()) + outcome)
                if self.stop_on_error and outcome[0] != "OK":
                    return
                i += 1

    def count(self, predicate=lambda r: True):
        with self._lock:
            return sum(1 for r in self.results if predicate(r))

    def stop(self, timeout=30):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "load threads did not stop"
        return self.results
