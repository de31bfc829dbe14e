"""Start the real gradserve binary for end-to-end tests, and talk about it.

Shared by the tests of tests/serving/ (gRPC, REST, metrics). Standard library
only, so any test can import it whatever client it drives the server with.

    repo = ModelRepository(models_dir, ["digits_mlp"])      # a temp copy
    repo.write_config("digits_mlp", "max_batch_size: 8 ...")
    with GradserveServer(binary, repo.path) as server:      # ports 0, loopback
        server.start()                                      # waits for "ready"
        url = server.grpc_address                           # "127.0.0.1:PORT"
        status, index = server.rest("POST", "/v2/repository/index")  # REST, JSON
        ...
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
    repo.remove()

Ports: every port flag is 0 and --address is 127.0.0.1; the bound ports are
read from the server's log lines "serving <PROTOCOL> on <ADDR>:<PORT>"
(server.ports maps the protocol, lower case, to its port: "grpc", and "http"
or "metrics" once the server logs them). The server's stderr goes to a file
(server.log_text()); it is printed when start() fails or the `with` block
raises, and by dump_log(); a log file made here (no log_path given) is
removed when the test process exits.

Lifetime: the server is killed when the thread that called start() exits
(PR_SET_PDEATHSIG: start it from the main thread), so a test killed by a ctest
timeout leaves no server behind; stop()/kill() or leaving the `with` block
end it. Never rely on a sleep: use wait_until() or wait_for_log().
"""

import argparse
import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

_SERVING_LINE = re.compile(r"serving (\S+) on (\S+):(\d+)")
_READY_LINE = re.compile(r"gradserve: ready$", re.MULTILINE)


def add_common_args(parser):
    """--gradserve (the server binary) and --models-dir (configs/models)."""
    parser.add_argument("--gradserve", required=True, help="the gradserve binary")
    parser.add_argument("--models-dir", required=True,
                        help="the example model repository (configs/models)")
    return parser


def parse_args(parser=None, argv=None):
    """Parses the common arguments (plus the parser's own); returns (args,
    rest) where rest is argv[0] followed by what unittest should see."""
    parser = parser or argparse.ArgumentParser()
    if not any(a.dest == "gradserve" for a in parser._actions):
        add_common_args(parser)
    argv = sys.argv if argv is None else argv
    args, rest = parser.parse_known_args(argv[1:])
    return args, [argv[0]] + rest


def wait_until(predicate, timeout, interval=0.02, message="condition"):
    """Calls predicate() until it returns a truthy value, and returns it.
    TimeoutError naming `message` (and the last value) after `timeout` s."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message}: not reached within {timeout} s (last value {value!r})")
        time.sleep(interval)


class ModelRepository:
    """A temporary model repository holding copies of models of `source_dir`
    (config.pbtxt and every version), so a test may add versions, rewrite
    configs and break files without touching configs/models."""

    def __init__(self, source_dir, models=(), root=None):
        self.source_dir = source_dir
        self.path = tempfile.mkdtemp(prefix="gradserve-repo-", dir=root)
        for name in models:
            self.add_model(name)

    def model_dir(self, name):
        return os.path.join(self.path, name)

    def add_model(self, name, as_name=None, versions=None):
        """Copies source model `name` as `as_name` (default: the same name; a
        renamed copy has its config.pbtxt's name line rewritten), with only
        `versions` (ints) when given. Returns the model's directory."""
        src = os.path.join(self.source_dir, name)
        dst = self.model_dir(as_name or name)
        os.makedirs(dst)
        for entry in os.listdir(src):
            if entry.isdigit():
                if versions is None or int(entry) in versions:
                    shutil.copytree(os.path.join(src, entry), os.path.join(dst, entry))
            elif entry == "config.pbtxt":
                with open(os.path.join(src, entry)) as f:
                    text = f.read()
                if as_name:
                    text = re.sub(r'(?m)^name:\s*"[^"]*"', f'name: "{as_name}"', text)
                with open(os.path.join(dst, entry), "w") as f:
                    f.write(text)
        return dst

    def write_config(self, name, text):
        """Replaces <model>/config.pbtxt (atomically: written aside, renamed)."""
        path = os.path.join(self.model_dir(name), "config.pbtxt")
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    def add_version(self, name, version, from_dir, mutate=None):
        """Copies the saved model `from_dir` in as <model>/<version>,
        atomically: built in a hidden folder beside it (which the server
        ignores), `mutate(folder)` applied, then renamed into place."""
        staging = os.path.join(self.model_dir(name), f".staging-{version}")
        shutil.copytree(from_dir, staging)
        if mutate:
            mutate(staging)
        os.rename(staging, os.path.join(self.model_dir(name), str(version)))
        return os.path.join(self.model_dir(name), str(version))

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


try:  # resolved here, not in the forked child (no dlopen between fork and exec)
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except OSError:
    _prctl = None


def _die_with_parent():
    # Runs in the child before exec: SIGKILL it when the thread that started it
    # dies (a ctest timeout must not leave servers behind).
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_OWN_LOGS = []  # log files made here: removed when the test process exits


@atexit.register
def _remove_own_logs():
    for path in _OWN_LOGS:
        try:
            os.unlink(path)
        except OSError:
            pass


class GradserveServer:
    """One gradserve process on ephemeral loopback ports.

    args: extra flags ("--model-control-mode=poll", ...); the port and address
    flags are set here. Not thread-safe: drive it from the test's thread.
    """

    def __init__(self, binary, repository, args=(), log_path=None):
        self.binary = binary
        self.repository = repository
        self.args = list(args)
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="gradserve-", suffix=".log")
            os.close(fd)
            _OWN_LOGS.append(log_path)
        self.log_path = log_path
        self.process = None
        self.ports = {}

    # -- lifecycle ---------------------------------------------------------

    def start(self, wait_ready=True, timeout=30):
        """Starts the server; returns once it logged its gRPC port and (with
        wait_ready) "ready" (the initial load finished). RuntimeError with
        the log when it exits or times out first."""
        command = [self.binary, f"--model-repository={self.repository}",
                   "--address=127.0.0.1", "--grpc-port=0", "--http-port=0",
                   "--metrics-port=0"] + self.args
        self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=self._log_file, stderr=subprocess.STDOUT,
                                        preexec_fn=_die_with_parent)
        try:
            self.wait_for_log(_SERVING_LINE, timeout)
            if wait_ready:
                self.wait_for_log(_READY_LINE, timeout)
        except (TimeoutError, RuntimeError) as e:
            self.kill()
            raise RuntimeError(f"gradserve did not start: {e}\n--- log ---\n{self.log_text()}")
        self.ports = {m.group(1).lower(): int(m.group(3))
                      for m in _SERVING_LINE.finditer(self.log_text())}
        return self

    @property
    def pid(self):
        return self.process.pid

    @property
    def grpc_port(self):
        return self.ports["grpc"]

    @property
    def grpc_address(self):
        return f"127.0.0.1:{self.ports['grpc']}"

    def url(self, protocol):
        """"127.0.0.1:PORT" of a logged protocol ("grpc", "http", "metrics")."""
        return f"127.0.0.1:{self.ports[protocol]}"

    def rest(self, method, path, body=None, timeout=30):
        """(HTTP status, parsed JSON body) of a REST call to the server's HTTP
        port; `body` (when given) is sent as JSON, an empty reply parses as
        None. An error status is returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.url('http')}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def running(self):
        return self.process is not None and self.process.poll() is None

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def wait(self, timeout):
        """The exit status; subprocess.TimeoutExpired if still running."""
        return self.process.wait(timeout=timeout)

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._close()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return self._close()

    def _close(self):
        if getattr(self, "_log_file", None):
            self._log_file.close()
            self._log_file = None
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        if exc[0] is not None:
            self.dump_log()
        return False

    # -- the log -----------------------------------------------------------

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def dump_log(self, out=sys.stderr):
        print(f"--- gradserve log ({self.log_path}) ---\n{self.log_text()}--- end ---",
              file=out)

    def wait_for_log(self, pattern, timeout, after=0):
        """The first match of `pattern` (str or compiled regex) in the log at
        or after character `after`. TimeoutError, or RuntimeError when the
        process exits without logging it."""
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text(), after)
            if match:
                return match
            if self.process.poll() is not None:
                match = regex.search(self.log_text(), after)
                if match:
                    return match
                raise RuntimeError(f"gradserve exited ({self.process.returncode}) "
                                   f"before logging {regex.pattern!r}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {regex.pattern!r} in the log within {timeout} s")
            time.sleep(0.02)


def start_module_server(binary, repo, args=()):
    """A started GradserveServer on `repo` for a test module's setUpModule;
    removes the repository if the server does not start."""
    server = GradserveServer(binary, repo.path, args)
    try:
        server.start()
    except Exception:
        repo.remove()
        raise
    return server


def stop_module_server(server, repo):
    """tearDownModule's counterpart: kills the server (printing its log if it
    had exited on its own with an error) and removes the repository."""
    if server is not None:
        server.kill()
        if server.process.returncode not in (0, -9):
            server.dump_log()
    if repo is not None:
        repo.remove()
