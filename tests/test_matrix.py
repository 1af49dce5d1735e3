"""The verdict matrix: the kit is red on every catalogued defect with exactly its IDs, green on correct builds.

Every build (`python3 -m kimi_conformance build --list`) is run two at a time under
the fork runner, and a sample of them under the subprocess runner (the kit's CLI, as a
user runs it) to check that both give the same verdicts; each expectation is read from
the build's JSON report:
reference builds and variants green, upstream builds the single no-Kimi verdict,
each defect of fixtures/defects/ red on exactly the IDs it declares.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kimi_conformance import builds, forkserver, matrix
from kimi_conformance.contract import BEHAVIORS, INFO

ALL_BUILDS = sorted(builds.all_builds())
DEFECTS = {name: b for name, b in builds.all_builds().items() if b.kind == "defect"}
# REST-* are black-box behaviours (the REST suite); their defects live there.
IN_PROCESS = {bid for bid, b in BEHAVIORS.items() if b.level != INFO and not bid.startswith("REST-")}


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_build_gets_its_expected_verdict(verdict_matrix, build):
    """A build's JSON report matches its expectation (green / no-Kimi / exactly the declared IDs red)."""
    cell = verdict_matrix.cells[build]
    assert cell.ok, f"{build}: {cell.problem()} (log: {cell.report[:-5]}.log)"


def test_detection_score_is_complete(verdict_matrix):
    """Every defect caught with exactly its IDs, no collateral reds, no false reds on correct builds."""
    score = verdict_matrix.score
    assert score["caught_with_right_ids"] == score["defect_runs"], score["missed"] or score["collateral_reds"]
    assert score["false_reds_on_correct_builds"] == {}
    assert not score["errors"]


def test_the_catalogue_covers_every_must_and_should():
    """At least 30 defects, and every MUST and SHOULD (but the REST ones) is the declared target of one."""
    assert len({b.spec_file for b in DEFECTS.values()}) >= 30
    declared = {bid for b in DEFECTS.values() for bid in b.expect}
    assert IN_PROCESS - declared == set(), f"no defect targets {sorted(IN_PROCESS - declared)}"
    assert declared <= set(BEHAVIORS), f"unknown IDs declared: {sorted(declared - set(BEHAVIORS))}"


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_declares_what_it_breaks(name):
    """A defect file says what mistake it is and which behaviour IDs it must turn red."""
    defect = DEFECTS[name]
    assert defect.spec.get("description"), f"{defect.spec_file}: no description"
    assert defect.expect, f"{defect.spec_file}: no expect = [...]"


# --------------------------------------------------------------------------------------
# the runners: the fork runner gives the subprocess runner's verdicts


def test_the_runners_agree_on_a_sample_of_every_kind_of_build(verdict_matrix):
    """One build per Letta version and kind of change (the reference, each set of reloaded modules,
    each reason to fall back) run under the subprocess runner too: no verdict may differ.

    If this fails: the fork runner (kimi_conformance.forkserver, matrix.fork_plan) let a build's
    change through that reloading does not reproduce; make fork_plan send such builds to subprocess.
    """
    assert verdict_matrix.runner_differences == []
    assert {"reference-0.11.7", "reference-0.16.8"} <= set(verdict_matrix.sample)


def test_the_sample_holds_each_kind_of_edit_and_a_moved_module(verdict_matrix):
    """The compared sample reloads the provider, the client and the server, and holds a build that moves a module."""
    reloaded = {m for name in verdict_matrix.sample for m in matrix.fork_plan(builds.get_build(name)).reload}
    assert {"letta.schemas.providers.kimi", "letta.llm_api.kimi_client", "letta.server.server"} <= reloaded
    # a build that adds a module only its changed modules name reloads them (they import it fresh)
    assert any(matrix.fork_plan(builds.get_build(n)).added for n in verdict_matrix.sample)
    # a build that moves a module (moved-provider, the layout zoo) cannot reload: a child of an
    # import-level server (no Letta in its parent) imports it fresh; so does an upstream build
    import_level = [builds.get_build(n) for n in verdict_matrix.sample if matrix.fork_plan(builds.get_build(n)).runner == matrix.IMPORT]
    assert any(b.has_overlay for b in import_level) and any(not b.has_overlay for b in import_level)


def test_the_sample_compares_each_reload_set_on_a_build_that_forked():
    """A build the fork run ran in a fresh interpreter after all (a small line's, a refused child)
    stands for the subprocess path of its version in the compared sample, not for the reload set
    it was planned for: that set is compared on a build whose child did fork (else the comparison
    would set a subprocess run against a subprocess run and call the reload set checked).

    If this fails: matrix.compare_sample no longer reads the fork run's cells (``ran``).
    """
    names = ["401-as-value-error-0.16.8", "401-caught-by-catch-all-0.16.8"]  # both reload the provider only
    if any(matrix.fork_plan(builds.get_build(n)).reload != ("letta.schemas.providers.kimi",) for n in names):
        pytest.skip("the 0.16.8 overlays are not made (python3 -m kimi_conformance build all)")
    assert matrix.compare_sample(names) == ["401-as-value-error-0.16.8"]
    ran = [matrix.Cell("401-as-value-error-0.16.8", "0.16.8", "defect", matrix.CONFORMANT, [], runner="subprocess"),
           matrix.Cell("401-caught-by-catch-all-0.16.8", "0.16.8", "defect", matrix.CONFORMANT, [], runner="fork")]
    assert matrix.compare_sample(names, ran) == names


def test_the_fork_servers_ran_every_build_the_rule_gave_them(verdict_matrix):
    """The fork runner is the matrix's runner: every build fork_plan gives it ran in a fork server,
    or in a fresh interpreter for a stated reason (its child refused it; a small line without a kept
    probe list, ``matrix.COLD_SMALL_LINE``); the server itself never failed.

    If this fails: the fork server did not start or broke (its log is named in the build's line).
    """
    broken = {c.build: c.runner_note for c in verdict_matrix.cells.values() if c.runner_note.startswith("fork server")}
    assert broken == {}
    assert verdict_matrix.cells["reference-0.11.7"].runner == verdict_matrix.cells["reference-0.16.8"].runner == "fork"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_tree_changes_name_changed_added_and_removed_files_and_ignore_bytecode(tmp_path):
    """An overlay is compared with its base file by file, by content; __pycache__ never counts."""
    base = _tree(tmp_path / "base", {"letta/a.py": "a = 1\n", "letta/b.py": "b = 1\n", "letta/c.py": "c = 1\n"})
    overlay = _tree(tmp_path / "overlay", {"letta/a.py": "a = 1\n", "letta/b.py": "b = 2\n", "letta/d.py": "d = 1\n",
                                           "letta/__pycache__/a.cpython-311.pyc": "x"})
    assert matrix.tree_changes(base, overlay) == (["letta/b.py"], ["letta/d.py"], ["letta/c.py"])


PROVIDER, SERVER = "letta/schemas/providers/kimi.py", "letta/server/server.py"


@pytest.mark.parametrize(
    ("changed", "added", "removed", "runner", "reason"),
    [
        ([], [], [], "fork", ""),
        ([PROVIDER, SERVER], [], [], "fork", ""),
        ([PROVIDER], ["letta/schemas/providers/moonshot_ai.py"], [PROVIDER], "subprocess", "removes letta/schemas/providers/kimi.py, adds"),
        (["letta/settings.py"], [], [], "subprocess", "read at import"),
        (["letta/schemas/enums.py"], [], [], "subprocess", "read at import"),
        (["letta/schemas/providers/__init__.py"], [], [], "subprocess", "read at import"),
        (["letta/data/prompt.txt"], [], [], "subprocess", "not a module"),
    ],
    ids=["same-files", "provider-and-server", "moved-module", "settings", "enums", "package-init", "data-file"],
)
def test_fork_plan_sends_only_reloadable_changes_to_the_fork_server(tmp_path, changed, added, removed, runner, reason):
    """Changed modules are reloaded in the fork child; a moved file, settings, enums, a package's __init__ or a data file go to subprocess."""
    _tree(tmp_path, {p: "" for p in changed if p.endswith(".py")})
    plan = matrix.plan_changes("reference-0.11.7", tmp_path, changed, added, removed)
    assert (plan.runner, reason in plan.why) == (runner, True)
    if runner == "fork":
        assert sorted(plan.reload) == sorted(matrix.module_name(p) for p in changed)


CLIENT, RULES = "letta/llm_api/kimi_client.py", "letta/llm_api/kimi_chat_rules.py"


@pytest.mark.parametrize(
    ("files", "added", "runner", "reason"),
    [
        ({CLIENT: "from letta.llm_api.kimi_chat_rules import RULES\n"}, [RULES], "fork", ""),
        ({CLIENT: "from .kimi_chat_rules import RULES\n", "letta/server/server.py": "try:\n    import letta.llm_api.kimi_chat_rules\nexcept ImportError:\n    pass\n"},
         [RULES], "subprocess", "named by unchanged letta/server/server.py"),
        ({CLIENT: ""}, [RULES, "letta/llm_api/kimi_rules.json"], "subprocess", "not only modules"),
        ({CLIENT: ""}, ["letta/llm_api/kimi/__init__.py"], "subprocess", "read at import"),
    ],
    ids=["named-by-a-changed-module", "named-by-an-unchanged-module", "with-a-data-file", "a-new-package"],
)
def test_an_added_module_forks_when_only_changed_modules_name_it(tmp_path, files, added, runner, reason):
    """A module the overlay adds is imported fresh from the overlay by the reloaded modules that name
    it: it forks. An unchanged module that names it ran in the parent without it (a guarded import
    keeps its fallback), so that build, like one adding a data file or a package, goes to subprocess.

    If this fails: matrix.plan_changes lets an added file through that an unchanged module may
    have looked up in the parent (a false verdict under the fork runner), or refuses a harmless one.
    """
    _tree(tmp_path, {**files, **{p: "RULES = 1\n" for p in added}})
    plan = matrix.plan_changes("reference-0.16.8", tmp_path, [CLIENT], added, [])
    assert (plan.runner, reason in plan.why) == (runner, True), plan.why
    if runner == "fork":
        assert plan.reload == ("letta.llm_api.kimi_client",) and plan.added == ("letta.llm_api.kimi_chat_rules",)


def test_a_module_added_by_the_build_is_imported_from_its_tree_by_the_reloaded_module(tmp_path, monkeypatch):
    """In the fork child, the reloaded module imports the build's added module from the build's tree."""
    base = _tree(tmp_path / "base", {"kitadd/__init__.py": "", "kitadd/client.py": "RULE = 'base'\n"})
    build = _tree(tmp_path / "build", {"kitadd/__init__.py": "", "kitadd/client.py": "from kitadd.rules import RULE\n",
                                       "kitadd/rules.py": "RULE = 'build'\n"})
    monkeypatch.syspath_prepend(str(base))
    monkeypatch.setattr(sys, "path", list(sys.path))
    import kitadd.client

    try:
        forkserver.redirect(base, build, package="kitadd")
        forkserver.reload_modules(["kitadd.client"])
        assert kitadd.client.RULE == "build" and sys.modules["kitadd.rules"].__file__ == str(build / "kitadd" / "rules.py")
    finally:
        for name in ("kitadd", "kitadd.client", "kitadd.rules"):
            sys.modules.pop(name, None)


def test_an_upstream_build_imports_letta_fresh():
    """Letta as released differs from the reference in the enum, settings and exports: never reloaded,
    imported fresh (the installed Letta) in a child of an import-level fork server."""
    plan = matrix.fork_plan(builds.get_build("upstream-0.11.7"))
    assert plan.runner == matrix.IMPORT and "no overlay" in plan.why and plan.base == "reference-0.11.7"


def test_a_build_that_cannot_reload_goes_to_the_import_level():
    """fork_plan keeps plan_changes' reason and gives the build to the import level."""
    plan = matrix.fork_plan(builds.get_build("moved-provider-0.16.8"))
    assert plan.runner == matrix.IMPORT and "removes letta/schemas/providers/kimi.py" in plan.why


def test_changed_modules_reload_after_the_changed_modules_they_import(tmp_path):
    """A changed module that imports another changed one at its top level is reloaded after it."""
    _tree(tmp_path, {"letta/a.py": "from letta.b import X\n", "letta/b.py": "from .c import Y\n", "letta/c.py": "Y = 1\n"})
    assert matrix.reload_order(tmp_path, ["letta/a.py", "letta/b.py", "letta/c.py"]) == ["letta.c", "letta.b", "letta.a"]


# --------------------------------------------------------------------------------------
# the fork child: what it refuses


@pytest.fixture
def scratch_modules(tmp_path, monkeypatch):
    """Import throw-away modules from files in tmp_path (removed from sys.modules afterwards)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def load(**sources: str):
        for name, text in sources.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
        for name in sources:
            names.append(name)
            sys.modules.pop(name, None)
        return [importlib.import_module(name) for name in sources]

    yield load
    for name in names:
        sys.modules.pop(name, None)


def test_a_subclass_elsewhere_makes_the_child_refuse(scratch_modules):
    """A class of a changed module subclassed in an unchanged module would keep the old base: the child refuses."""
    scratch_modules(kit_fs_base="class Client:\n    pass\n", kit_fs_user="from kit_fs_base import Client\n\nclass Kimi(Client):\n    pass\n")
    assert forkserver.unsafe_subclasses(["kit_fs_base"]) == ["kit_fs_user.Kimi subclasses kit_fs_base.Client"]
    assert forkserver.unsafe_subclasses(["kit_fs_base", "kit_fs_user"]) == []


def test_a_changed_value_copied_by_another_module_makes_the_child_refuse(scratch_modules, tmp_path):
    """`from m import LIMIT` keeps the old value after m's reload (rebinding moves only classes and functions)."""
    scratch_modules(kit_fs_const="LIMIT = 8192\nNAMES = ['a']\n", kit_fs_reader="from kit_fs_const import LIMIT, NAMES\n")
    (tmp_path / "kit_fs_const.py").write_text("LIMIT = 32768\nNAMES = ['a']\n")
    moved, stale = forkserver.reload_modules(["kit_fs_const"])
    assert stale == ["kit_fs_reader.LIMIT is a copy of the old kit_fs_const.LIMIT"]


def test_redirect_points_loaded_modules_and_later_imports_at_the_build_tree(tmp_path, monkeypatch):
    """After redirect, a loaded module's file and a package's path are the build's, and a module imported later is read from it."""
    base = _tree(tmp_path / "base", {"kitpkg/__init__.py": "", "kitpkg/a.py": "WHERE = 'base'\n", "kitpkg/b.py": "WHERE = 'base'\n"})
    build = _tree(tmp_path / "build", {"kitpkg/__init__.py": "", "kitpkg/a.py": "WHERE = 'build'\n", "kitpkg/b.py": "WHERE = 'build'\n"})
    monkeypatch.syspath_prepend(str(base))
    monkeypatch.setattr(sys, "path", list(sys.path))
    import kitpkg.a

    try:
        forkserver.redirect(base, build, package="kitpkg")
        assert kitpkg.a.__file__ == str(build / "kitpkg" / "a.py") and kitpkg.a.WHERE == "base"
        assert importlib.import_module("kitpkg.b").WHERE == "build"
        forkserver.reload_modules(["kitpkg.a"])
        assert kitpkg.a.WHERE == "build"
    finally:
        for name in ("kitpkg", "kitpkg.a", "kitpkg.b"):
            sys.modules.pop(name, None)


def test_the_score_says_how_many_fork_servers_started_and_their_start_up():
    """The summary names the fork servers a run started, per level, and their time until ready (a figure
    for bench/speed.py and the README: what the fork runner pays besides its children)."""
    result = matrix.score([], 12.0)
    result["fork_servers"] = [{"version": "0.11.7", "level": "fork", "seconds": 8.2, "started": True},
                              {"version": "0.16.8", "level": "fork", "seconds": 9.9, "started": True},
                              {"version": "0.16.8", "level": matrix.IMPORT, "seconds": 6.5, "started": True}]
    assert "fork servers: 3 started (2 fork, 1 fork-import), 25 s until ready" in matrix.format_score(result)
    assert not any(line.startswith("fork servers") for line in matrix.format_score(matrix.score([], 12.0)))


class FakeForkSlots:
    """Stands in for ``matrix._ForkSlot`` and the subprocess runner: records each server started
    (``started``: (version, level)) and each build run (``ran``: (build, runner)); a server is ready in 1.25 s."""

    def __init__(self):
        self.started: list[tuple[str, str]] = []
        self.ran: list[tuple[str, str]] = []
        self.notes: dict[str, str] = {}  # build -> the note of its run in a fresh interpreter
        record = self

        class Slot:
            def __init__(self, base, root, index, level="fork"):
                self.version, self.level, self.started, self.start_seconds = base.version, level, None, 0.0
                record.started.append((base.version, level))

            def start(self):
                self.started, self.start_seconds = True, 1.25

            def run(self, build, plan, out_dir, pytest_args):
                return record.cell(build, self.level)

            def stop(self):
                pass

        self.slot = Slot

    def cell(self, build: builds.Build, runner: str, note: str = "") -> matrix.Cell:
        self.ran.append((build.name, runner))
        self.notes[build.name] = note
        return matrix.Cell(build.name, build.version, build.kind, matrix.CONFORMANT, [], runner=runner)


@pytest.fixture
def fake_fork_slots(monkeypatch, tmp_path) -> FakeForkSlots:
    """``matrix._run_forked`` with fake fork servers and subprocess runs (FakeForkSlots): its scheduling only."""
    fakes = FakeForkSlots()
    monkeypatch.setattr(matrix, "_ForkSlot", fakes.slot)
    monkeypatch.setattr(matrix, "run_cell", lambda build, out_dir, pytest_args, note="": fakes.cell(build, "subprocess", note))
    monkeypatch.setattr(matrix.scratch, "make_dir", lambda prefix: str(tmp_path / "fork-root"))
    return fakes


@pytest.mark.parametrize("kept", [True, False], ids=["probe-list-kept", "no-probe-list"])
def test_a_line_of_a_build_or_two_starts_no_fork_server_of_its_own(monkeypatch, tmp_path, fake_fork_slots, kept):
    """A Letta version with one fork build and one import-level build (a line outside the catalogue:
    its reference and upstream builds) starts one import-level server for both, not a fork server for
    one child and a fresh interpreter for the other, when that server's probe list is kept; when it is
    not (a fresh machine, a changed kit: every CI run), both run in fresh interpreters, which cost less
    than a server that must import Letta (to probe, or to fork) for one or two children (measured on
    2026-12-02: the six small lines' fork servers took 6-35 s each to start, their upstream builds
    5-9 s each in a fresh interpreter). A catalogue-sized line keeps its fork server.

    If this fails: matrix._run_forked's FORK_SERVER_WORTH rule; such a line pays a server's start
    for one child.
    """
    monkeypatch.setattr(matrix, "import_level_is_kept", lambda base: kept)
    names = ["reference-0.13.0", "upstream-0.13.0", "reference-0.16.8", "401-as-value-error-0.16.8",
             "500-swallowed-0.16.8", "upstream-0.16.8"]
    targets = [builds.get_build(n) for n in names]
    plans = {"reference-0.13.0": matrix.Plan("fork", base="reference-0.13.0"),
             "upstream-0.13.0": matrix.Plan(matrix.IMPORT, "no overlay", base="reference-0.13.0"),
             **{n: matrix.Plan("fork", base="reference-0.16.8") for n in names[2:5]},
             "upstream-0.16.8": matrix.Plan(matrix.IMPORT, "no overlay", base="reference-0.16.8")}
    matrix._run_forked(targets, plans, 1, tmp_path, [], lambda cell: None)
    line = {"reference-0.13.0": matrix.IMPORT, "upstream-0.13.0": matrix.IMPORT} if kept else \
        {"reference-0.13.0": "subprocess", "upstream-0.13.0": "subprocess"}
    servers = [("0.13.0", matrix.IMPORT), ("0.16.8", "fork")] if kept else [("0.16.8", "fork")]
    assert sorted(fake_fork_slots.started) == sorted(servers)
    assert dict(fake_fork_slots.ran) == {**line, "reference-0.16.8": "fork", "401-as-value-error-0.16.8": "fork",
                                         "500-swallowed-0.16.8": "fork", "upstream-0.16.8": "subprocess"}
    assert (fake_fork_slots.notes.get("reference-0.13.0") == matrix.COLD_SMALL_LINE) is not kept


def test_a_small_line_joins_an_import_level_server_that_starts_anyway(monkeypatch, tmp_path, fake_fork_slots):
    """One or two fork builds of a line whose import level has builds enough for a server of its own
    join that server even when its probe list is not kept: it starts (and probes) anyway, and a
    child of it costs less than a fresh interpreter.

    If this fails: matrix._run_forked sends such builds to subprocess beside a server that could run them.
    """
    monkeypatch.setattr(matrix, "import_level_is_kept", lambda base: False)
    names = ["reference-0.16.8", "upstream-0.16.8", "moved-provider-0.16.8"]  # a subset picked by hand
    targets = [builds.get_build(n) for n in names]
    plans = {"reference-0.16.8": matrix.Plan("fork", base="reference-0.16.8"),
             "upstream-0.16.8": matrix.Plan(matrix.IMPORT, "no overlay", base="reference-0.16.8"),
             "moved-provider-0.16.8": matrix.Plan(matrix.IMPORT, "removes a module", base="reference-0.16.8")}
    matrix._run_forked(targets, plans, 1, tmp_path, [], lambda cell: None)
    assert fake_fork_slots.started == [("0.16.8", matrix.IMPORT)]
    assert dict(fake_fork_slots.ran) == dict.fromkeys(names, matrix.IMPORT)


def test_a_fork_worker_that_breaks_raises_in_the_caller(monkeypatch, tmp_path):
    """A bug of the kit in a fork worker's thread is raised by run_matrix's caller, never a missing cell later."""

    class Slot:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("the kit's own bug")

    monkeypatch.setattr(matrix, "_ForkSlot", Slot)
    build = builds.get_build("reference-0.16.8")
    with pytest.raises(RuntimeError, match="the kit's own bug"):
        matrix._run_forked([build], {build.name: matrix.Plan("fork", base=build.name)}, 2, tmp_path, [], lambda cell: None)


# --------------------------------------------------------------------------------------
# review (fresh eyes, 2026-12-02)


def test_the_fork_runner_records_its_servers_and_runs_every_build(tmp_path, fake_fork_slots):
    """`_run_forked(..., servers=[...])` runs every build and appends one entry per server started.

    If this fails with "'dict' object has no attribute 'append'" (in a worker thread) and no build
    done: `_run_forked` rebinds its `servers` parameter to its per-version server counts, so every
    fork-runner matrix (`matrix`, the self-test's) dies after its first server starts."""
    targets = [builds.get_build("reference-0.16.8"), builds.get_build("reference-0.11.7")]
    plans = {b.name: matrix.Plan("fork", base=b.name) for b in targets}
    done, servers = [], []
    matrix._run_forked(targets, plans, 2, tmp_path, [], done.append, servers)
    assert sorted(c.build for c in done) == sorted(b.name for b in targets)
    assert sorted(s["version"] for s in servers) == ["0.11.7", "0.16.8"]
    assert all(s["level"] == "fork" and s["started"] and s["seconds"] == 1.2 for s in servers)


def test_an_added_module_that_patches_a_changed_module_at_import_is_judged_as_in_a_fresh_interpreter(tmp_path, monkeypatch):
    """A build's added module imported by a changed module (the rule: fork) patches another changed
    module's class at import (a fork's "tweaks" module). A fresh interpreter keeps the patch; the fork
    child must end the same, or refuse the build (fallback).

    If this fails: the child reloaded the importing module first (reload_order sorts by name and sees
    no import between the two changed modules: it goes through the added one), so the added module
    patched the base's class, and the later reload of the patched module installed a class without the
    patch: a false verdict (fixtures/defects/tweaks-module-patches-handle.toml: false green;
    fixtures/variants/handle-rule-in-tweaks-module.toml: false red)."""
    provider = "class P:\n    def handle(self):\n        return 'kimi/m'\n"
    base = _tree(tmp_path / "base", {"kitmp/__init__.py": "", "kitmp/factory.py": "X = 1\n", "kitmp/provider.py": provider})
    build = _tree(tmp_path / "build", {"kitmp/__init__.py": "", "kitmp/factory.py": "import kitmp.patches\nX = 1\n",
                                       "kitmp/provider.py": "# handle: see kitmp/patches.py\n" + provider,
                                       "kitmp/patches.py": "from kitmp.provider import P\n\nP.handle = lambda self: 'm'\n"})
    plan = matrix.plan_changes("reference-0.16.8", build, ["kitmp/factory.py", "kitmp/provider.py"], ["kitmp/patches.py"], [])
    assert plan.runner == "fork" and plan.added == ("kitmp.patches",), plan
    fresh = subprocess.run([sys.executable, "-c", "import kitmp.factory, kitmp.provider; print(kitmp.provider.P().handle())"],
                           env={**os.environ, "PYTHONPATH": str(build)}, capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.syspath_prepend(str(base))
    monkeypatch.setattr(sys, "path", list(sys.path))
    import kitmp.factory
    import kitmp.provider

    try:
        forkserver.redirect(base, build, package="kitmp")
        refused = forkserver.unsafe_subclasses(list(plan.reload)) or forkserver.reload_modules(list(plan.reload))[1]
        assert refused or sys.modules["kitmp.provider"].P().handle() == fresh == "m", (plan.reload, fresh)
    finally:
        for name in ("kitmp", "kitmp.factory", "kitmp.provider", "kitmp.patches"):
            sys.modules.pop(name, None)


def test_changed_modules_reload_after_the_changed_modules_they_import_through_an_added_one(tmp_path):
    """A changed module that imports an added module which imports another changed module is reloaded after it
    (the added module runs during the first one's reload and must see the other already reloaded).

    If this fails: reload_order only follows imports between changed modules, so letta.a (sorted first)
    is reloaded while letta.b is still the base's: the added letta.x binds, subclasses or patches the old
    letta.b (see test_an_added_module_that_patches_a_changed_module_at_import_...)."""
    _tree(tmp_path, {"letta/a.py": "import letta.x\n", "letta/x.py": "from letta.b import P\n", "letta/b.py": "class P:\n    pass\n"})
    plan = matrix.plan_changes("reference-0.16.8", tmp_path, ["letta/a.py", "letta/b.py"], ["letta/x.py"], [])
    assert plan.runner != "fork" or plan.reload == ("letta.b", "letta.a"), plan
