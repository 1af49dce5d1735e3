"""A ``letta server`` process of the build under test, owned by the kit from start to stop.

``LettaServerProcess(name, workdir, env=...)`` starts the build's server (through
``kimi_conformance.serve_letta``, with the interpreter and ``PYTHONPATH`` of the running
kit, so the build's overlay comes first) on a free loopback port, with a private
``HOME`` (its SQLite database) under ``workdir/<name>/`` and its output in
``workdir/<name>/server.log``. ``wait_healthy(timeout)`` polls ``GET /v1/health/`` until
a bounded deadline. ``stop()`` ends the server's whole process group by its pid: SIGTERM,
then SIGKILL after a grace period.

Every process started here is written to ``workdir/pids/<name>.pid`` (kept after the
stop, so a test can check by pid that nothing is left) and stopped also when a test
fails, at interpreter exit (atexit) and on SIGTERM/SIGHUP to the kit (``install_stop_on_signals``).
A server also ends by itself when the kit's process dies (``serve_letta``).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import kimi_conformance

KIT_ROOT = Path(kimi_conformance.__file__).resolve().parent.parent
HEALTH_PATH = "/v1/health/"
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2
# Settings of the outer environment that would change what the server enables or where
# it stores data: never inherited (the kit sets what a server needs explicitly).
INHERITED_PREFIXES_DROPPED = ("LETTA_", "KIMI_", "MOONSHOT_", "PYTHONPATH")
INHERITED_SUFFIXES_DROPPED = ("_API_KEY", "_BASE_URL", "_PG_URI")


class ServerStartError(RuntimeError):
    """The server did not become healthy; the message names it and ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_environment(home: Path, env: dict[str, str]) -> dict[str, str]:
    """The outer environment without provider or Letta settings, plus HOME, PYTHONPATH and ``env``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(INHERITED_PREFIXES_DROPPED) and not k.endswith(INHERITED_SUFFIXES_DROPPED)
    }
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(KIT_ROOT) not in pythonpath:
        pythonpath.append(str(KIT_ROOT))
    return {**clean, "HOME": str(home), "PYTHONPATH": os.pathsep.join(pythonpath), "PYTHONUNBUFFERED": "1", **env}


class LettaServerProcess:
    """One ``letta server`` of the build (see the module docstring)."""

    def __init__(self, name: str, workdir: Path, *, env: dict[str, str], python: str = sys.executable, host: str = "127.0.0.1"):
        self.name, self.workdir, self.env, self.python, self.host = name, Path(workdir), dict(env), python, host
        self.home = self.workdir / name / "home"
        self.log_path = self.workdir / name / "server.log"
        self.pid_file = self.workdir / "pids" / f"{name}.pid"
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "LettaServerProcess":
        """Start the process (without waiting for it); call from the main thread (see serve_letta)."""
        if self._proc is not None:
            raise RuntimeError(f"letta server {self.name!r} was already started")
        self.home.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        cmd = [self.python, "-m", "kimi_conformance.serve_letta", "--parent-pid", str(os.getpid()),
               "server", "--host", self.host, "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            log.write(f"[kimi-kit] {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(cmd, cwd=self.home, env=server_environment(self.home, self.env), stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{self._proc.pid}\n")
        _LIVE[self._proc.pid] = self
        return self

    def wait_healthy(self, timeout: float) -> "LettaServerProcess":
        """Poll the health endpoint until it answers 200, the process exits, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        url = self.url + HEALTH_PATH
        last = "no answer yet"
        while True:
            if not self.running():
                code = self._proc.returncode if self._proc else None
                raise ServerStartError(f"letta server {self.name!r} exited with code {code} before {url} answered\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self
                    last = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            if time.monotonic() >= deadline:
                raise ServerStartError(f"letta server {self.name!r} did not answer {url} within {timeout:g} s (last: {last})\n{self.log_tail()}")
            time.sleep(POLL_SECONDS)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds; idempotent."""
        proc = self._proc
        if proc is None:
            return
        _LIVE.pop(proc.pid, None)
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # the group may hold processes the server started; SIGKILL whatever is left
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = text.splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the server leads its own session and process group
    except (ProcessLookupError, PermissionError):
        pass


def start_all(servers: list[LettaServerProcess], timeout: float) -> list[LettaServerProcess]:
    """Start every server at once, then wait for each (one deadline for all); stop all on any failure."""
    try:
        for server in servers:
            server.start()
        deadline = time.monotonic() + timeout
        for server in servers:
            server.wait_healthy(max(0.0, deadline - time.monotonic()))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


# -- stopping what is left ---------------------------------------------------------------
_LIVE: dict[int, LettaServerProcess] = {}


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet."""
    for server in list(_LIVE.values()):
        server.stop(grace=3.0)


atexit.register(stop_all)


def install_stop_on_signals() -> callable:
    """On SIGTERM or SIGHUP: stop the servers, then let the signal do what it did before.

    Returns a function that puts the previous handlers back. A no-op outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, frame):
        stop_all()
        signal.signal(signum, previous.get(signum) or signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

    return restore
