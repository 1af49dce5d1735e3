"""Fork server for the mutation benchmark: import Letta once, run each mutant in a forked child.

    <build python> bench/mutation_forkserver.py        (started by bench/mutation.py)

Runs in a build's environment with the mutation worker's scratch overlay first on
PYTHONPATH and a private HOME. It imports the heavy part of a suite run (Letta, the
server, pytest and its plugins, the kit) once, then answers one JSON request per
stdin line with one JSON line on stdout:

    {"reload": ["letta.schemas.providers.kimi"], "args": [...pytest args...],
     "log": "/path/to/log", "timeout": 60}
    -> {"exit": 0, "seconds": 4.2}            (exit is null after a timeout)

Each request forks a child of the pristine parent. The child starts from an empty
database, reloads the mutated module(s) from the scratch overlay, points every
reference to their old classes and functions at the new ones, and runs
``pytest.main(args)`` with its output in ``log``. The parent never runs a test, so
one mutant cannot leak into the next. The first line written is
``{"ready": true, "seconds": ..., "threads": [...]}``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from mutation_mutants import EXIT_IMPORT_FAILED  # the mutated module does not import: killed

PRELOAD = (
    "pytest",
    "letta.server.server",
    "letta.llm_api.llm_client",
    "letta.llm_api.openai_client",
    "letta.schemas.providers",
    "kimi_conformance.plugin",
    "kimi_conformance.replay",
    "kimi_conformance.letta_compat",
    "respx",
    "vcr",
    "yaml",
)


def preload() -> None:
    """Import what every suite run imports: Letta, the kit, pytest and its plugins."""
    for name in PRELOAD:
        importlib.import_module(name)
    for entry in importlib.metadata.entry_points(group="pytest11"):
        try:
            entry.load()
        except Exception:  # noqa: BLE001 - a plugin that does not load is pytest's to report, in the child
            pass


def rebind(module_name: str, old: dict[str, object]) -> int:
    """Point every module attribute that holds one of ``old``'s objects at the reloaded one.

    ``old`` maps names to the module's classes and functions before the reload
    (``from .kimi import KimiProvider`` elsewhere still holds the old class).
    Returns how many references were moved.
    """
    module = sys.modules[module_name]
    replacements = {id(obj): (obj, getattr(module, name)) for name, obj in old.items() if hasattr(module, name)}
    moved = 0
    for other in list(sys.modules.values()):
        namespace = getattr(other, "__dict__", None)
        if not isinstance(namespace, dict) or other is module:
            continue
        for key, value in list(namespace.items()):
            hit = replacements.get(id(value))
            if hit is not None and hit[0] is value and hit[1] is not value:
                namespace[key] = hit[1]
                moved += 1
    return moved


def reload_module(module_name: str) -> None:
    """Re-execute ``module_name`` from its (mutated) file, and rebind what refers to it.

    A module not imported yet needs nothing: its first import reads the mutated file.
    """
    module = sys.modules.get(module_name)
    if module is None:
        return
    old = {name: obj for name, obj in vars(module).items() if getattr(obj, "__module__", None) == module_name}
    importlib.reload(module)
    rebind(module_name, old)


def fresh_database(home: Path) -> None:
    """Remove the SQLite database Letta keeps under HOME: each child starts from none."""
    for path in (home / ".letta").glob("sqlite.db*"):
        path.unlink()


def _child(request: dict, home: Path) -> None:
    code = 3
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the child never returns
        fresh_database(home)
        try:
            for name in request.get("reload", []):
                reload_module(name)
        except BaseException:  # noqa: BLE001 - any failure to load the mutant kills it
            print("the mutated module does not import:", file=sys.stderr)
            traceback.print_exc()
            code = EXIT_IMPORT_FAILED
        else:
            import pytest

            code = int(pytest.main(list(request["args"])))
    except BaseException:  # noqa: BLE001 - report, never return into the server loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_one(request: dict, home: Path) -> dict:
    """Fork a child for ``request``; wait at most ``timeout`` seconds for it."""
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(request, home)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], float(request["timeout"]))
        if not ready:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    seconds = time.perf_counter() - start
    return {"exit": os.waitstatus_to_exitcode(status) if ready else None, "seconds": round(seconds, 3)}


def main() -> int:
    home = Path(os.environ["HOME"])
    sys.dont_write_bytecode = True  # mutants must never leave a .pyc behind
    # The protocol keeps the real stdout; anything Letta prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    start = time.perf_counter()
    preload()
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    out.write(json.dumps({"ready": True, "seconds": round(time.perf_counter() - start, 3), "threads": threads}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(run_one(json.loads(line), home)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
