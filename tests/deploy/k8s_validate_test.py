#!/usr/bin/env python3
"""Checks the Kubernetes manifests of deploy/k8s offline (no cluster, no network).

1. yamllint, with deploy/k8s/.yamllint.yaml, warnings counted as errors.
2. Every object of every *.yaml against the OpenAPI schemas that PyPI's
   kubernetes-validate bundles, in strict mode (unknown fields are errors), for
   each of SCHEMA_VERSIONS. A kind/apiVersion with no schema is an error here
   (the kubernetes-validate CLI only warns about it).
3. kustomization.yaml lists files of the folder; where `kubectl` is on PATH,
   `kubectl kustomize` renders it and the rendered objects pass (2) too.
4. What the API server, the kubelet or gradserve would reject later (selectors
   vs labels, targetPorts vs named ports, claims, mounts, $(VAR) vs env) and
   the rules deploy/k8s/README.md states: probe paths and startup budget,
   terminationGracePeriodSeconds >= preStop + 2 x --exit-timeout-secs +
   CHECKPOINT_MARGIN_SECS (serving/main.cc waits for REST, then for gRPC, each
   with a fresh deadline, then checkpoints), checkpoints on a writable PVC,
   prometheus.io annotations, security context, requests and limits, GPU
   consistency; variants differ from deployment.yaml only where VARIANTS allows.
5. Negative checks, so that (1)-(4) cannot pass vacuously: each of MUTATIONS
   breaks one line of a temporary copy of the folder and the check must report
   the expected error.
6. With --gradserve (and --models-dir): gradserve started with deployment.yaml's
   args (repository, checkpoint dir and ports redirected to temporary ones)
   must get ready, answer every probe path and the scrape path with 200, and
   exit 0 on SIGTERM within the grace period less the preStop sleep.

Sockets are refused during (1)-(5): they need no network. Exits 1 listing problems.

  k8s_validate_test.py [--source-dir REPO_ROOT] [--gradserve BIN --models-dir DIR]
"""

import argparse
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml
from kubernetes_validate import utils as kv
from yamllint import linter as yamllint_linter
from yamllint.config import YamlLintConfig

SCHEMA_VERSIONS = ("1.30", "1.33")  # 1.30: the oldest with the preStop sleep action
CHECKPOINT_MARGIN_SECS = 15  # unloading, including the final training checkpoint
MIN_STARTUP_BUDGET_SECS = 300  # a slow initial load must not be killed
DEFAULT_EXIT_TIMEOUT_SECS = 30  # gradserve --help
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
CONTAINER = "gradserve"
POD = "spec.template.spec"
C0 = POD + ".containers[0]"
# Deployment files besides deployment.yaml, and where they may differ from it.
VARIANTS = {
    "deployment-gpu.yaml": [POD + ".nodeSelector", POD + ".tolerations", C0 + ".image",
                            C0 + ".env", C0 + ".resources"],
    "deployment-models-pvc.yaml": [C0 + ".volumeMounts", POD + ".volumes"],
}
# (what breaks, file, text, replacement, an expected substring of the error)
MUTATIONS = [
    ("misspelled field", "deployment.yaml", "imagePullPolicy: IfNotPresent",
     "imagePullPolicyy: IfNotPresent", "'imagePullPolicyy' was unexpected"),
    ("wrong type", "deployment.yaml", "containerPort: 8000", 'containerPort: "8000"',
     "is not of type 'integer'"),
    ("unknown apiVersion", "deployment.yaml", "apiVersion: apps/v1", "apiVersion: apps/v1beta3",
     "no schema"),
    ("duplicated key", "service.yaml", "  type: ClusterIP\n",
     "  type: ClusterIP\n  type: NodePort\n", "duplication of key"),
    ("short grace period", "deployment.yaml", "terminationGracePeriodSeconds: 90",
     "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds 45 <"),
    ("liveness path", "deployment.yaml", "path: /v2/health/live", "path: /v2/health/alive",
     "livenessProbe path"),
    ("service targetPort", "service.yaml", "targetPort: metrics", "targetPort: metric",
     "targetPort 'metric'"),
    ("variant drift", "deployment-gpu.yaml", "--exit-timeout-secs=30", "--exit-timeout-secs=20",
     "differs from deployment.yaml at spec.template.spec.containers[0].args"),
    ("kustomization resource", "kustomization.yaml", "  - service.yaml", "  - services.yaml",
     "services.yaml"),
]


@contextlib.contextmanager
def no_network():
    """Makes every socket connect fail: the offline checks must not need one."""
    def refuse(*_args, **_kwargs):
        raise OSError("network access during an offline check")
    saved = socket.socket.connect, socket.socket.connect_ex, socket.create_connection
    socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = saved


def get(obj, path, default=None):
    """obj at a dotted path ("spec.template.metadata.labels"), or default."""
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def container_of(deployment):
    for c in get(deployment, POD + ".containers", []):
        if c.get("name") == CONTAINER:
            return c
    return None


def flags_of(container):
    """{"--flag": "value"} of the container's args (True for a bare flag)."""
    flags = {}
    for arg in container.get("args", []):
        name, eq, value = str(arg).partition("=")
        flags[name] = value if eq else True
    return flags


def differences(a, b, path=""):
    """The paths ("x.y[0].z") where two parsed YAML documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield path


def cpu_cores(quantity):
    """A CPU quantity ("4", "500m") in whole cores, rounded up (divisor 1)."""
    q = str(quantity)
    return math.ceil(int(q[:-1]) / 1000) if q.endswith("m") else math.ceil(float(q))


# -- 1-3: lint, schemas, kustomization -------------------------------------

def manifest_files(folder):
    return sorted(f for f in os.listdir(folder)
                  if f.endswith((".yaml", ".yml")) and not f.startswith("."))


def lint(folder):
    config = YamlLintConfig(file=os.path.join(folder, ".yamllint.yaml"))
    errors = []
    for name in manifest_files(folder) + [".yamllint.yaml"]:
        with open(os.path.join(folder, name)) as f:
            for p in yamllint_linter.run(f.read(), config, name):
                errors.append(f"{name}:{p.line}:{p.column}: yamllint {p.level}: {p.desc}")
    return errors


def validate_schema(where, obj):
    errors = []
    for version in SCHEMA_VERSIONS:
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{where}: Kubernetes {version} schema: {path}: {e.message}")
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as e:
            errors.append(f"{where}: Kubernetes {version}: no schema: {e.message}")
        except kv.VersionNotSupportedError:
            errors.append(f"{where}: kubernetes-validate has no schemas for {version}")
    return errors


def load(folder):
    """({file: [objects]}, errors) for every manifest but kustomization.yaml."""
    objects, errors = {}, []
    for name in manifest_files(folder):
        if name == "kustomization.yaml":
            continue
        try:
            with open(os.path.join(folder, name)) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
        except yaml.YAMLError as e:
            errors.append(f"{name}: not YAML: {e}")
            continue
        if not docs:
            errors.append(f"{name}: no objects")
        objects[name] = docs
    return objects, errors


def check_kustomization(folder, objects):
    errors = []
    with open(os.path.join(folder, "kustomization.yaml")) as f:
        k = yaml.safe_load(f) or {}
    if k.get("kind") != "Kustomization":
        errors.append("kustomization.yaml: kind is not Kustomization")
    for r in k.get("resources", []):
        if r not in objects:
            errors.append(f"kustomization.yaml: resource {r} is not a manifest of {folder}")
    return errors


def check_rendered_kustomization(folder):
    """`kubectl kustomize` output against the schemas; [] when no kubectl."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("kubectl not on PATH: kustomization.yaml not rendered")
        return []
    run = subprocess.run([kubectl, "kustomize", folder], capture_output=True, text=True)
    if run.returncode != 0:
        return [f"kubectl kustomize {folder}: {run.stderr.strip()}"]
    return [e for obj in yaml.safe_load_all(run.stdout) if obj
            for e in validate_schema(f"kustomize output {obj['kind']}", obj)]


# -- 4: what the cluster would reject, and the promised rules --------------

def check_pod_spec(where, spec):
    """Security and resources of any pod spec (Deployment template or Pod)."""
    errors = []
    sc = spec.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or not sc.get("runAsUser"):
        errors.append(f"{where}: pod needs runAsNonRoot: true and a non-zero runAsUser")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec.get("containers", []):
        csc = c.get("securityContext", {})
        if csc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{where}: container {c['name']}: readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{where}: container {c['name']}: allowPrivilegeEscalation not false")
        if "ALL" not in get(csc, "capabilities.drop", []):
            errors.append(f"{where}: container {c['name']}: capabilities do not drop ALL")
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in get(c, f"resources.{kind}", {}):
                    errors.append(f"{where}: container {c['name']}: no {r} in resources.{kind}")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                errors.append(f"{where}: volumeMount {m['name']} has no volume")
        for p in c.get("ports", []):
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", p.get("name", "")):
                errors.append(f"{where}: port name {p.get('name')!r} is not an IANA_SVC_NAME")
    return errors


def check_probes(where, c):
    errors = []
    for probe, path in (("startupProbe", "/v2/health/ready"),
                        ("readinessProbe", "/v2/health/ready"),
                        ("livenessProbe", "/v2/health/live")):
        http_get = get(c, f"{probe}.httpGet", {})
        if http_get.get("path") != path:
            errors.append(f"{where}: {probe} path {http_get.get('path')!r}, wanted {path}")
        if http_get.get("port") not in ("http", PORTS["http"]):
            errors.append(f"{where}: {probe} port {http_get.get('port')!r} is not http")
    startup = c.get("startupProbe", {})
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    if budget < MIN_STARTUP_BUDGET_SECS:
        errors.append(f"{where}: startupProbe allows {budget} s, under "
                      f"{MIN_STARTUP_BUDGET_SECS} s for a slow initial load")
    return errors


def check_deployment(where, d, claims):
    errors = []
    spec = get(d, POD, {})
    labels = get(d, "spec.template.metadata.labels", {})
    if not get(d, "spec.selector.matchLabels", {}).items() <= labels.items():
        errors.append(f"{where}: selector.matchLabels not among the pod's labels")
    c = container_of(d)
    if c is None:
        return errors + [f"{where}: no container named {CONTAINER}"]
    errors += check_pod_spec(where, spec) + check_probes(where, c)
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if ports != PORTS:
        errors.append(f"{where}: container ports {ports}, wanted {PORTS}")
    flags = flags_of(c)
    if any(f.endswith("-port") for f in flags):
        errors.append(f"{where}: args set a port; the container ports assume the defaults")
    if flags.get("--model-repository") != "/models":
        errors.append(f"{where}: --model-repository is not /models")
    env = {e["name"] for e in c.get("env", [])}
    for var in re.findall(r"\$\((\w+)\)", " ".join(map(str, c.get("args", [])))):
        if var not in env:
            errors.append(f"{where}: args use $({var}), which env does not define")

    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for v in volumes.values():
        claim = get(v, "persistentVolumeClaim.claimName")
        if claim is not None and claim not in claims:
            errors.append(f"{where}: volume {v['name']} claims {claim}, not a PVC here")
    ckpt = mounts.get(flags.get("--checkpoint-dir"))
    if ckpt is None or ckpt.get("readOnly") or \
            "persistentVolumeClaim" not in volumes.get(ckpt["name"], {}):
        errors.append(f"{where}: --checkpoint-dir is not a writable PVC mount")
    if "/models" in mounts and "persistentVolumeClaim" not in volumes.get(
            mounts["/models"]["name"], {}):
        errors.append(f"{where}: /models is mounted but not from a PVC")

    exit_secs = int(flags.get("--exit-timeout-secs", DEFAULT_EXIT_TIMEOUT_SECS))
    pre_stop = get(c, "lifecycle.preStop.sleep.seconds", 0)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    need = pre_stop + 2 * exit_secs + CHECKPOINT_MARGIN_SECS
    if grace < need:
        errors.append(f"{where}: terminationGracePeriodSeconds {grace} < preStop {pre_stop} + "
                      f"2 x --exit-timeout-secs {exit_secs} + {CHECKPOINT_MARGIN_SECS}")

    notes = get(d, "spec.template.metadata.annotations", {})
    want = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORTS["metrics"]),
            "prometheus.io/path": "/metrics"}
    for key, value in want.items():
        if notes.get(key) != value:
            errors.append(f"{where}: pod annotation {key} is {notes.get(key)!r}, wanted {value!r}")

    gpus = get(c, "resources.limits", {}).get("nvidia.com/gpu")
    if ("gradserve-cuda" in c.get("image", "")) != (gpus is not None):
        errors.append(f"{where}: image {c.get('image')} vs nvidia.com/gpu limit {gpus}")
    if gpus is not None and not ((spec.get("nodeSelector") or spec.get("affinity"))
                                 and spec.get("tolerations")):
        errors.append(f"{where}: a GPU pod needs a nodeSelector/affinity and a toleration")
    return errors


def check_service(where, s, deployments):
    errors = []
    selector = get(s, "spec.selector", {})
    for name, d in deployments.items():
        if not selector.items() <= get(d, "spec.template.metadata.labels", {}).items():
            errors.append(f"{where}: selector does not match the pods of {name}")
        names = {p.get("name") for p in (container_of(d) or {}).get("ports", [])}
        for p in get(s, "spec.ports", []):
            if p.get("targetPort") not in names:
                errors.append(f"{where}: targetPort {p.get('targetPort')!r} is not a port "
                              f"of {name}")
    by_name = {p.get("name"): p for p in get(s, "spec.ports", [])}
    if {n: p.get("port") for n, p in by_name.items()} != PORTS:
        errors.append(f"{where}: ports {sorted(by_name)}, wanted {PORTS}")
    if by_name.get("grpc", {}).get("appProtocol") != "grpc":
        errors.append(f"{where}: port grpc lacks appProtocol: grpc")
    return errors


def check_rules(objects):
    errors = []
    of_kind = {}
    for name, docs in objects.items():
        for i, obj in enumerate(docs):
            of_kind.setdefault(obj.get("kind"), []).append((f"{name}[{i}]", obj))
    claims = {get(o, "metadata.name") for _, o in of_kind.get("PersistentVolumeClaim", [])}
    deployments = {w: o for w, o in of_kind.get("Deployment", [])}
    for where, d in deployments.items():
        errors += check_deployment(where, d, claims)
    for where, s in of_kind.get("Service", []):
        errors += check_service(where, s, deployments)
    for where, p in of_kind.get("Pod", []):
        errors += check_pod_spec(where, p.get("spec", {}))
        for v in get(p, "spec.volumes", []):
            claim = get(v, "persistentVolumeClaim.claimName")
            if claim is not None and claim not in claims:
                errors.append(f"{where}: volume {v['name']} claims {claim}, not a PVC here")

    base = objects.get("deployment.yaml", [None])[0]
    if base is None:
        return errors + ["deployment.yaml: missing"]
    for name in objects:
        if name.startswith("deployment") and name != "deployment.yaml":
            if name not in VARIANTS:
                errors.append(f"{name}: a Deployment variant VARIANTS does not know")
                continue
            for path in differences(base, objects[name][0]):
                if not any(path == a or path.startswith((a + ".", a + "["))
                           for a in VARIANTS[name]):
                    errors.append(f"{name}: differs from deployment.yaml at {path}")
    return errors


def check_folder(folder, render=False):
    """Every problem (1)-(4) finds in `folder`, as lines."""
    errors = lint(folder)
    objects, load_errors = load(folder)
    errors += load_errors
    for name, docs in objects.items():
        for obj in docs:
            errors += validate_schema(f"{name} {obj.get('kind')}/{get(obj, 'metadata.name')}",
                                      obj)
    errors += check_kustomization(folder, objects)
    if render:
        errors += check_rendered_kustomization(folder)
    return errors + check_rules(objects)


# -- 5: negative checks ----------------------------------------------------

def check_mutations(folder):
    errors = []
    for what, name, old, new, expected in MUTATIONS:
        with open(os.path.join(folder, name)) as f:
            text = f.read()
        if text.count(old) != 1:
            errors.append(f"mutation '{what}': {old!r} is not once in {name}; update MUTATIONS")
            continue
        with tempfile.TemporaryDirectory(prefix="k8s-mutant-") as tmp:
            copy = os.path.join(tmp, "k8s")
            shutil.copytree(folder, copy)
            with open(os.path.join(copy, name), "w") as f:
                f.write(text.replace(old, new))
            found = check_folder(copy)
        if not any(expected in e for e in found):
            errors.append(f"mutation '{what}' of {name} not caught (wanted {expected!r}); "
                          f"reported: {found}")
        else:
            print(f"caught mutation '{what}': {next(e for e in found if expected in e)}")
    return errors


# -- 6: gradserve with the manifest's command line -------------------------

def check_server(folder, binary, models_dir, source_dir):
    sys.path.insert(0, os.path.join(source_dir, "tests", "serving"))
    import server_util  # the e2e tests' launcher: ephemeral loopback ports

    with open(os.path.join(folder, "deployment.yaml")) as f:
        d = yaml.safe_load(f)
    c = container_of(d)
    cores = str(cpu_cores(c["resources"]["limits"]["cpu"]))  # what the kubelet passes
    env = {e["name"]: cores for e in c.get("env", [])
           if get(e, "valueFrom.resourceFieldRef.resource") == "limits.cpu"}
    ckpt_dir = tempfile.mkdtemp(prefix="k8s-checkpoints-")
    args = []
    for arg in c["args"]:
        arg = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], str(arg))
        if arg.startswith("--checkpoint-dir="):
            arg = f"--checkpoint-dir={ckpt_dir}"
        if not arg.startswith("--model-repository="):
            args.append(arg)
    repo = server_util.ModelRepository(models_dir, ["digits_mlp"])
    errors = []
    try:
        with server_util.GradserveServer(binary, repo.path, args) as server:
            server.start(timeout=120)
            print(f"gradserve {' '.join(args)}: ready")
            probes = [get(c, f"{p}.httpGet.path") for p in
                      ("startupProbe", "readinessProbe", "livenessProbe")]
            scrape = get(d, "spec.template.metadata.annotations")["prometheus.io/path"]
            for port, path in [("http", p) for p in probes] + [("metrics", scrape)]:
                url = f"http://{server.url(port)}{path}"
                with urllib.request.urlopen(url, timeout=10) as r:
                    if r.status != 200:
                        errors.append(f"GET {url}: {r.status}")
            grace = get(d, "spec.template.spec.terminationGracePeriodSeconds")
            budget = grace - get(c, "lifecycle.preStop.sleep.seconds", 0)
            began = time.monotonic()
            server.send_signal(signal.SIGTERM)
            status = server.wait(timeout=budget)
            print(f"SIGTERM: exit {status} after {time.monotonic() - began:.1f} s "
                  f"(budget {budget} s)")
            if status != 0:
                errors.append(f"gradserve exited {status} on SIGTERM")
    except Exception as e:  # noqa: BLE001 - reported as a failure with its reason
        errors.append(f"gradserve with deployment.yaml's args: {type(e).__name__}: {e}")
    finally:
        repo.remove()
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return errors


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source-dir", default=os.path.dirname(os.path.dirname(here)))
    parser.add_argument("--gradserve", help="also run this binary with deployment.yaml's args")
    parser.add_argument("--models-dir", help="configs/models, with --gradserve")
    args = parser.parse_args()
    folder = os.path.join(args.source_dir, "deploy", "k8s")

    with no_network():
        errors = check_folder(folder, render=True)
        if errors:
            print("\n".join(["deploy/k8s has problems:"] + errors))
            return 1
        print(f"deploy/k8s: {len(manifest_files(folder))} files pass yamllint, the Kubernetes "
              f"{' and '.join(SCHEMA_VERSIONS)} schemas (strict) and the rules")
        errors += check_mutations(folder)
    if args.gradserve:
        errors += check_server(folder, args.gradserve, args.models_dir, args.source_dir)
    if errors:
        print("\n".join(["FAILED:"] + errors))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
