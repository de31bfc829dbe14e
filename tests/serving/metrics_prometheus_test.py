"""End to end: a real Prometheus server scrapes a real gradserve's /metrics.

gradserve serves digits_mlp on ephemeral loopback ports; Prometheus (the
Debian package's binary) scrapes its metrics port every second; the official
Triton gRPC client sends successful requests (one at a time and concurrently),
requests of a wrong shape and one for an unknown model. The test then polls
Prometheus's query API (/api/v1/query) until what Prometheus stored matches
what was sent, or fails after a shared deadline naming the query, the value it
last read and the scrape target's health.

    metrics_prometheus_test.py --gradserve BIN --models-dir configs/models \
        [--prometheus /usr/bin/prometheus] [unittest args]

Every process started here dies with the test (PR_SET_PDEATHSIG) and is
stopped by the class cleanups, which run even when set-up fails.
"""

import argparse
import ctypes
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_util import GradserveServer, ModelRepository, add_common_args, parse_args  # noqa: E402

MODEL = "digits_mlp"
SEQUENTIAL = 12       # successful requests sent one at a time
CONCURRENT = 12       # successful requests in flight together (may share batches)
BAD_SHAPE = 3         # requests with a wrong input shape (INVALID_ARGUMENT)
SUCCESSES = SEQUENTIAL + CONCURRENT
DEADLINE_S = 90       # for all the polling together


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """A Prometheus server on a free loopback port, scraping `target`
    ("127.0.0.1:PORT") every second, with its config, data and log in a
    temporary folder. `config_text` replaces that minimal config (then
    `files`, e.g. the rule files it names, are copied beside it)."""

    def __init__(self, binary, target, config_text=None, files=()):
        self.binary = binary
        self.target = target
        self.dir = tempfile.mkdtemp(prefix="gradserve-prometheus-")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.process = None
        self.url = None
        self.config = os.path.join(self.dir, "prometheus.yml")
        if config_text is None:
            config_text = ("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                           "  evaluation_interval: 1s\n"
                           "scrape_configs:\n  - job_name: gradserve\n"
                           f"    static_configs:\n      - targets: ['{target}']\n")
        with open(self.config, "w") as f:
            f.write(config_text)
        for path in files:
            shutil.copy(path, self.dir)

    def start(self, timeout=30):
        config = self.config
        # The free port may be taken again before Prometheus binds it: retry.
        for _ in range(3):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    [self.binary, f"--config.file={config}",
                     f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                     f"--web.listen-address=127.0.0.1:{port}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                if self._ready():
                    return self
                time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.log_text():
                break
        raise RuntimeError(f"prometheus did not become ready\n--- log ---\n{self.log_text()}")

    def _ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _get(self, path, **params):
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise AssertionError(f"{url}: {body}")
        return body["data"]

    def query(self, promql):
        """An instant query's samples: [(labels dict, float value), ...]."""
        data = self._get("/api/v1/query", query=promql)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def target_health(self):
        """The scrape target's health and last error, for failure messages."""
        try:
            targets = self._get("/api/v1/targets")["activeTargets"]
        except (OSError, AssertionError) as e:
            return f"(targets unavailable: {e})"
        return "; ".join(f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}".strip()
                         for t in targets) or "(no targets)"

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM (Prometheus stops in ~2 s), SIGKILL after 15 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrometheusScrapeTest(unittest.TestCase):
    args = None  # set by main()

    @classmethod
    def setUpClass(cls):
        cls.repo = ModelRepository(cls.args.models_dir, [MODEL])
        cls.addClassCleanup(cls.repo.remove)
        cls.server = GradserveServer(cls.args.gradserve, cls.repo.path)
        cls.addClassCleanup(cls.server.__exit__, None, None, None)
        cls.started_at = time.time()
        cls.server.start()
        if "metrics" not in cls.server.ports:
            raise RuntimeError(f"no 'serving metrics on' line\n{cls.server.log_text()}")
        cls.prometheus = PrometheusServer(cls.args.prometheus, cls.server.url("metrics"))
        cls.addClassCleanup(cls.prometheus.remove)
        cls.prometheus.start()
        cls.client = triton.InferenceServerClient(cls.server.grpc_address)
        cls.addClassCleanup(cls.client.close)
        cls._send_requests()
        cls.deadline = time.monotonic() + DEADLINE_S

    @classmethod
    def _send_requests(cls):
        (spec,) = cls.client.get_model_metadata(MODEL).inputs
        features = int(spec.shape[-1])

        def inputs(width):
            x = triton.InferInput(spec.name, [1, width], spec.datatype)
            x.set_data_from_numpy(np.linspace(0, 1, width, dtype=np.float32).reshape(1, width))
            return [x]

        for _ in range(SEQUENTIAL):
            cls.client.infer(MODEL, inputs(features))
        # Concurrent: the batcher may run several in one batch.
        done, errors = threading.Semaphore(0), []

        def callback(result, error):
            if error is not None:
                errors.append(error)
            done.release()

        for _ in range(CONCURRENT):
            cls.client.async_infer(MODEL, inputs(features), callback)
        for _ in range(CONCURRENT):
            if not done.acquire(timeout=30):
                raise RuntimeError("a concurrent request got no answer within 30 s")
        if errors:
            raise RuntimeError(f"concurrent requests failed: {errors}")
        for _ in range(BAD_SHAPE):
            cls._expect_failure(MODEL, inputs(features + 3), "INVALID_ARGUMENT")
        cls._expect_failure("no_such_model", inputs(features), "NOT_FOUND")

    @classmethod
    def _expect_failure(cls, model, inputs, code):
        try:
            cls.client.infer(model, inputs)
        except InferenceServerException as e:
            if code not in str(e.status()):
                raise RuntimeError(f"{model}: expected {code}, got {e.status()}: {e}")
            return
        raise RuntimeError(f"{model}: expected {code}, the request succeeded")

    # -- polling -------------------------------------------------------------

    def poll(self, promql, accept, expected):
        """Queries `promql` until accept(samples) holds; fails at the shared
        deadline with the query, what it expected and what it last read."""
        while True:
            samples = self.prometheus.query(promql)
            if accept(samples):
                return samples
            if time.monotonic() >= self.deadline:
                self.fail(f"Prometheus query {promql!r}: expected {expected}, last read "
                          f"{samples!r} (scrape target: {self.prometheus.target_health()})")
            time.sleep(0.5)

    def poll_value(self, promql, expected):
        """Polls until the query returns one sample equal to `expected`."""
        samples = self.poll(promql, lambda s: len(s) == 1 and s[0][1] == expected,
                            f"one sample = {expected}")
        return samples[0][1]

    # -- the tests -----------------------------------------------------------

    def test_requests_are_counted_by_outcome(self):
        series = "gradserve_inference_requests_total"
        self.poll_value(f'sum({series}{{model="{MODEL}",version="1",outcome="success"}})',
                        SUCCESSES)
        self.poll_value(f'sum({series}{{model="{MODEL}",version="1",outcome="invalid_argument"}})',
                        BAD_SHAPE)
        # The unknown model is counted without naming it (labels stay bounded).
        self.poll_value(f'sum({series}{{outcome="not_found"}})', 1)
        self.assertEqual(self.prometheus.query(f'{series}{{model="no_such_model"}}'), [])

    def test_batch_size_histogram_counts_every_row(self):
        batches = self.poll(f'sum(gradserve_inference_batch_size_count{{model="{MODEL}"}})',
                            lambda s: len(s) == 1 and s[0][1] > 0, "> 0 batches")[0][1]
        self.assertLessEqual(batches, SUCCESSES)
        # One row per request, whatever the batches were (warm-up is not counted).
        self.poll_value(f'sum(gradserve_inference_batch_size_sum{{model="{MODEL}"}})', SUCCESSES)

    def test_latency_histograms_observe_each_success(self):
        for name in ("request", "queue", "compute"):
            self.poll_value(
                f'sum(gradserve_inference_{name}_duration_seconds_count{{model="{MODEL}"}})',
                SUCCESSES)
        promql = ("histogram_quantile(0.9, sum by (le) (gradserve_inference_request_duration_"
                  f'seconds_bucket{{model="{MODEL}"}}))')
        (_, p90), = self.poll(promql, lambda s: len(s) == 1 and math.isfinite(s[0][1]),
                              "a finite 90th percentile")
        self.assertGreater(p90, 0)
        self.assertLessEqual(p90, 10)

    def test_model_and_queue_gauges(self):
        self.poll_value(f'gradserve_model_ready{{model="{MODEL}",version="1"}}', 1)
        self.poll_value(f'gradserve_inference_pending_requests{{model="{MODEL}",version="1"}}', 0)
        self.poll(f'gradserve_model_load_duration_seconds_count{{model="{MODEL}",version="1"}}',
                  lambda s: len(s) == 1 and s[0][1] >= 1, "at least one load")

    def test_process_and_build_metrics(self):
        self.poll_value('gradserve_build_info{version=~".+"}', 1)
        (_, rss), = self.poll("process_resident_memory_bytes",
                              lambda s: len(s) == 1 and s[0][1] > 0, "a positive RSS")
        (_, vsize), = self.poll("process_virtual_memory_bytes",
                                lambda s: len(s) == 1 and s[0][1] > 0, "a positive size")
        self.assertGreaterEqual(vsize, rss)
        self.poll("process_cpu_seconds_total", lambda s: len(s) == 1 and s[0][1] > 0,
                  "CPU time > 0")
        (_, start), = self.poll("process_start_time_seconds", lambda s: len(s) == 1,
                                "one start time")
        # /proc's start time has clock-tick (10 ms) resolution.
        self.assertGreaterEqual(start, self.started_at - 2)
        self.assertLessEqual(start, time.time())


def main():
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus",
                        help="the Prometheus server binary")
    args, rest = parse_args(parser)
    PrometheusScrapeTest.args = args
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
