"""End to end: the docker/ monitoring files against a real gradserve and a real
Prometheus.

gradserve serves a temporary copy of digits_mlp (training enabled, with
`nonfinite: SKIP` so skipped examples are counted too) on loopback; Prometheus
(the Debian package's binary) runs docker/prometheus/prometheus.yml with only
the scrape target rewritten to that server and the intervals cut to 1 s, so it
loads docker/prometheus/alerts.yml as the compose stack does. The test sends
one of each kind of traffic (inference successes and failures, Train calls
that succeed, skip an example, are rejected, or give a non-finite step, a
ModelCheckpoint), then keeps a steady load going while it checks:

1. `promtool check rules` and `promtool check config` (the docker config and
   the rewritten one), and `promtool test rules` with unit tests for every
   alert (firing and quiet series; annotations stripped from a copy);
2. every PromQL expression of docker/grafana/dashboards/gradserve.json, with
   its Grafana variables substituted ($model, $__rate_interval, ...), returns
   data through /api/v1/query within the polling deadline; the model
   variable's label_values() query lists digits_mlp; the panels are laid out
   and wired to the `datasource` variable;
3. every alert rule, as loaded by Prometheus (/api/v1/rules), is
   `<value> <op> <number>`; the whole expression evaluates without error and
   its <value> returns data (so a renamed metric or label cannot silently
   disable a rule), and Prometheus's own evaluation reports it healthy;
4. docker/compose.yaml, docker/Dockerfile and the Grafana provisioning files
   agree with each other and the repository (skipped without PyYAML), and
   every YAML file of docker/ passes yamllint (skipped without it).

It prints a table of every expression with its sample count.

    dashboard_test.py --gradserve BIN --models-dir configs/models \
        [--source-dir REPO_ROOT] [--prometheus BIN] [--promtool BIN] [unittest args]

Every process started here dies with the test (PR_SET_PDEATHSIG) and is
stopped by the class cleanups, which run even when set-up fails.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics_prometheus_test import PrometheusServer  # noqa: E402
from server_util import GradserveServer, ModelRepository, add_common_args, parse_args  # noqa: E402
from training_util import TrainingStub  # noqa: E402

try:
    import yaml
except ImportError:  # the compose check is skipped
    yaml = None
try:
    from yamllint import linter as yamllint_linter
    from yamllint.config import YamlLintConfig
    # As deploy/k8s/.yamllint.yaml's essentials; warnings count too.
    YAMLLINT_CONFIG = YamlLintConfig(
        "extends: default\nrules: {line-length: {max: 100}, document-start: disable}\n")
except ImportError:  # the lint is skipped
    yamllint_linter = None

MODEL = "digits_mlp"
FEATURES = 64          # digits_mlp: pixels FP32 [-1, 64], labels INT64 [-1] in 0..9
POLL_S = 30            # for data to appear, all the polling together
# Grafana's variables, as the dashboard would get them for model digits_mlp.
GRAFANA_VARIABLES = {"model": MODEL, "__rate_interval": "30s", "__interval": "15s",
                     "__range": "5m", "__range_s": "300"}
# An alert expression: <value> <comparison> <number>, as Prometheus prints it.
ALERT_FORM = re.compile(
    r"(?s)^(?P<value>.+) (?P<op>==|!=|>=|<=|>|<) (?P<threshold>[-+]?[0-9.eE+]+)$")

# `promtool test rules` cases for docker/prometheus/alerts.yml (its
# annotations stripped: promtool would compare their rendered text). Each
# alert has a test named after it, with series that fire it and series that
# must not. RULES is replaced by the path of the stripped copy.
RULE_TESTS = """\
rule_files:
  - RULES
evaluation_interval: 1m
tests:
  - name: GradserveDown
    interval: 1m
    input_series:
      - series: 'up{job="gradserve", instance="a:8002"}'
        values: '0x10'
      - series: 'up{job="gradserve", instance="b:8002"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 30s
        alertname: GradserveDown
      - eval_time: 2m
        alertname: GradserveDown
        exp_alerts:
          - exp_labels: {severity: critical, job: gradserve, instance: "a:8002"}

  - name: GradserveModelNotReady
    interval: 1m
    input_series:
      # m1: version 1 retired, version 2 READY: the model is up.
      - series: 'gradserve_model_ready{job="gradserve", instance="a:8002", model="m1", version="1"}'
        values: '0x10'
      - series: 'gradserve_model_ready{job="gradserve", instance="a:8002", model="m1", version="2"}'
        values: '1x10'
      # m2: its only version failed to load.
      - series: 'gradserve_model_ready{job="gradserve", instance="a:8002", model="m2", version="1"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 4m
        alertname: GradserveModelNotReady
      - eval_time: 6m
        alertname: GradserveModelNotReady
        exp_alerts:
          - exp_labels: {severity: critical, job: gradserve, instance: "a:8002", model: m2}

  - name: GradserveInferenceErrorRate
    interval: 1m
    input_series:
      # m1: 10 failures in 110 requests (9%); m2: 1 in 101 (1%).
      - series: 'gradserve_inference_requests_total{job="gradserve", instance="a:8002", model="m1", version="1", outcome="success"}'
        values: '0+100x30'
      - series: 'gradserve_inference_requests_total{job="gradserve", instance="a:8002", model="m1", version="1", outcome="invalid_argument"}'
        values: '0+10x30'
      - series: 'gradserve_inference_requests_total{job="gradserve", instance="a:8002", model="m2", version="1", outcome="success"}'
        values: '0+100x30'
      - series: 'gradserve_inference_requests_total{job="gradserve", instance="a:8002", model="m2", version="1", outcome="internal"}'
        values: '0+1x30'
      # Unknown model names: not attributed to a model, not alerted on.
      - series: 'gradserve_inference_requests_total{job="gradserve", instance="a:8002", model="", version="", outcome="not_found"}'
        values: '0+100x30'
    alert_rule_test:
      - eval_time: 4m
        alertname: GradserveInferenceErrorRate
      - eval_time: 15m
        alertname: GradserveInferenceErrorRate
        exp_alerts:
          - exp_labels: {severity: warning, job: gradserve, model: m1}

  - name: GradserveInferenceLatencyP99
    interval: 1m
    input_series:
      # m1: every request between 0.25 and 0.5 s; m2: every request under 10 ms.
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m1", version="1", le="0.01"}'
        values: '0x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m1", version="1", le="0.25"}'
        values: '0x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m1", version="1", le="0.5"}'
        values: '0+60x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m1", version="1", le="+Inf"}'
        values: '0+60x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m2", version="1", le="0.01"}'
        values: '0+60x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m2", version="1", le="0.25"}'
        values: '0+60x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m2", version="1", le="0.5"}'
        values: '0+60x30'
      - series: 'gradserve_inference_request_duration_seconds_bucket{job="gradserve", instance="a:8002", model="m2", version="1", le="+Inf"}'
        values: '0+60x30'
    alert_rule_test:
      - eval_time: 9m
        alertname: GradserveInferenceLatencyP99
      - eval_time: 20m
        alertname: GradserveInferenceLatencyP99
        exp_alerts:
          - exp_labels: {severity: warning, job: gradserve, model: m1}

  - name: GradserveCheckpointStale
    interval: 1m
    input_series:
      - series: 'process_start_time_seconds{job="gradserve", instance="a:8002"}'
        values: '0x40'
      # m1: training; its last checkpoint was written at 1m.
      - series: 'gradserve_train_steps_total{job="gradserve", instance="a:8002", model="m1", version="1"}'
        values: '0+10x40'
      - series: 'gradserve_checkpoint_last_success_timestamp_seconds{job="gradserve", instance="a:8002", model="m1", version="1"}'
        values: '60x40'
      # m2: training, a checkpoint every minute.
      - series: 'gradserve_train_steps_total{job="gradserve", instance="a:8002", model="m2", version="1"}'
        values: '0+10x40'
      - series: 'gradserve_checkpoint_last_success_timestamp_seconds{job="gradserve", instance="a:8002", model="m2", version="1"}'
        values: '0+60x40'
      # m3: training since the server started, never checkpointed.
      - series: 'gradserve_train_steps_total{job="gradserve", instance="a:8002", model="m3", version="1"}'
        values: '0+10x40'
      # m4: an old checkpoint, but no step in the last 15 minutes.
      - series: 'gradserve_train_steps_total{job="gradserve", instance="a:8002", model="m4", version="1"}'
        values: '0+10x5 50x35'
      - series: 'gradserve_checkpoint_last_success_timestamp_seconds{job="gradserve", instance="a:8002", model="m4", version="1"}'
        values: '60x40'
    alert_rule_test:
      - eval_time: 15m
        alertname: GradserveCheckpointStale
      - eval_time: 30m
        alertname: GradserveCheckpointStale
        exp_alerts:
          - exp_labels: {severity: warning, job: gradserve, instance: "a:8002", model: m1, version: "1"}
          - exp_labels: {severity: warning, job: gradserve, instance: "a:8002", model: m3, version: "1"}

  - name: GradserveTrainingNonfiniteSteps
    interval: 1m
    input_series:
      - series: 'gradserve_train_nonfinite_steps_total{job="gradserve", instance="a:8002", model="m1", version="1"}'
        values: '0x5 1x20'
      - series: 'gradserve_train_nonfinite_steps_total{job="gradserve", instance="a:8002", model="m2", version="1"}'
        values: '0x25'
    alert_rule_test:
      - eval_time: 4m
        alertname: GradserveTrainingNonfiniteSteps
      - eval_time: 10m
        alertname: GradserveTrainingNonfiniteSteps
        exp_alerts:
          - exp_labels: {severity: warning, job: gradserve, model: m1, version: "1"}
      - eval_time: 24m
        alertname: GradserveTrainingNonfiniteSteps
"""


def rewrite_config(text, target):
    """docker/prometheus/prometheus.yml for a local test: the gradserve
    target and the 5 s/15 s intervals replaced. Each must occur once, so a
    changed file fails here rather than scraping the wrong thing."""
    for old, new in (('"gradserve:8002"', f'"{target}"'),
                     ("scrape_interval: 5s", "scrape_interval: 1s"),
                     ("evaluation_interval: 15s", "evaluation_interval: 1s")):
        if text.count(old) != 1:
            raise RuntimeError(f"prometheus.yml: expected {old!r} once, found it "
                               f"{text.count(old)} times; update rewrite_config()")
        text = text.replace(old, new)
    return text


def strip_annotations(text):
    """A rules file without its `annotations:` blocks (line-based: the key and
    every line indented deeper than it)."""
    out, block_indent = [], None
    for line in text.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None and (indent > block_indent or not line.strip()):
            continue
        block_indent = None
        if line.lstrip().startswith("annotations:"):
            block_indent = indent
            continue
        out.append(line)
    return "".join(out)


def substitute_variables(expr):
    """`expr` with Grafana's $name / ${name} / ${name:format} replaced from
    GRAFANA_VARIABLES; KeyError naming an unknown variable."""
    def value(m):
        name = m.group(1) or m.group(2)
        if name not in GRAFANA_VARIABLES:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]
    return re.sub(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))", value, expr)


GPU_METRIC = "gradserve_device_memory_used_bytes"


def dashboard_targets(dashboard):
    """[(panel title, refId, expr)] of every panel, rows' nested panels too."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p.get("title", ""), t.get("refId", ""), t.get("expr", "")))
            walk(p.get("panels", []))
    walk(dashboard["panels"])
    return out


def print_table(title, rows):
    """rows: (name, samples, first value, expr); printed to stdout."""
    print(f"\n{title}")
    print(f"  {'panel / rule':<40} {'samples':>7} {'value':>12}  expression")
    for name, count, value, expr in rows:
        flat = " ".join(expr.split())
        flat = flat if len(flat) <= 90 else flat[:87] + "..."
        print(f"  {name[:40]:<40} {count:>7} {value:>12}  {flat}")
    sys.stdout.flush()


class ConfiguredPrometheus(PrometheusServer):
    """metrics_prometheus_test's PrometheusServer with a given config text
    (and the files it refers to), and instant queries that report errors."""

    def __init__(self, binary, config_text, files=()):
        super().__init__(binary, target=None, config_text=config_text, files=files)

    def try_query(self, promql):
        """(samples, None) or (None, error text) for an instant query."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: a bad query, with Prometheus's reason
            try:
                body = json.load(e)
            except ValueError:
                return None, f"HTTP {e.code}"
        if body.get("status") != "success":
            return None, f"{body.get('errorType')}: {body.get('error')}"
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))], None
        return [(s["metric"], float(s["value"][1])) for s in data["result"]], None


def _inputs(x):
    i = triton.InferInput("pixels", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return [i]


def _expect_failure(call, code):
    """Runs call(); RuntimeError unless it fails with status `code`."""
    try:
        call()
    except InferenceServerException as e:
        if code in str(e.status()):
            return
        raise RuntimeError(f"expected {code}, got {e.status()}: {e}")
    except Exception as e:  # noqa: BLE001 - grpc.RpcError from the TrainingStub
        status = getattr(e, "code", lambda: None)()
        if status is not None and status.name == code:
            return
        raise RuntimeError(f"expected {code}, got {e!r}")
    raise RuntimeError(f"expected {code}, the call succeeded")


class SteadyLoad:
    """Traffic until stop(), so rates over short windows have data: each
    round four concurrent inferences, a Train call of 16 examples and, every
    fifth round, an inference of the wrong shape (the error ratio stays > 0)."""

    def __init__(self, address):
        self.address = address
        self.done = threading.Event()
        self.errors = []
        self.rounds = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        client = triton.InferenceServerClient(self.address)
        stub = TrainingStub(self.address)
        rng = np.random.default_rng(1)
        try:
            while not self.done.is_set():
                answered, failures = threading.Semaphore(0), []

                def callback(result, error):
                    if error is not None:
                        failures.append(error)
                    answered.release()

                for _ in range(4):
                    client.async_infer(MODEL, _inputs(rng.random((1, FEATURES), np.float32)),
                                       callback)
                for _ in range(4):
                    if not answered.acquire(timeout=30):
                        raise RuntimeError("an inference got no answer within 30 s")
                if failures:
                    raise RuntimeError(f"inference failed: {failures}")
                stub.train(MODEL, {"pixels": rng.random((16, FEATURES), np.float32),
                                   "labels": rng.integers(0, 10, 16)})
                if self.rounds % 5 == 0:
                    _expect_failure(lambda: client.infer(
                        MODEL, _inputs(np.zeros((1, FEATURES + 1), np.float32))),
                        "INVALID_ARGUMENT")
                self.rounds += 1
                self.done.wait(0.05)  # pacing: ~10 rounds/s on a shared 2-core machine
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(repr(e))
        finally:
            client.close()
            stub.close()

    def stop(self):
        self.done.set()
        self.thread.join(timeout=60)
        if self.errors:
            raise AssertionError(f"the steady load failed after {self.rounds} rounds: "
                                 f"{self.errors}")


class DashboardTest(unittest.TestCase):
    args = None  # set by main()

    @classmethod
    def setUpClass(cls):
        src = cls.args.source_dir
        cls.docker = os.path.join(src, "docker")
        cls.alerts_path = os.path.join(cls.docker, "prometheus", "alerts.yml")
        cls.prometheus_config = os.path.join(cls.docker, "prometheus", "prometheus.yml")
        with open(os.path.join(cls.docker, "grafana", "dashboards", "gradserve.json")) as f:
            cls.dashboard = json.load(f)

        cls.repo = ModelRepository(cls.args.models_dir, [MODEL])
        cls.addClassCleanup(cls.repo.remove)
        config_path = os.path.join(cls.repo.model_dir(MODEL), "config.pbtxt")
        with open(config_path) as f:
            config, n = re.subn(r"nonfinite:\s*\w+", "nonfinite: SKIP", f.read())
        if n != 1:
            raise RuntimeError(f"{MODEL}'s config.pbtxt has no one `nonfinite:` line")
        cls.repo.write_config(MODEL, config)
        cls.server = GradserveServer(cls.args.gradserve, cls.repo.path)
        cls.addClassCleanup(cls.server.__exit__, None, None, None)
        cls.server.start()
        if "metrics" not in cls.server.ports:
            raise RuntimeError(f"no 'serving metrics on' line\n{cls.server.log_text()}")

        with open(cls.prometheus_config) as f:
            cls.test_config = rewrite_config(f.read(), cls.server.url("metrics"))
        cls.prometheus = ConfiguredPrometheus(cls.args.prometheus, cls.test_config,
                                              [cls.alerts_path])
        cls.addClassCleanup(cls.prometheus.remove)
        cls.prometheus.start()

        cls._send_each_kind()
        cls.load = SteadyLoad(cls.server.grpc_address)
        cls.addClassCleanup(cls.load.stop)  # runs before the server is killed
        cls.deadline = time.monotonic() + POLL_S

    @classmethod
    def _send_each_kind(cls):
        """One of every kind of request, so every series exists."""
        address = cls.server.grpc_address
        rng = np.random.default_rng(0)
        with TrainingStub(address) as stub:
            client = triton.InferenceServerClient(address)
            try:
                for _ in range(4):
                    client.infer(MODEL, _inputs(rng.random((1, FEATURES), np.float32)))
                bad = _inputs(np.zeros((1, FEATURES + 3), np.float32))
                _expect_failure(lambda: client.infer(MODEL, bad), "INVALID_ARGUMENT")
                ok = _inputs(np.zeros((1, FEATURES), np.float32))
                _expect_failure(lambda: client.infer("no_such_model", ok), "NOT_FOUND")
            finally:
                client.close()

            def batch(n, scale=1.0):
                return {"pixels": rng.random((n, FEATURES), np.float32) * np.float32(scale),
                        "labels": rng.integers(0, 10, n)}

            for _ in range(3):
                stub.train(MODEL, batch(32))
            with_nan = batch(8)
            with_nan["pixels"][0, 0] = np.nan  # dropped under nonfinite: SKIP
            if stub.train(MODEL, with_nan).examples_in_step != 7:
                raise RuntimeError("the NaN example was not skipped")
            bad_labels = batch(4)
            bad_labels["labels"][0] = 42
            _expect_failure(lambda: stub.train(MODEL, bad_labels), "INVALID_ARGUMENT")
            # Overflows to Inf/NaN in the forward pass: a non-finite step.
            _expect_failure(lambda: stub.train(MODEL, batch(4, scale=3e38)), "INVALID_ARGUMENT")
            stub.checkpoint(MODEL)

    # -- helpers ---------------------------------------------------------------

    def poll_data(self, queries):
        """{query: samples} once every query returned data. Fails listing
        every query Prometheus rejects, or, at the shared deadline, every
        query still without data."""
        results, pending = {}, list(dict.fromkeys(queries))
        while True:
            errors = []
            for q in list(pending):
                samples, error = self.prometheus.try_query(q)
                if error is not None:
                    errors.append(f"  {q}\n    {error}")
                elif samples:
                    results[q] = samples
                    pending.remove(q)
            if errors:
                self.fail("Prometheus rejected:\n" + "\n".join(errors))
            if not pending:
                return results
            if time.monotonic() >= self.deadline:
                self.fail(f"no data within {POLL_S} s (scrape target: "
                          f"{self.prometheus.target_health()}; load rounds: "
                          f"{self.load.rounds}) for:\n" + "\n".join(f"  {q}" for q in pending))
            time.sleep(0.25)

    def promtool(self, *args):
        r = subprocess.run([self.args.promtool, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"promtool {' '.join(args)}:\n{r.stdout}")
        return r.stdout

    def alert_names(self):
        with open(self.alerts_path) as f:
            return re.findall(r"(?m)^\s*-\s*alert:\s*(\S+)", f.read())

    # -- 1. promtool -----------------------------------------------------------

    def test_promtool_checks(self):
        self.promtool("check", "rules", self.alerts_path)
        self.promtool("check", "config", self.prometheus_config)
        self.promtool("check", "config", self.prometheus.config)

    def test_promtool_rule_unit_tests(self):
        tested = re.findall(r"(?m)^  - name: (\S+)", RULE_TESTS)
        self.assertEqual(sorted(tested), sorted(self.alert_names()),
                         "every alert needs a test in RULE_TESTS, named after it")
        with tempfile.TemporaryDirectory(prefix="gradserve-rules-") as d:
            with open(self.alerts_path) as f:
                stripped = strip_annotations(f.read())
            rules = os.path.join(d, "alerts.yml")
            with open(rules, "w") as f:
                f.write(stripped)
            self.promtool("check", "rules", rules)
            tests = os.path.join(d, "alerts_test.yml")
            with open(tests, "w") as f:
                f.write(RULE_TESTS.replace("RULES", rules))
            self.promtool("test", "rules", tests)

    # -- 2. the dashboard ------------------------------------------------------

    def test_dashboard_queries_return_data(self):
        targets = dashboard_targets(self.dashboard)
        self.assertGreater(len(targets), 10)
        for title, ref, expr in targets:
            self.assertTrue(expr.strip(), f"panel {title!r} target {ref} has no expr")
        try:
            queries = [substitute_variables(expr) for _, _, expr in targets]
        except KeyError as e:
            self.fail(e.args[0])
        # GPU series exist only on a server that has used a GPU: without one
        # their queries must still be valid PromQL, and return data otherwise.
        with urllib.request.urlopen(f"http://{self.server.url('metrics')}/metrics",
                                    timeout=5) as r:
            has_gpu = GPU_METRIC in r.read().decode()
        gpu_only = [q for q in queries if GPU_METRIC in q and not has_gpu]
        for q in gpu_only:
            samples, error = self.prometheus.try_query(q)
            self.assertIsNone(error, f"Prometheus rejected {q}")
        results = self.poll_data([q for q in queries if q not in gpu_only])
        rows = [(f"{title} [{ref}]", len(results.get(q, [])),
                 f"{results[q][0][1]:.4g}" if q in results else "(no GPU)", q)
                for (title, ref, _), q in zip(targets, queries)]
        print_table("dashboard panels (Grafana variables substituted)", rows)

    def test_dashboard_variables(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        model = variables["model"]
        query = model["query"]["query"] if isinstance(model["query"], dict) else model["query"]
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        self.assertIsNotNone(m, f"model variable query {query!r}")
        metric, label = m.groups()
        url = (f"{self.prometheus.url}/api/v1/label/{label}/values?"
               f"{urllib.parse.urlencode({'match[]': metric})}")
        while True:
            with urllib.request.urlopen(url, timeout=5) as r:
                values = json.load(r)["data"]
            if MODEL in values:
                break
            if time.monotonic() >= self.deadline:
                self.fail(f"{query} gave {values}, not {MODEL}")
            time.sleep(0.25)

    def test_dashboard_layout(self):
        d = self.dashboard
        self.assertEqual(d["uid"], "gradserve")
        self.assertGreaterEqual(d["schemaVersion"], 36)
        ids, cells = set(), set()
        for p in d["panels"]:
            self.assertNotIn(p["id"], ids, f"duplicate panel id {p['id']}")
            ids.add(p["id"])
            self.assertIn(p["type"], ("row", "timeseries", "stat"), p["title"])
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"panel {p['title']!r} overlaps another")
                    cells.add((x, y))
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), f"{p['title']}: duplicate refIds")
            for t in p["targets"]:
                self.assertEqual(t["datasource"], p["datasource"], p["title"])
        titles = [p["title"] for p in d["panels"]]
        self.assertIn("Memory (host resident set, GPU in use)", titles)

    # -- 3. the alert rules ----------------------------------------------------

    def test_alert_rules_evaluate(self):
        # As Prometheus loaded them (its printed form of each expression).
        groups = self.prometheus._get("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        self.assertEqual(sorted(r["name"] for r in rules), sorted(self.alert_names()))
        values = []
        for rule in rules:
            self.assertEqual(rule["type"], "alerting", rule["name"])
            m = ALERT_FORM.match(rule["query"])
            self.assertIsNotNone(m, f"{rule['name']}: {rule['query']!r} is not "
                                    "`<value> <op> <number>`")
            _, error = self.prometheus.try_query(rule["query"])
            self.assertIsNone(error, f"{rule['name']}: {error}")
            values.append((rule["name"], m))
        results = self.poll_data([m["value"] for _, m in values])
        rows = [(f"{name} ({m['op']} {m['threshold']})", len(results[m["value"]]),
                 f"{results[m['value']][0][1]:.4g}", m["value"]) for name, m in values]
        print_table("alert rules: the value each compares", rows)
        # Prometheus's own evaluation (every second) finds no error either.
        while True:
            groups = self.prometheus._get("/api/v1/rules")["groups"]
            unhealthy = [(r["name"], r["health"], r.get("lastError", ""))
                         for g in groups for r in g["rules"] if r["health"] != "ok"]
            if not unhealthy:
                break
            if time.monotonic() >= self.deadline:
                self.fail(f"rules not healthy: {unhealthy}")
            time.sleep(0.25)

    # -- 4. compose and Grafana provisioning -----------------------------------

    @unittest.skipIf(yaml is None, "PyYAML is not installed")
    def test_compose_and_provisioning(self):
        def load(*path):
            with open(os.path.join(self.docker, *path)) as f:
                return yaml.safe_load(f)

        compose = load("compose.yaml")
        services = compose["services"]
        self.assertEqual(set(services), {"gradserve", "prometheus", "grafana"})
        mounts = {}  # service -> {container path: host path (absolute)}
        for name, s in services.items():
            mounts[name] = {}
            for v in s.get("volumes", []):
                source, target = v.split(":")[:2]
                if source.startswith("."):  # a bind mount; otherwise a named volume
                    source = os.path.normpath(os.path.join(self.docker, source))
                    self.assertTrue(os.path.exists(source), f"{name}: {v}: no {source}")
                else:
                    self.assertIn(source, compose.get("volumes", {}), f"{name}: {v}")
                mounts[name][target] = source

        gs = services["gradserve"]
        self.assertEqual(gs["image"], "gradserve:latest")
        context = os.path.normpath(os.path.join(self.docker, gs["build"]["context"]))
        self.assertEqual(context, os.path.normpath(self.args.source_dir))
        self.assertEqual(gs["build"]["dockerfile"], "docker/Dockerfile")
        self.assertEqual(sorted(gs["ports"]), ["8000:8000", "8001:8001", "8002:8002"])
        # The image's model repository, kept in a named volume (copied from the image).
        self.assertIn(mounts["gradserve"]["/models"], compose["volumes"])
        with open(os.path.join(context, gs["build"]["dockerfile"])) as f:
            dockerfile = f.read()
        self.assertRegex(dockerfile, r"(?m)^EXPOSE 8000 8001 8002$")
        self.assertRegex(dockerfile, r"(?m)^CMD .*--model-repository=/models")

        # Prometheus: its config, and the rules beside it (rule_files is relative).
        prom = services["prometheus"]
        self.assertTrue(prom["image"].startswith("prom/prometheus"))
        self.assertEqual(mounts["prometheus"]["/etc/prometheus/prometheus.yml"],
                         self.prometheus_config)
        config = load("prometheus", "prometheus.yml")
        for rule_file in config["rule_files"]:
            self.assertEqual(mounts["prometheus"][os.path.join("/etc/prometheus", rule_file)],
                             self.alerts_path)
        (job,) = config["scrape_configs"]
        self.assertEqual(job["job_name"], "gradserve")  # the dashboard and alerts use it
        self.assertEqual(job["scrape_interval"], "5s")
        self.assertEqual(job["static_configs"][0]["targets"], ["gradserve:8002"])

        # Grafana: provisioning, the dashboards folder, the data source's URL.
        graf = services["grafana"]
        self.assertTrue(graf["image"].startswith("grafana/grafana"))
        provisioning = mounts["grafana"]["/etc/grafana/provisioning"]
        self.assertEqual(provisioning, os.path.join(self.docker, "grafana", "provisioning"))
        (source,) = load("grafana", "provisioning", "datasources", "prometheus.yaml")["datasources"]
        self.assertEqual(source["type"], "prometheus")
        self.assertEqual(source["url"], "http://prometheus:9090")
        self.assertTrue(any(p.endswith("9090") for p in prom["ports"]))
        self.assertEqual(source["jsonData"]["timeInterval"], job["scrape_interval"])
        (provider,) = load("grafana", "provisioning", "dashboards", "dashboards.yaml")["providers"]
        folder = mounts["grafana"][provider["options"]["path"]]
        self.assertTrue(os.path.exists(os.path.join(folder, "gradserve.json")))
        home = graf["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        if home:
            self.assertEqual(os.path.dirname(home), provider["options"]["path"])

    @unittest.skipIf(yamllint_linter is None, "yamllint is not installed")
    def test_yamllint(self):
        problems = []
        for folder, _, files in os.walk(self.docker):
            for name in sorted(files):
                if name.endswith((".yml", ".yaml")):
                    path = os.path.join(folder, name)
                    with open(path) as f:
                        problems += [f"{os.path.relpath(path, self.docker)}:{p.line}:{p.column}: "
                                     f"{p.level}: {p.desc}"
                                     for p in yamllint_linter.run(f.read(), YAMLLINT_CONFIG, path)]
        self.assertEqual(problems, [])


def main():
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--source-dir", default=os.path.dirname(os.path.dirname(here)),
                        help="the repository root (docker/ is read from it)")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus",
                        help="the Prometheus server binary")
    parser.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool",
                        help="Prometheus's promtool")
    args, rest = parse_args(parser)
    args.source_dir = os.path.abspath(args.source_dir)
    DashboardTest.args = args
    unittest.main(argv=rest, verbosity=2)


if __name__ == "__main__":
    main()
