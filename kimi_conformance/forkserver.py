"""Fork server: import Letta once, run each suite run in a forked child (the matrix's and the mutation benchmark's runner).

    <build python> -m kimi_conformance.forkserver        (started by ForkRunner)

The server runs in a build's environment with a *base* overlay (the reference
``letta/`` tree of that Letta version, or the mutation benchmark's scratch copy) first
on PYTHONPATH and a private HOME. It imports the heavy part of a suite run (Letta, the
server, pytest and the suites' plugins, the kit) once, then answers one JSON request
per stdin line with one JSON line on stdout:

    {"args": [...pytest args...], "log": "/path/to/log", "timeout": 60,
     "overlay": "/.builds/overlays/<build>",   # optional: the build's tree replaces the base's
     "reload": ["letta.schemas.providers.kimi"], # modules whose file differs from the base's, in order
     "env": {...}, "cwd": "...",                 # optional: the run's environment and folder
     "reload_failed_exit": 99,                   # optional: exit code when a reload raises
     "refuse_unsafe": true,                      # optional (default true): refuse what rebinding cannot fix
     "shared_database": true}                    # optional: start from the parent's seeded database template
    -> {"exit": 0, "seconds": 4.2, "fallback": null, "cpu": 3.9}
       (exit is null after a timeout; cpu: the child's user + system CPU seconds)

Each request forks a child of the pristine parent; the parent never runs a test, so
one run cannot leak into the next. The child

1. points every loaded ``letta`` module's file and package path from the base tree to
   the build's (``redirect``): a module imported later is read from the build's tree;
2. refuses (``fallback``: the caller reruns the build in a fresh interpreter) when a
   class of a module to reload has a subclass in a module that is not reloaded
   (``unsafe_subclasses``): the subclass would keep the base's class;
3. reloads the changed modules in the order given and points every module attribute
   that held one of their old classes or functions at the new one (``rebind``); refuses
   when another module holds a copy of a value that changed (``stale_copies``) or a
   changed module does not reload;
4. starts from an empty database (Letta's SQLite under the server's HOME), takes the
   run's environment and folder, and runs ``pytest.main(args)`` with its output in ``log``.
   Where the request says ``shared_database`` (the caller's rule: ``matrix.shares_database``),
   the run's ``prepare_database`` copies the seeded template the server made once at start
   (``make_database_template``, in a forked child of the base tree, when the server's
   environment has ``KIMI_FORK_SHARED_DATABASE=1``) instead of creating and seeding its own.

Which builds may be run this way is decided by the caller (``kimi_conformance.matrix``:
``fork_plan``). The first line written is ``{"ready": true, "seconds": ..., "threads": [...]}``.
This module's client side (``ForkRunner``, ``SubprocessRunner``) is standard library only.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import importlib.metadata
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from kimi_conformance.held_back import hold_back

SHARED_TEMPLATE_VARIABLE = "KIMI_SHARED_DATABASE_TEMPLATE"  # letta_compat.SHARED_TEMPLATE_VARIABLE (standard library only here)
EXIT_FALLBACK = 97  # the child refused the build: rerun it in a fresh interpreter
SERVER_START_SECONDS = 300.0
# The server's level: "reload" (default: the parent imported Letta from the base overlay; a child
# redirects and reloads) or "import" (the parent imported everything but Letta; a child imports
# Letta from the build's own tree). Set in the server's environment.
LEVEL_VARIABLE = "KIMI_FORK_LEVEL"
PRELOAD = (
    "pytest",
    "letta.server.server",
    "letta.llm_api.llm_client",
    "letta.llm_api.openai_client",
    "letta.schemas.providers",
    "kimi_conformance.plugin",
    "kimi_conformance.replay",
    "kimi_conformance.letta_compat",
    "kimi_conformance.suite_plugins",
    "respx",
    "vcr",
    "yaml",
)
# Imported lazily during a run (the OpenAI SDK's client resources): imported once here
# where they exist. Third-party code only: a build's own modules are never preloaded here.
PRELOAD_IF_PRESENT = ("openai.resources.chat", "openai.resources.models", "openai.resources.completions", "openai.resources.embeddings",
                      # pytest's built-in plugins, the SQLite drivers Letta's engine loads, anyio's
                      # asyncio backend, ... (found by comparing sys.modules before and after a child's run)
                      "_pytest.faulthandler", "_pytest.helpconfig", "_pytest.junitxml", "_pytest.pastebin", "_pytest.setuponly",
                      "_pytest.setupplan", "_pytest.skipping", "_pytest.stepwise", "_pytest.threadexception", "_pytest.tracemalloc",
                      "_pytest.unittest", "_pytest.unraisableexception", "faulthandler", "http.server", "aiosqlite",
                      "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.sqlite.aiosqlite", "sqlalchemy.dialects.sqlite.pysqlite",
                      "anyio._backends._asyncio", "xdist.newhooks")


class RunnerError(RuntimeError):
    """The runner itself broke (not the build): the run is an error, not a verdict."""


# --------------------------------------------------------------------------------------
# client side: a run in a fresh interpreter, or a request to a fork server


class SubprocessRunner:
    """A fresh interpreter per run: ``python -m pytest`` in the build's environment."""

    name = "subprocess"

    def __init__(self, python: Path, env: dict, cwd: Path, log_dir: Path):
        self.python, self.env, self.cwd = python, env, cwd

    def start(self) -> float:
        return 0.0

    def run(self, reload: list[str], args: list[str], log: Path, timeout: float, **request) -> dict:
        env = request.get("env") or self.env
        start = time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.Popen([str(self.python), "-m", "pytest", *args], cwd=request.get("cwd") or self.cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = None
        return {"exit": code, "seconds": time.perf_counter() - start, "fallback": None}

    def stop(self) -> None:
        pass


class ForkRunner:
    """One fork server (``python -m kimi_conformance.forkserver``): Letta imported once, a forked child per run."""

    name = "fork"

    def __init__(self, python: Path, env: dict, cwd: Path, log_dir: Path):
        self.python, self.env, self.cwd = python, env, cwd
        self.server_log = log_dir / "forkserver.log"
        self.proc: subprocess.Popen | None = None

    def _line(self, deadline: float) -> dict:
        assert self.proc and self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunnerError(f"the fork server did not answer in time (log: {self.server_log})")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RunnerError(f"the fork server exited ({self.proc.poll()}); log: {self.server_log}")
                return json.loads(line)

    def start(self) -> float:
        self.server_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.server_log, "w") as err:
            self.proc = subprocess.Popen([str(self.python), "-m", "kimi_conformance.forkserver"], cwd=self.cwd, env=self.env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
        hello = self._line(time.monotonic() + SERVER_START_SECONDS)
        if not hello.get("ready"):
            self.stop()
            raise RunnerError(f"{hello.get('error', 'the fork server is not ready')}; log: {self.server_log}")
        return float(hello["seconds"])

    def run(self, reload: list[str], args: list[str], log: Path, timeout: float, **request) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            raise RunnerError(f"the fork server is not running; log: {self.server_log}")
        request = {**request, "reload": reload, "args": args, "log": str(log), "timeout": timeout}
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError as e:
            raise RunnerError(f"the fork server does not take requests ({e}); log: {self.server_log}") from e
        return self._line(time.monotonic() + timeout + 60)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


RUNNERS = {"fork": ForkRunner, "subprocess": SubprocessRunner}


def drain(items: list, workers: list, handle) -> None:
    """``handle(worker, item)`` for every item: a thread per worker, each taking the next item when it is done."""
    todo: queue.Queue = queue.Queue()
    for item in items:
        todo.put(item)

    def work(worker) -> None:
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            handle(worker, item)

    threads = [threading.Thread(target=work, args=(w,), name=f"kimi-runner-{i}") for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------------------
# server side: runs in the build's environment


def preload() -> None:
    """Import what every suite run imports: Letta, the kit, pytest and the suites' plugins."""
    for name in PRELOAD:
        importlib.import_module(name)
    from kimi_conformance.suite_plugins import PLUGINS

    for module in [*PRELOAD_IF_PRESENT, *PLUGINS.values()]:
        try:
            importlib.import_module(module)
        except ImportError:  # not installed (a plugin: pytest says so in the child if an option needs it)
            pass
    if "PYTEST_DISABLE_PLUGIN_AUTOLOAD" not in os.environ:
        for entry in importlib.metadata.entry_points(group="pytest11"):
            try:
                entry.load()
            except Exception:  # noqa: BLE001 - a plugin that does not load is pytest's to report, in the child
                pass
    from kimi_conformance import fork_warm

    imported = fork_warm.warm_all()
    if imported:  # a warm-up that reaches into the build's own modules is the kit's bug: say so in the server's log
        print(f"fork_warm imported build modules (it must not): {', '.join(imported)}", file=sys.stderr)


def _defined_in(module_name: str) -> dict[str, object]:
    """The classes and functions a module defines (its names for them)."""
    module = sys.modules[module_name]
    return {name: obj for name, obj in vars(module).items() if getattr(obj, "__module__", None) == module_name}


def rebind(old: dict[str, dict[str, object]]) -> int:
    """Point every module attribute that holds one of ``old``'s objects at the reloaded one.

    ``old`` maps each reloaded module's name to its classes and functions before the
    reload (``from .kimi import KimiProvider`` elsewhere still holds the old class).
    Returns how many references were moved.
    """
    replacements = {}
    for module_name, objects in old.items():
        module = sys.modules[module_name]
        for name, obj in objects.items():
            if hasattr(module, name):
                replacements[id(obj)] = (obj, getattr(module, name))
    moved = 0
    for other in list(sys.modules.values()):
        namespace = getattr(other, "__dict__", None)
        if not isinstance(namespace, dict) or other.__name__ in old:
            continue
        for key, value in list(namespace.items()):
            hit = replacements.get(id(value))
            if hit is not None and hit[0] is value and hit[1] is not value:
                namespace[key] = hit[1]
                moved += 1
    return moved


def unsafe_subclasses(module_names: list[str]) -> list[str]:
    """Classes of other loaded modules that subclass a class of ``module_names`` (they would keep the old base)."""
    names = set(module_names)
    found = []
    for module_name in module_names:
        if module_name not in sys.modules:
            continue
        for obj in _defined_in(module_name).values():
            if isinstance(obj, type):
                try:
                    subclasses = type.__subclasses__(obj)
                except TypeError:
                    continue
                found += [f"{s.__module__}.{s.__qualname__} subclasses {module_name}.{obj.__qualname__}"
                          for s in subclasses if s.__module__ not in names and s.__module__ in sys.modules]
    return found


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - not comparable: not equal
        return False


def stale_copies(before: dict[str, dict[str, object]]) -> list[str]:
    """Values (not classes or functions, which ``rebind`` moves) of reloaded modules that changed while
    another loaded module still holds the old one under the same name (``from m import LIMIT``)."""
    found = []
    for module_name, namespace in before.items():
        module = sys.modules[module_name]
        defined = _defined_in(module_name).keys()
        for key, old in namespace.items():
            if key.startswith("__") or key in defined:
                continue
            new = module.__dict__.get(key, stale_copies)
            if new is old or _equal(old, new):
                continue
            holders = [m.__name__ for m in list(sys.modules.values())
                       if m is not module and isinstance(getattr(m, "__dict__", None), dict) and m.__dict__.get(key, stale_copies) is old]
            found += [f"{holder}.{key} is a copy of the old {module_name}.{key}" for holder in holders]
    return found


def reload_modules(module_names: list[str]) -> tuple[int, list[str]]:
    """Re-execute the loaded ones of ``module_names`` (in that order) from their files; rebind what refers to them.

    A module not imported yet needs nothing: its first import reads its file.
    Returns how many references were moved and the stale copies left (``stale_copies``).
    """
    loaded = [name for name in module_names if name in sys.modules]
    old = {name: _defined_in(name) for name in loaded}
    before = {name: dict(vars(sys.modules[name])) for name in loaded}
    for name in loaded:
        importlib.reload(sys.modules[name])
    return rebind(old), stale_copies(before)


def reload_module(module_name: str) -> int:
    return reload_modules([module_name])[0]


def redirect(base: Path, overlay: Path, package: str = "letta") -> None:
    """Point the loaded modules of ``package`` (and sys.path) from the ``base`` tree to ``overlay``'s."""
    base_s, overlay_s = str(base), str(overlay)

    def moved(path):
        return overlay_s + path[len(base_s):] if isinstance(path, str) and (path == base_s or path.startswith(base_s + os.sep)) else path

    sys.path[:] = [moved(p) for p in sys.path]
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(package + "."):
            continue
        for attr in ("__file__", "__cached__"):
            if isinstance(getattr(module, attr, None), str):
                setattr(module, attr, moved(getattr(module, attr)))
        if isinstance(getattr(module, "__path__", None), list):
            module.__path__[:] = [moved(p) for p in module.__path__]
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec.origin = moved(spec.origin)
            if spec.submodule_search_locations is not None:
                spec.submodule_search_locations[:] = [moved(p) for p in spec.submodule_search_locations]
            if spec.cached:
                spec.cached = moved(spec.cached)
            loader = spec.loader
            if loader is not None and isinstance(getattr(loader, "path", None), str):
                loader.path = moved(loader.path)
    for key in [k for k in sys.path_importer_cache if isinstance(k, str) and k.startswith(base_s)]:
        del sys.path_importer_cache[key]
    importlib.invalidate_caches()
    import linecache

    linecache.clearcache()


def fresh_database(home: Path) -> None:
    """Remove the SQLite database Letta keeps under HOME: each child starts from none."""
    for path in (home / ".letta").glob("sqlite.db*"):
        path.unlink()


def _in_forked_child(work) -> int:
    """Run ``work()`` (returning an exit code) in a forked child, so that this process stays as it
    was; the child's exit code (1 when ``work`` raised: its traceback on stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = work()
        except BaseException:  # noqa: BLE001 - the caller decides what a failed child means
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def make_database_template(home: Path) -> Path | None:
    """The reference build's seeded database (``letta_compat.make_shared_template``), made once in a
    forked child so that the parent stays as it was; None where the build has none (or it failed:
    each child makes its own, as without the server).
    A run's child starts from a copy of it only when the request says ``shared_database``."""
    path = home / "kimi-shared-template" / "seeded.db"
    path.parent.mkdir(parents=True, exist_ok=True)

    def make() -> int:
        from kimi_conformance import letta_compat
        from letta.server.server import SyncServer

        return 0 if letta_compat.make_shared_template(path, SyncServer) else 2

    return path if _in_forked_child(make) == 0 and path.is_file() else None


LETTA_PACKAGES = ("letta",)  # the package a build's overlay replaces


def in_packages(module: str, packages: tuple[str, ...]) -> bool:
    """True when ``module`` is one of ``packages`` or inside one (``letta.schemas`` is in ``("letta",)``)."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def _under_path(module: object, roots: list[str]) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and any(file == r or file.startswith(r + os.sep) for r in roots)


PROBE_CACHE = ".kit-fork-probe"  # in the environment's folder: the import level's module lists, one file per key


def probe_cache_file(overlay: str, prefix: str | None = None, executable: str | None = None) -> Path | None:
    """Where ``probe_modules``' list for ``overlay`` is kept in the environment at ``prefix`` (default:
    this one, ``sys.prefix``, run by ``executable``, default ``sys.executable``): ``prefix/PROBE_CACHE/<digest>.json``;
    None unless the kit made both the environment and the overlay (their ``.kit-env.json`` and
    ``.kit-overlay.json`` markers).

    The file's name is a digest of what decides the list: the interpreter, the environment's and the
    overlay's build markers (``kimi_conformance.builds``), the overlay's path and the kit's own modules.
    A stale list only costs time: a module it lacks is imported by the child, one that pulls in Letta
    makes the server refuse to serve (the caller then runs those builds in fresh interpreters)."""
    prefix, executable = prefix or sys.prefix, executable or sys.executable
    env_marker, overlay_marker = Path(prefix, ".kit-env.json"), Path(overlay or ".", ".kit-overlay.json")
    if not (overlay and env_marker.is_file() and overlay_marker.is_file()):
        return None
    digest = hashlib.sha256()
    for part in (executable.encode(), env_marker.read_bytes(), overlay.encode(), overlay_marker.read_bytes()):
        digest.update(part + b"\0")
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return Path(prefix, PROBE_CACHE, f"{digest.hexdigest()[:32]}.json")


def loaded_outside(overlay: str) -> list[str]:
    """The loaded modules (names, in import order) that are not Letta's and whose file is not under ``overlay``."""
    roots = [overlay] if overlay else []
    return [n for n, m in list(sys.modules.items()) if not in_packages(n, LETTA_PACKAGES) and not _under_path(m, roots)]


def _read_listing(path: Path | None) -> list[str] | None:
    try:
        names = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


PROBE_LISTS_KEPT = 16  # per environment: the newest lists (each kit change or overlay path makes another)


def _keep_listing(path: Path | None, names: list[str]) -> None:
    """Write the list beside the others (made whole, then renamed into place), keeping the newest
    ``PROBE_LISTS_KEPT``; a folder that cannot be written is skipped."""
    if path is None:
        return
    try:
        path.parent.mkdir(exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(names))
        os.replace(partial, path)
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[PROBE_LISTS_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def probe_modules(overlay: str) -> list[str]:
    """The modules (names, in import order) a full ``preload()`` with ``overlay`` first on sys.path loads,
    Letta's own (``letta``, ``letta.*``) and any whose file is under ``overlay`` left out.

    Found in a forked child, so that this process imports no Letta module; the child writes
    one JSON list to a file. Kept per environment (``probe_cache_file``): a later server of the same
    environment, overlay and kit reads it instead of probing (the probe is a whole Letta import).
    Raises RuntimeError when the child fails."""
    cache = probe_cache_file(overlay)
    kept = _read_listing(cache)
    if kept is not None:
        return kept
    names = _probe(overlay)
    _keep_listing(cache, names)
    return names


def _probe(overlay: str) -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kimi-fork-probe-") as folder:
        listing = Path(folder) / "modules.json"

        def probe() -> int:
            if overlay:
                sys.path.insert(0, overlay)
                importlib.invalidate_caches()
            preload()
            listing.write_text(json.dumps(loaded_outside(overlay)))
            return 0

        code = _in_forked_child(probe)
        if code != 0:
            raise RuntimeError(f"the probe child failed (exit {code}; its traceback is above)")
        return json.loads(listing.read_text())


def preload_without_letta(overlay: str) -> list[str]:
    """The "import" level's parent: import what ``probe_modules`` found (each on its own; one that
    fails is left to the child). Returns the ``letta`` modules that crept in (the server cannot serve then)."""
    for name in probe_modules(overlay):
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a module that only imports inside Letta's import: the child imports it
            pass
    return sorted(n for n in sys.modules if in_packages(n, LETTA_PACKAGES))


def _front_of_path(env: dict) -> None:
    """Put the ``PYTHONPATH`` entries of a run's environment first on sys.path (the build's overlay, the kit)."""
    entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:0] = entries
    importlib.invalidate_caches()


def _child(request: dict, home: Path, template: Path | None = None, level: str = "reload") -> None:
    """A forked child: run ``request``'s pytest; ``level`` "reload" points the parent's Letta at the
    build's tree and reloads the changed modules; "import" (a parent without Letta) puts the run's
    PYTHONPATH first so that Letta is imported from the build's tree."""
    code = 3
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the child never returns
        fresh_database(home)
        base = os.environ.get("KIMI_FORK_BASE", "")  # the server's, before the run's environment replaces it
        held: dict[str, str] = {}
        if request.get("env") is not None:  # before any reload: a changed module reads the run's environment at import
            os.environ.clear()
            os.environ.update(request["env"])
            os.environ["HOME"] = str(home)
            held = hold_back(os.environ)  # during the reload only, as the run's plugin holds them back before Letta's import
        if request.get("overlay") and level == "reload":
            redirect(Path(base), Path(request["overlay"]))
        reload = list(request.get("reload", [])) if level == "reload" else []
        refuse = request.get("refuse_unsafe", True)
        unsafe = unsafe_subclasses(reload) if refuse else []
        if not unsafe:
            try:
                stale = reload_modules(reload)[1]
                unsafe = stale if refuse else []
            except BaseException:  # noqa: BLE001 - a module that does not reload: the caller decides what it means
                print("a changed module does not import:", file=sys.stderr)
                traceback.print_exc()
                code = int(request.get("reload_failed_exit", EXIT_FALLBACK))
                unsafe = ["a changed module does not reload"] if code == EXIT_FALLBACK else []
                if not unsafe:
                    return
        if unsafe:
            Path(request["log"] + ".fallback").write_text("; ".join(unsafe))
            code = EXIT_FALLBACK
            return
        os.environ.update(held)  # back for the run's plugin, which holds them back again and names them in its header
        os.environ.pop(SHARED_TEMPLATE_VARIABLE, None)
        if template is not None and request.get("shared_database"):
            os.environ[SHARED_TEMPLATE_VARIABLE] = str(template)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        if level == "import":
            _front_of_path(os.environ)
        import pytest

        code = int(pytest.main(list(request["args"])))
    except BaseException:  # noqa: BLE001 - report, never return into the server loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_one(request: dict, home: Path, template: Path | None = None, level: str = "reload") -> dict:
    """Fork a child for ``request``; wait at most ``timeout`` seconds for it."""
    sys.stdout.flush()
    sys.stderr.flush()
    Path(request["log"] + ".fallback").unlink(missing_ok=True)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(request, home, template, level)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], float(request["timeout"]))
        if not ready:
            os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(pidfd)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status) if ready else None
    fallback = None
    if code == EXIT_FALLBACK:
        marker = Path(request["log"] + ".fallback")
        fallback = marker.read_text() if marker.exists() else "the child refused the build"
        marker.unlink(missing_ok=True)
    return {"exit": code, "seconds": round(seconds, 3), "fallback": fallback, "cpu": round(usage.ru_utime + usage.ru_stime, 3)}


def main() -> int:
    # Letta reads its database settings at import, here in the parent: the user's (LETTA_PG_URI, ...)
    # are held back as each run's plugin holds them back before a fresh interpreter imports Letta.
    hold_back(os.environ)
    home = Path(os.environ["HOME"])
    sys.dont_write_bytecode = True  # a changed file must never leave a .pyc behind
    base = os.environ.setdefault("KIMI_FORK_BASE", next((p for p in sys.path if p and Path(p, "letta").is_dir()), ""))
    # The protocol keeps the real stdout; anything Letta prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    start = time.perf_counter()
    level = os.environ.get(LEVEL_VARIABLE, "reload")
    template = None
    if level == "import":
        try:
            crept = preload_without_letta(base)
        except RuntimeError as e:
            crept = [str(e)]
        if crept:
            out.write(json.dumps({"ready": False, "error": f"cannot serve the import level: letta module(s) in the parent: {', '.join(crept[:5])}"}) + "\n")
            out.flush()
            return 5
    else:
        preload()
        # what an import-level server of this environment and overlay would probe for: known here for free
        _keep_listing(probe_cache_file(base), loaded_outside(base))
        template = make_database_template(home) if os.environ.get("KIMI_FORK_SHARED_DATABASE") == "1" else None
    # What the parent imported is never garbage: the children's collections skip it (and
    # do not write to its pages, which stay shared with the parent).
    gc.collect()
    gc.freeze()
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    out.write(json.dumps({"ready": True, "seconds": round(time.perf_counter() - start, 3), "threads": threads}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(run_one(json.loads(line), home, template, level)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
