"""The verdict matrix: the suites against every build, judged on their JSON reports.

    python3 -m kimi_conformance matrix [BUILD ...] [--jobs N] [--out DIR] [--runner fork|subprocess]

Every build has an expectation: a reference build and a variant are conformant (no
behaviour red), an upstream build gets the single "no Kimi provider" verdict (exit 6,
nothing red), and a defect turns exactly the behaviour IDs it declares (``expect`` in
its file under ``fixtures/defects/``) red — a red ID it did not declare is collateral,
a declared ID that stays green is missed, and either fails the matrix. "Red" is
``fail`` or ``warn`` (a SHOULD failure without ``--strict``).

The detection score (defects caught with exactly the right IDs, collateral reds,
false reds on correct builds) is printed and written to ``DIR/score.json``.
Standard library only, like the launcher.

Runners. ``subprocess`` (the reference) runs each build as a user does, through the
launcher: a fresh interpreter that imports Letta (~5 s of the ~6 s a build costs).
``fork`` (default) runs the builds of one Letta version in fork servers
(``kimi_conformance.forkserver``) that imported Letta once from that version's
reference overlay; a forked child per build points the loaded modules at the build's
overlay and reloads exactly the modules whose files differ from the reference's. The
rule for which builds may go that way is ``fork_plan``; the others, and any build a
child refuses (a class of a changed module subclassed elsewhere, a changed value
another module copied at import), run under ``subprocess``. Each progress line says
which runner ran the build.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kimi_conformance import builds, cli, forkserver, scratch
from kimi_conformance.exitcodes import EXIT_NO_KIMI, EXIT_OK

RED = ("fail", "warn")
DEFAULT_OUT = builds.KIT_ROOT / "reports" / "matrix"
CONFORMANT, NO_KIMI, DEFECT = "conformant", "no-kimi", "defect"


@dataclass
class Cell:
    """One build's run: what was expected, what its report says, how long it took."""

    build: str
    version: str
    kind: str
    expected: str  # CONFORMANT | NO_KIMI | DEFECT
    expected_red: list[str]
    red: list[str] = field(default_factory=list)
    verdict: str | None = None
    no_kimi: bool = False
    exit_code: int | None = None
    seconds: float = 0.0
    report: str = ""
    error: str | None = None
    runner: str = "subprocess"
    runner_note: str = ""  # why a build did not run in the fork server

    @property
    def collateral(self) -> list[str]:
        return sorted(set(self.red) - set(self.expected_red))

    @property
    def missed(self) -> list[str]:
        return sorted(set(self.expected_red) - set(self.red))

    @property
    def ok(self) -> bool:
        if self.error:
            return False
        if self.expected == NO_KIMI:
            return self.no_kimi and not self.red and self.exit_code == EXIT_NO_KIMI
        if self.no_kimi:
            return False
        if self.expected == CONFORMANT:
            return not self.red and self.exit_code == EXIT_OK
        return not self.collateral and not self.missed

    def problem(self) -> str:
        if self.error:
            return self.error
        if self.ok:
            return ""
        if self.expected == NO_KIMI:
            return f"expected the no-Kimi verdict (exit {EXIT_NO_KIMI}); got exit {self.exit_code}, red {self.red or 'none'}"
        if self.no_kimi:
            return "the kit found no Kimi provider in this build"
        parts = []
        if self.missed:
            parts.append(f"missed {', '.join(self.missed)}")
        if self.collateral:  # on a correct build every red is a false red (the score's word for it)
            parts.append(f"{'collateral' if self.expected == DEFECT else 'false'} red {', '.join(self.collateral)}")
        if not parts:
            parts.append(f"exit {self.exit_code}")
        return "; ".join(parts)


def expectation(build: builds.Build) -> tuple[str, list[str]]:
    if build.kind == "upstream":
        return NO_KIMI, []
    if build.kind == "defect":
        return DEFECT, sorted(build.expect)
    return CONFORMANT, []


def _kit_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the launcher sets the build's own
    return env


def _new_cell(build: builds.Build, out_dir: Path) -> Cell:
    expected, expected_red = expectation(build)
    cell = Cell(build.name, build.version, build.kind, expected, expected_red)
    report = out_dir / f"{build.name}.json"
    report.unlink(missing_ok=True)
    cell.report = str(report)
    return cell


def _read_report(cell: Cell, output: str) -> Cell:
    try:
        data = json.loads(Path(cell.report).read_text())
    except (OSError, ValueError):
        tail = " | ".join(output.strip().splitlines()[-3:])
        cell.error = f"no JSON report (exit {cell.exit_code}): {tail}"
        return cell
    cell.verdict = data.get("verdict")
    cell.no_kimi = bool(data.get("no_kimi_provider"))
    cell.red = sorted(bid for bid, verdict in data.get("behaviors", {}).items() if verdict in RED)
    return cell


def _suite_args(build: builds.Build, report: str, pytest_args: list[str]) -> list[str]:
    """What the launcher (`run --build`) passes to pytest for this build."""
    binding = ["--binding", str(build.binding_file)] if build.binding_file else []
    return ["suites", *binding, "-q", "-p", "no:warnings", "--conformance-report", report, *pytest_args]


def run_cell(build: builds.Build, out_dir: Path, pytest_args: list[str], note: str = "") -> Cell:
    """The subprocess runner: the build run through the launcher, as a user runs it."""
    cell = _new_cell(build, out_dir)
    cell.runner_note = note
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", build.name, "-q", "-p", "no:warnings",
           "--conformance-report", cell.report, *pytest_args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=builds.KIT_ROOT, env=_kit_env(), capture_output=True, text=True)
    cell.seconds = time.perf_counter() - start
    cell.exit_code = proc.returncode
    (out_dir / f"{build.name}.log").write_text(proc.stdout + proc.stderr)
    return _read_report(cell, proc.stdout + proc.stderr)


# --------------------------------------------------------------------------------------
# the fork runner: which builds, and how


# Modules whose values other modules copy at import (settings objects, constants, enum
# members): reloading them would leave those copies behind. A build that changes one,
# or a package's __init__.py, runs in a fresh interpreter.
IMPORT_TIME_MODULES = {"letta/__init__.py", "letta/settings.py", "letta/constants.py", "letta/config.py", "letta/schemas/enums.py"}
FORK_TIMEOUT_SECONDS = 900.0
IMPORT = "fork-import"  # the runner of builds that a child of an "import"-level fork server runs
IMPORT_SERVER_WORTH = 2  # builds of a Letta version that need the import level for a server of it to start
FORK_SERVER_WORTH = 3  # fewer fork builds of a version that also has import-level ones join its import level
# (where its probe list is kept or its server starts anyway), else run in fresh interpreters (COLD_SMALL_LINE)
COLD_SMALL_LINE = "few fork builds on this Letta line and no probe list kept: a fresh interpreter costs less than a fork server"
RUNNER_NAMES = ("fork", IMPORT, "subprocess")


# What makes the kit's seeded database (0.16 on SQLite: ``letta_compat.prepare_database``): the
# tables (the ORM), the default organization and user and Letta's base tools (the managers that
# write them, the tools' source and schemas, the database layer). A fork child whose build reloads
# none of these starts from a copy of the template its server made once from the reference
# build; any other makes its own. ``letta.schemas.providers`` is exempt: no provider is seeded
# (each server start writes its own). The server class (``letta.server.server``) is not listed:
# the seed constructs it without its default-org bootstrap and writes through the managers only.
SEEDED_DATABASE_MODULES = ("letta.orm", "letta.services", "letta.server.db", "letta.functions", "letta.schemas",
                           "letta.helpers", "letta.jobs", "letta.prompts")
UNSEEDED_SCHEMA_MODULES = ("letta.schemas.providers",)


def shares_database(reload: tuple[str, ...] | list[str]) -> bool:
    """True when none of the reloaded modules can change the seeded database (``SEEDED_DATABASE_MODULES``)."""
    in_packages = forkserver.in_packages
    return not any(in_packages(m, SEEDED_DATABASE_MODULES) and not in_packages(m, UNSEEDED_SCHEMA_MODULES) for m in reload)


@dataclass(frozen=True)
class Plan:
    """How a build is run: ``fork`` (reloading ``reload`` over ``base``), ``fork-import`` (Letta imported
    fresh in a child of ``base``'s version's import-level server; ``why`` it cannot reload) or ``subprocess`` (``why``);
    ``shared_database``: the fork child starts from its server's seeded database (``shares_database``)."""

    runner: str
    why: str = ""
    base: str | None = None
    reload: tuple[str, ...] = ()
    shared_database: bool = False
    added: tuple[str, ...] = ()  # modules the overlay adds: imported fresh from it by the reloaded ones


def base_build(build: builds.Build) -> str:
    """The build a version's fork servers import: its reference build."""
    return f"reference-{build.version}"


def tree_files(overlay: Path) -> dict[str, os.stat_result]:
    """The files of an overlay's ``letta/`` tree (paths relative to the overlay), bytecode left out."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(overlay / "letta"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            files[os.path.relpath(path, overlay)] = os.stat(path)
    return files


def _same_file(a: Path, b: Path, sa: os.stat_result, sb: os.stat_result) -> bool:
    if sa.st_size != sb.st_size:
        return False
    if sa.st_mtime_ns == sb.st_mtime_ns:  # both copied from the installed file (copytree keeps the time)
        return True
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def tree_changes(base: Path, overlay: Path, base_files: dict | None = None) -> tuple[list[str], list[str], list[str]]:
    """(changed, added, removed) files of ``overlay``'s letta/ tree against ``base``'s."""
    base_files = tree_files(base) if base_files is None else base_files
    files = tree_files(overlay)
    changed = sorted(p for p in files.keys() & base_files.keys() if not _same_file(base / p, overlay / p, base_files[p], files[p]))
    return changed, sorted(files.keys() - base_files.keys()), sorted(base_files.keys() - files.keys())


def module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(source: Path, name: str) -> set[str]:
    """Modules a file imports at its top level (absolute names)."""
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError, ValueError):
        return set()
    package = name.rpartition(".")[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def reload_order(overlay: Path, paths: list[str], through: list[str] = ()) -> list[str]:
    """The changed modules, each after the changed modules it imports at its top level, directly or
    through modules the overlay adds (``through``: they run during the importer's reload and must see
    the other changed modules already reloaded)."""
    names = {module_name(p): p for p in paths}
    fresh = {module_name(p): p for p in through}
    direct = {n: _module_imports(overlay / p, n) for n, p in {**fresh, **names}.items()}

    def reached(n: str) -> set[str]:
        found, todo = set(), [n]
        while todo:
            for m in direct.get(todo.pop(), ()):
                if m in fresh and m not in found:
                    todo.append(m)
                found.add(m)
        return found

    deps = {n: reached(n) & (names.keys() - {n}) for n in names}
    order: list[str] = []

    def visit(n: str, seen: tuple = ()) -> None:
        if n in order or n in seen:
            return
        for d in sorted(deps[n]):
            visit(d, (*seen, n))
        order.append(n)

    for n in sorted(names):
        visit(n)
    return order


def fork_plan(build: builds.Build, base_files: dict | None = None) -> Plan:
    """The rule: a build runs in its version's fork server when its letta/ tree has the
    same files as the reference build's and only modules that may be reloaded differ;
    else in a fresh interpreter, for the reason given.

    - an upstream build has no overlay: its modules differ from the reference's in the
      enum, the settings and the exports (subprocess);
    - a file removed or moved (subprocess: the parent's module would stay importable); a
      file added that is no module, or that an unchanged module names (that module ran in
      the parent without it: ``unchanged_mentions``);
    - a changed file that is not a module, a package's ``__init__.py``, or one of
      ``IMPORT_TIME_MODULES`` (subprocess: their values are copied at import);
    - otherwise fork, reloading the changed modules in import order (they import the added
      ones fresh from the overlay). The child may
      still refuse (``kimi_conformance.forkserver``): then subprocess.

    The builds of the first three kinds get ``fork-import`` (``IMPORT``): a fork server of the
    "import" level (no Letta module in its parent) runs them, each child importing Letta from
    the build's own tree (the installed Letta for an upstream build); ``_run_forked`` falls
    back to subprocess where a version has fewer than ``IMPORT_SERVER_WORTH`` of them.
    """
    base = base_build(build)
    if not build.has_overlay:
        return Plan(IMPORT, "no overlay (Letta as released)", base=base)
    if build.name == base:
        return Plan("fork", base=base, shared_database=True)
    if not (build.overlay_dir / "letta").is_dir():
        return Plan("subprocess", "its overlay could not be made")
    changed, added, removed = tree_changes(builds.get_build(base).overlay_dir, build.overlay_dir, base_files)
    plan = plan_changes(base, build.overlay_dir, changed, added, removed)
    return plan if plan.runner == "fork" else Plan(IMPORT, plan.why, base=base)


def _listed(paths: list[str]) -> str:
    return f"{', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"


def unchanged_mentions(overlay: Path, added: list[str], changed: list[str]) -> list[str]:
    """The overlay's unchanged modules whose text names an added module (its last name, as a word).

    Such a module was executed in the fork server's parent against a tree without the added
    module (``try: import ... except ImportError``, a name looked up at import): it would keep
    what it did there. Shape: sorted paths relative to ``overlay``. Unreadable files count as mentions.
    """
    words = sorted({module_name(p).rpartition(".")[2] for p in added})
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")
    skip = set(changed) | set(added)
    found = []
    for path in sorted((overlay / "letta").rglob("*.py")):
        rel = str(path.relative_to(overlay))
        if rel in skip or "__pycache__" in path.parts:
            continue
        try:
            if pattern.search(path.read_text(errors="replace")):
                found.append(rel)
        except OSError:
            found.append(rel)
    return found


def plan_changes(base: str, overlay: Path, changed: list[str], added: list[str], removed: list[str]) -> Plan:
    """``fork_plan``'s rule for an overlay's files against its base's.

    A removed file goes to subprocess (the parent's module would stay importable). An added
    module is imported fresh from the overlay by the reloaded modules that name it, so it may
    fork when only changed modules name it (``unchanged_mentions``) and it is no package's
    ``__init__.py`` or settings-like module (the rules for changed files apply to it too).
    """
    if removed:
        return Plan("subprocess", f"removes {_listed(removed)}" + (f", adds {_listed(added)}" if added else ""))
    if any(not p.endswith(".py") for p in added):
        return Plan("subprocess", f"adds {_listed(added)} (not only modules)")
    for path in [*changed, *added]:
        if not path.endswith(".py"):
            return Plan("subprocess", f"changes {path} (not a module)")
        if path in IMPORT_TIME_MODULES or path.endswith("__init__.py"):
            return Plan("subprocess", f"changes {path} (read at import)")
    mentions = unchanged_mentions(overlay, added, changed) if added else []  # last: it reads the whole tree
    if mentions:
        return Plan("subprocess", f"adds {_listed(added)} (named by unchanged {_listed(mentions)})")
    reload = tuple(reload_order(overlay, changed, added))
    fresh = tuple(sorted(module_name(p) for p in added))
    return Plan("fork", base=base, reload=reload, shared_database=shares_database(reload + fresh), added=fresh)


class _ForkSlot:
    """One fork server of a Letta version (its own HOME and work folder) and the builds it runs one at a time;
    ``level`` "fork" (Letta imported from the base overlay) or ``IMPORT`` (no Letta in the server: its
    PYTHONPATH holds no overlay; the base overlay only tells its probe what Letta imports)."""

    def __init__(self, base: builds.Build, root: Path, index: int, level: str = "fork"):
        self.version, self.level = base.version, level
        self.dir = root / f"{base.name}-{level}-{index}"
        self.home = self.dir / "home"
        self.home.mkdir(parents=True)
        _, env = cli.suite_invocation(base.python, [], base.pythonpath() if level == "fork" else [])
        env.update(HOME=str(self.home), PYTHONDONTWRITEBYTECODE="1", KIMI_FORK_BASE=str(base.overlay_dir),
                   KIMI_FORK_SHARED_DATABASE=os.environ.get("KIMI_FORK_SHARED_DATABASE", "1"))  # 0: each child seeds its own
        if level == IMPORT:  # its children seed their own database (an import-level server makes no template)
            env[forkserver.LEVEL_VARIABLE] = "import"
        self.server = forkserver.ForkRunner(base.python, env, builds.KIT_ROOT, self.dir)
        self.started = None
        self.start_seconds = 0.0

    def start(self) -> None:
        begun = time.perf_counter()
        try:
            self.server.start()
            self.started = True
        except forkserver.RunnerError as e:
            self.started = e
        self.start_seconds = time.perf_counter() - begun

    def run(self, build: builds.Build, plan: Plan, out_dir: Path, pytest_args: list[str]) -> Cell:
        if self.started is not True:
            return run_cell(build, out_dir, pytest_args, f"fork server did not start: {self.started}")
        cell = _new_cell(build, out_dir)
        args = _suite_args(build, cell.report, pytest_args)
        cmd, env = cli.suite_invocation(build.python, args, build.pythonpath())
        log = out_dir / f"{build.name}.log"
        try:
            answer = self.server.run(list(plan.reload), cmd[3:], log, FORK_TIMEOUT_SECONDS,
                                     overlay=str(build.overlay_dir), env=env, cwd=str(builds.KIT_ROOT),
                                     shared_database=plan.shared_database)
        except forkserver.RunnerError as e:
            self.server.stop()
            self.start()
            return run_cell(build, out_dir, pytest_args, f"fork server failed: {e}")
        if answer.get("fallback"):
            return run_cell(build, out_dir, pytest_args, f"refused by the fork child: {answer['fallback']}")
        cell.runner = self.level
        cell.seconds = float(answer["seconds"])
        cell.exit_code = answer["exit"]
        if cell.exit_code is None:
            cell.error = f"timed out after {FORK_TIMEOUT_SECONDS:.0f} s (log: {log})"
            return cell
        return _read_report(cell, log.read_text(errors="replace") if log.exists() else "")

    def stop(self) -> None:
        self.server.stop()


def import_level_is_kept(base: builds.Build) -> bool:
    """True when an import-level server of ``base``'s environment has its probe's list kept
    (``forkserver.probe_cache_file``: written by an earlier server of that environment and overlay,
    either level), so that it starts without a whole Letta import of its own."""
    kept = forkserver.probe_cache_file(str(base.overlay_dir), prefix=str(builds.env_dir(base.version)), executable=str(base.python))
    return kept is not None and kept.is_file()


SERVER_WORTH = 4  # builds left of a Letta version for which a second fork server of it is started


def _run_forked(targets: list[builds.Build], plans: dict[str, Plan], jobs: int, out_dir: Path,
                pytest_args: list[str], done, server_record: list[dict] | None = None) -> None:
    """``jobs`` workers, each with at most one fork server at a time: a worker keeps to its server's
    Letta version and level (``fork`` or ``IMPORT``; an import-level server only for a version with at
    least ``IMPORT_SERVER_WORTH`` such builds, counting the fork builds of a version with fewer than
    ``FORK_SERVER_WORTH``, which join its import level where its probe list is kept or its server
    starts anyway, and else run in fresh interpreters, ``COLD_SMALL_LINE``) while it has builds, then starts a server for the version with the most builds
    left per server (a version's first, or another when ``SERVER_WORTH`` builds are left), and
    runs the subprocess builds when no fork work is left. Each server runs one child at a time."""
    queues: dict[tuple[str, str], list[builds.Build]] = {}  # (version, level) -> its builds
    bases: dict[tuple[str, str], str] = {}
    for b in targets:
        if plans[b.name].runner in ("fork", IMPORT):
            key = (b.version, plans[b.name].runner)
            queues.setdefault(key, []).append(b)
            bases[key] = plans[b.name].base
    others = [b for b in targets if plans[b.name].runner == "subprocess"]
    notes: dict[str, str] = {}  # why a build the plan would fork runs in a fresh interpreter
    for key in [k for k, q in queues.items() if k[1] == "fork" and len(q) < FORK_SERVER_WORTH and (k[0], IMPORT) in queues]:
        # a line of a build or two beside its import-level ones (a Letta version outside the catalogue:
        # its reference and upstream builds): one import-level server runs them all (each child imports
        # Letta from its build's tree) instead of a fork server that imports Letta for one child, where
        # that server need not probe first (its list is kept: ``import_level_is_kept``)
        if import_level_is_kept(builds.get_build(bases[key])) or len(queues[(key[0], IMPORT)]) >= IMPORT_SERVER_WORTH:
            queues[(key[0], IMPORT)] += queues.pop(key)  # kept, or that server starts (and probes) anyway
        else:  # a fresh interpreter per build costs less than a fork server (its Letta import, its database
            # template, its probe list) for one or two children: 6-35 s a server against 5-9 s a run (2026-12-02)
            notes.update((b.name, COLD_SMALL_LINE) for b in queues[key])
            others += queues.pop(key)
    for key in [k for k, q in queues.items() if k[1] == IMPORT and len(q) < IMPORT_SERVER_WORTH]:
        others += queues.pop(key)  # one build: a server of its own would cost what a fresh interpreter does
    servers = dict.fromkeys(queues, 0)
    lock = threading.Lock()
    root = Path(scratch.make_dir("kimi-matrix-fork-"))  # the servers' HOMEs (databases): in memory where /dev/shm is
    started = iter(range(10**6))

    def next_job(slot: _ForkSlot | None) -> tuple[str, object]:
        with lock:
            if slot is not None and queues.get((slot.version, slot.level)):
                return "fork", queues[(slot.version, slot.level)].pop(0)
            worth = [v for v, q in queues.items() if q and (servers[v] == 0 or len(q) >= SERVER_WORTH)]
            if worth:
                version = max(worth, key=lambda v: len(queues[v]) / (servers[v] + 1))
                servers[version] += 1
                return "start", version
            if others:
                return "subprocess", others.pop(0)
            return "stop", None

    def work() -> None:
        slot: _ForkSlot | None = None
        try:
            while True:
                kind, what = next_job(slot)
                if kind == "stop":
                    return
                if kind == "start":
                    if slot is not None:
                        slot.stop()
                    slot = _ForkSlot(builds.get_build(bases[what]), root, next(started), level=what[1])
                    slot.start()
                    if server_record is not None:
                        server_record.append({"version": slot.version, "level": slot.level,
                                              "seconds": round(slot.start_seconds, 1), "started": slot.started is True})
                elif kind == "fork":
                    done(slot.run(what, plans[what.name], out_dir, pytest_args))
                else:
                    done(run_cell(what, out_dir, pytest_args, notes.get(what.name, plans[what.name].why)))
        finally:
            if slot is not None:
                slot.stop()

    try:  # a worker's exception (the kit's bug, never a build's verdict) is raised here, in the caller's thread
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="kimi-matrix") as pool:
            for worker in [pool.submit(work) for _ in range(max(1, jobs))]:
                worker.result()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def plan_builds(targets: list[builds.Build]) -> dict[str, Plan]:
    bases: dict[str, dict] = {}
    plans = {}
    for b in targets:
        base = base_build(b)
        if b.has_overlay and base not in bases:
            try:
                bases[base] = tree_files(builds.ensure_build(base).overlay_dir)
            except builds.BuildError as e:
                bases[base] = e
        if isinstance(bases.get(base), builds.BuildError):
            plans[b.name] = Plan("subprocess", f"no {base} to fork from: {str(bases[base]).splitlines()[0]}")
        else:
            plans[b.name] = fork_plan(b, bases.get(base))
    return plans


def _try_to_make(build: builds.Build) -> None:
    try:
        builds.ensure_build(build)
    except builds.BuildError:
        pass  # its run through the launcher reports it (an error cell), as under the subprocess runner


def run_matrix(names: list[str], jobs: int = 2, out_dir: Path = DEFAULT_OUT, pytest_args: list[str] | None = None,
               progress=None, runner: str = "fork", servers: list[dict] | None = None) -> list[Cell]:
    """Run ``names`` under ``runner``; ``progress(cell, k, n)`` after each build. Cells in the order of ``names``.

    ``servers``, if given, gets a ``{"version", "level", "seconds", "started"}`` per fork server started
    (``seconds``: wall time until it was ready to fork, or failed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    every = builds.all_builds()
    targets = [every[n] for n in names]
    pytest_args = list(pytest_args or [])
    for version in sorted({b.version for b in targets}):
        builds.ensure_env(version)  # once, before the parallel runs
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # overlays made (if missing) before any server starts
        list(pool.map(_try_to_make, targets))
    finished: dict[str, Cell] = {}
    lock = threading.Lock()

    def done(cell: Cell) -> None:
        with lock:
            finished[cell.build] = cell
            if progress:
                progress(cell, len(finished), len(targets))

    if runner == "subprocess":
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(run_cell, b, out_dir, pytest_args) for b in targets]:
                done(future.result())
    else:
        _run_forked(targets, plan_builds(targets), jobs, out_dir, pytest_args, done, servers)
    return [finished[n] for n in names]


# --------------------------------------------------------------------------------------
# the two runners compared


def verdict_key(cell: Cell) -> tuple:
    """What must not differ between runners: exit code, verdict, the no-Kimi finding, the red IDs, an error."""
    return (cell.exit_code, cell.verdict, cell.no_kimi, tuple(cell.red), bool(cell.error))


def compare_sample(names: list[str], ran: list[Cell] | None = None) -> list[str]:
    """A sample for the runner comparison: per Letta version, one build of each set of modules the fork
    runner reloads, and one build it leaves to the subprocess runner (every such build runs the
    same launcher call under both runners, whatever the reason, so one per version checks that path).

    ``ran``: the fork run's cells, where it ran already; a build they say ran in a fresh interpreter
    (a small line's, ``COLD_SMALL_LINE``; a refused child) counts as a subprocess build, not as one of
    the reload sets it was planned for, so that each reload set is compared on a build that forked."""
    every = builds.all_builds()
    targets = [every[n] for n in names]
    plans = plan_builds(targets)
    runners = {c.build: c.runner for c in ran or []}
    chosen: dict[tuple, str] = {}
    for b in sorted(targets, key=lambda b: b.name):
        plan = plans[b.name]
        runner = "subprocess" if runners.get(b.name) == "subprocess" else plan.runner
        key = (b.version, runner, (plan.reload, plan.added) if runner == "fork" else b.has_overlay)
        chosen.setdefault(key, b.name)
    return sorted(chosen.values())


def runner_differences(first: list[Cell], second: list[Cell]) -> list[str]:
    """Builds whose verdicts differ between two runs of the same builds."""
    other = {c.build: c for c in second}
    return [f"{c.build}: {c.runner} {verdict_key(c)} vs {other[c.build].runner} {verdict_key(other[c.build])}"
            for c in first if c.build in other and verdict_key(c) != verdict_key(other[c.build])]


def score(cells: list[Cell], seconds: float | None = None) -> dict:
    defects = [c for c in cells if c.expected == DEFECT]
    correct = [c for c in cells if c.expected == CONFORMANT]
    caught_right = [c for c in defects if c.ok]
    return {
        "defect_runs": len(defects),
        "caught_with_right_ids": len(caught_right),
        "detection": round(len(caught_right) / len(defects), 4) if defects else None,
        "missed": {c.build: c.missed for c in defects if c.missed},
        "collateral_reds": {c.build: c.collateral for c in defects if c.collateral},
        "false_reds_on_correct_builds": {c.build: c.red for c in correct if c.red or c.no_kimi},
        "no_kimi_verdicts_wrong": [c.build for c in cells if c.expected == NO_KIMI and not c.ok],
        "errors": {c.build: c.error for c in cells if c.error},
        "all_ok": all(c.ok for c in cells),
        "seconds": round(seconds, 1) if seconds is not None else None,
        "runners": {name: sorted(c.build for c in cells if c.runner == name) for name in RUNNER_NAMES},
        "cells": [{**asdict(c), "ok": c.ok, "problem": c.problem()} for c in cells],
    }


def format_cell(cell: Cell) -> str:
    mark = "ok  " if cell.ok else "FAIL"
    expected = ",".join(cell.expected_red) if cell.expected == DEFECT else cell.expected
    got = ",".join(cell.red) if cell.red else ("no-kimi" if cell.no_kimi else "none red")
    line = f"{mark} {cell.build:44} expect {expected:32} got {got:32} {cell.seconds:5.1f}s {cell.runner}"
    line += f" ({cell.runner_note})" if cell.runner_note else ""
    return line + (f"  <- {cell.problem()}" if not cell.ok else "")


def format_progress(cell: Cell, k: int, n: int) -> str:
    return f"[{k}/{n}] {format_cell(cell)}"


def format_table(cells: list[Cell]) -> list[str]:
    """The final table: every build's line in name order, then the builds and seconds per runner."""
    lines = [format_cell(c) for c in sorted(cells, key=lambda c: c.build)]
    for name in RUNNER_NAMES:
        ran = [c for c in cells if c.runner == name]
        if ran:
            lines.append(f"{name} runner: {len(ran)} build(s), {sum(c.seconds for c in ran):.0f} s of build time")
    return lines


def format_score(result: dict) -> list[str]:
    lines = [
        f"detection: {result['caught_with_right_ids']}/{result['defect_runs']} defect runs caught with exactly the declared IDs"
        + (f" ({result['detection']:.0%})" if result["detection"] is not None else ""),
        f"collateral reds: {sum(len(v) for v in result['collateral_reds'].values())}"
        + (f" {result['collateral_reds']}" if result["collateral_reds"] else ""),
        f"false reds on correct builds: {len(result['false_reds_on_correct_builds'])}"
        + (f" {result['false_reds_on_correct_builds']}" if result["false_reds_on_correct_builds"] else ""),
    ]
    if result["missed"]:
        lines.append(f"missed: {result['missed']}")
    if result["no_kimi_verdicts_wrong"]:
        lines.append(f"wrong no-Kimi verdicts: {result['no_kimi_verdicts_wrong']}")
    if result["errors"]:
        lines.append(f"errors: {result['errors']}")
    if result.get("fork_servers"):
        started = result["fork_servers"]
        levels = ", ".join(f"{sum(1 for s in started if s['level'] == level)} {level}" for level in ("fork", IMPORT)
                           if any(s["level"] == level for s in started))
        lines.append(f"fork servers: {len(started)} started ({levels}), {sum(s['seconds'] for s in started):.0f} s until ready")
    if result["seconds"] is not None:
        lines.append(f"matrix time: {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min)")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m kimi_conformance matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="builds (default: every build; see `build --list`)")
    parser.add_argument("--jobs", type=int, default=2, help="builds run at once (default 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for reports, logs and score.json (default {DEFAULT_OUT})")
    parser.add_argument("--runner", choices=["fork", "subprocess"], default="fork",
                        help="fork: a fork server per Letta version, a child per build (default); subprocess: a fresh interpreter per build")
    parser.add_argument("--compare", action="store_true",
                        help="then run a sample of the builds (one per kind of change) under the subprocess runner and fail on any verdict that differs")
    args, pytest_args = parser.parse_known_args(argv)
    try:
        every = builds.all_builds()
        names = args.names or sorted(every)
        unknown = [n for n in names if n not in every]
        if unknown:
            raise builds.BuildError(f"unknown build(s) {', '.join(unknown)}; see `python3 -m kimi_conformance build --list`")
        start, servers = time.perf_counter(), []
        cells = run_matrix(names, args.jobs, args.out, pytest_args, runner=args.runner, servers=servers,
                           progress=lambda c, k, n: print(format_progress(c, k, n), flush=True))
        seconds = time.perf_counter() - start
        differences = None
        if args.compare and args.runner == "fork":
            sample = compare_sample(names, cells)
            print(f"runner comparison: {len(sample)} build(s) again under the subprocess runner", flush=True)
            again = run_matrix(sample, args.jobs, args.out / "subprocess", pytest_args, runner="subprocess",
                               progress=lambda c, k, n: print(format_progress(c, k, n), flush=True))
            differences = runner_differences(cells, again)
    except builds.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    result = score(cells, seconds)
    if args.runner == "fork":
        result["fork_servers"] = servers
    if differences is not None:
        result["runner_differences"] = differences
    (args.out / "score.json").write_text(json.dumps(result, indent=2))
    print("\n".join(format_table(cells)))
    print("\n".join(format_score(result)))
    if differences is not None:
        print(f"runner comparison: {'no verdict differs' if not differences else 'VERDICTS DIFFER: ' + '; '.join(differences)}")
    print(f"score: {args.out / 'score.json'}")
    return 0 if result["all_ok"] and not differences else 1
