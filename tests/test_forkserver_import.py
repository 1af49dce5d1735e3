"""The fork server's "import" level (``KIMI_FORK_LEVEL=import``) on fake, tiny ``letta`` packages.

Its parent imports what Letta imports but no ``letta`` module; each child puts its run's
PYTHONPATH first and imports Letta from the build's own tree. No real Letta is needed:
each overlay is a few files whose ``letta.ANSWER`` names the tree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_conformance import builds, forkserver

# the modules forkserver.PRELOAD imports from Letta: each fake tree has them
LETTA_FILES = ("letta/server/__init__.py", "letta/server/server.py", "letta/llm_api/__init__.py",
               "letta/llm_api/llm_client.py", "letta/llm_api/openai_client.py", "letta/schemas/__init__.py",
               "letta/schemas/providers/__init__.py")
# a standard-library module nothing else here imports: only a fake Letta's import loads it
LETTA_ONLY_IMPORT = "fractions"


def _letta(root: Path, answer: str, init_extra: str = "") -> Path:
    """A fake ``letta`` package under ``root`` whose ``ANSWER`` is ``answer``."""
    for rel in LETTA_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "letta" / "__init__.py").write_text(f"import {LETTA_ONLY_IMPORT}\n{init_extra}ANSWER = {answer!r}\n")
    return root


def _kit_python() -> str | None:
    """A Python with the kit's requirements (``forkserver.PRELOAD`` imports the kit's plugin): this
    one, or a build environment's (its installed Letta is shadowed by the fake ones here)."""
    if all(importlib.util.find_spec(n) for n in ("httpx", "respx", "vcr", "yaml")):
        return sys.executable
    return next((str(p) for p in sorted(builds.KIT_ROOT.glob(".builds/envs/*/bin/python"))), None)


PYTHON = _kit_python()
pytestmark = pytest.mark.skipif(PYTHON is None, reason="no Python with the kit's requirements (httpx, respx, vcr, yaml)")


@pytest.fixture
def site(tmp_path) -> Path:
    """The server's extra import folder (first on its PYTHONPATH): the "installed" Letta."""
    folder = tmp_path / "site"
    _letta(folder, "installed")
    return folder


def _env(home: Path, *path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "PYTHONPATH"}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join([*map(str, path), str(builds.KIT_ROOT)]),
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def test_the_parent_imports_what_letta_imports_but_no_letta_module(tmp_path, site):
    """The probe child sees the overlay's Letta import ``fractions``; the parent imports it, and no ``letta``."""
    overlay = _letta(tmp_path / "a", "a")
    code = ("import json, sys\nfrom kimi_conformance import forkserver\n"
            f"crept = forkserver.preload_without_letta({str(overlay)!r})\n"
            f"print(json.dumps([crept, sorted(n for n in sys.modules if n.split('.')[0] == 'letta'), {LETTA_ONLY_IMPORT!r} in sys.modules]))")
    proc = subprocess.run([PYTHON, "-c", code], env=_env(tmp_path, site), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == [[], [], True]


def _server(tmp_path: Path, site: Path, base: Path) -> forkserver.ForkRunner:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = _env(home, site, KIMI_FORK_LEVEL="import", KIMI_FORK_BASE=str(base))
    return forkserver.ForkRunner(Path(PYTHON), env, tmp_path, tmp_path / "server")


def test_each_child_imports_letta_from_its_own_build(tmp_path, site):
    """Two overlays and none (an upstream build: the installed Letta) give three answers from one server."""
    a, b = _letta(tmp_path / "a", "a"), _letta(tmp_path / "b", "b")
    (tmp_path / "test_answer.py").write_text(
        "import os\n\ndef test_answer():\n    import letta\n"
        "    open(os.environ['ANSWER_FILE'], 'w').write(letta.ANSWER)\n")
    server = _server(tmp_path, site, base=a)
    server.start()
    try:
        answers = {}
        for name, overlay in (("a", [a]), ("b", [b]), ("upstream", [])):
            out = tmp_path / f"{name}.answer"
            answer = server.run([], ["-q", "-p", "no:cacheprovider", "test_answer.py"], tmp_path / f"{name}.log", 60,
                                env=_env(tmp_path / "home", *overlay, site, ANSWER_FILE=str(out)), cwd=str(tmp_path))
            assert answer["exit"] == 0, (tmp_path / f"{name}.log").read_text()
            answers[name] = out.read_text()
    finally:
        server.stop()
    assert answers == {"a": "a", "b": "b", "upstream": "installed"}


def test_the_import_level_refuses_a_parent_that_letta_crept_into(tmp_path, site):
    """A module Letta imports that itself imports ``letta`` would load Letta in the parent: the server
    says it cannot serve (the matrix then runs those builds in fresh interpreters)."""
    (site / "sneaky.py").write_text("import letta\n")
    overlay = _letta(tmp_path / "a", "a", init_extra="import sneaky\n")
    server = _server(tmp_path, site, base=overlay)
    with pytest.raises(forkserver.RunnerError, match="cannot serve the import level: letta"):
        server.start()
    server.stop()


def test_the_probe_is_kept_per_environment_overlay_and_kit(tmp_path, monkeypatch):
    """The import level's probe (a whole Letta import in a child) runs once per environment, overlay and
    kit: a later server reads its list. A changed overlay probes again; an environment or overlay the kit
    did not make keeps nothing.

    If this fails: forkserver.probe_cache_file/probe_modules; each import-level server pays a Letta import again.
    """
    env, overlay = tmp_path / "env", tmp_path / "overlay"
    env.mkdir()
    overlay.mkdir()
    (env / ".kit-env.json").write_text('{"digest": "e1"}')
    (overlay / ".kit-overlay.json").write_text('{"digest": "o1"}')
    monkeypatch.setattr(sys, "prefix", str(env))
    probes = []
    monkeypatch.setattr(forkserver, "_probe", lambda o: probes.append(o) or ["json", f"m{len(probes)}"])
    assert forkserver.probe_modules(str(overlay)) == forkserver.probe_modules(str(overlay)) == ["json", "m1"]
    (overlay / ".kit-overlay.json").write_text('{"digest": "o2"}')
    assert forkserver.probe_modules(str(overlay)) == ["json", "m2"]
    assert len(list((env / forkserver.PROBE_CACHE).glob("*.json"))) == 2
    (overlay / ".kit-overlay.json").unlink()
    assert forkserver.probe_cache_file(str(overlay)) is None and forkserver.probe_modules(str(overlay)) == ["json", "m3"]


def test_a_fork_level_server_lists_what_the_probe_would(tmp_path, monkeypatch):
    """What a fork-level server loaded from its overlay, Letta's modules and the overlay's files left out,
    is the list an import-level server of the same environment and overlay probes for (the fork-level
    server keeps it: forkserver.main)."""
    overlay = _letta(tmp_path / "a", "a")
    monkeypatch.syspath_prepend(str(overlay))
    for name in [n for n in sys.modules if n == "letta" or n.startswith("letta.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.import_module("letta.server.server")
    listed = forkserver.loaded_outside(str(overlay))
    assert LETTA_ONLY_IMPORT in listed and not [n for n in listed if n.split(".")[0] == "letta"]


def test_a_fork_server_imports_letta_without_the_shells_database_settings(tmp_path, site):
    """The suites' plugin holds LETTA_PG_URI & co. back before a fresh interpreter imports Letta; a
    reload-level fork server imports Letta in its parent, before any child's plugin runs, so it holds
    them back itself (kimi_conformance.held_back), and its children see Letta as a fresh interpreter does.

    If this fails: with LETTA_PG_URI set in the shell the fork runner's children use that database
    (Letta read it at the parent's import): `LETTA_PG_URI=postgresql://nobody:x@127.0.0.1:9/nodb
    python3 -m kimi_conformance matrix reference-0.16.8` is red on ENABLE-*, RESOLVE-*, ROUTE-KEY
    (asyncpg connection errors) where `--runner subprocess` is green; a reachable database of the
    user's would be written to. (Found by a fresh-eyes review, 2026-12-02.)
    """
    overlay = _letta(tmp_path / "a", "a", init_extra="import os\nSEEN = os.environ.get('LETTA_PG_URI')\n")
    (tmp_path / "test_seen.py").write_text(
        "import os\n\ndef test_seen():\n    import letta\n    open(os.environ['ANSWER_FILE'], 'w').write(repr(letta.SEEN))\n")
    home = tmp_path / "home"
    home.mkdir()
    env = _env(home, overlay, site, KIMI_FORK_BASE=str(overlay), LETTA_PG_URI="postgresql://nobody:x@127.0.0.1:9/nodb")
    server = forkserver.ForkRunner(Path(PYTHON), env, tmp_path, tmp_path / "server")
    server.start()
    out = tmp_path / "seen"
    try:
        answer = server.run([], ["-q", "-p", "no:cacheprovider", "test_seen.py"], tmp_path / "seen.log", 60,
                            env={**env, "ANSWER_FILE": str(out)}, cwd=str(tmp_path))
    finally:
        server.stop()
    assert answer["exit"] == 0, (tmp_path / "seen.log").read_text()
    assert out.read_text() == "None"


def test_a_reloaded_module_reads_the_runs_environment_at_import(tmp_path, site):
    """A module a build changes is reloaded in the child under the run's environment (HOME of its own,
    the shell's database settings held back), as a fresh interpreter imports it, not the server's; the
    held-back settings are back when the run's pytest starts (its plugin holds them back again and
    names them in the report's header, as in a fresh interpreter).

    If this fails: forkserver._child reloads before it takes the run's environment (a fork's module
    that reads a variable at import judges another deployment than the one the run sets up), or it
    keeps the settings from the run's plugin (whose header then no longer names them).
    """
    base, build = _letta(tmp_path / "a", "a"), _letta(tmp_path / "b", "b")
    reads = "import os\nSEEN = (os.environ.get('KIT_RUN_ONLY'), os.environ.get('LETTA_PG_URI'))\n"
    for tree, reader in ((base, "SEEN = 'base'\n"), (build, reads)):
        (tree / "letta" / "server" / "server.py").write_text("import letta.reader\n")
        (tree / "letta" / "reader.py").write_text(reader)
    (tmp_path / "test_seen.py").write_text(
        "import os\n\ndef test_seen():\n    import letta.reader\n"
        "    open(os.environ['ANSWER_FILE'], 'w').write(repr((letta.reader.SEEN, os.environ.get('LETTA_PG_URI'))))\n")
    home = tmp_path / "home"
    home.mkdir()
    server = forkserver.ForkRunner(Path(PYTHON), _env(home, base, site, KIMI_FORK_BASE=str(base)), tmp_path, tmp_path / "server")
    server.start()
    out = tmp_path / "seen"
    try:
        answer = server.run(["letta.reader"], ["-q", "-p", "no:cacheprovider", "test_seen.py"], tmp_path / "seen.log", 60,
                            overlay=str(build), env=_env(home, build, site, KIT_RUN_ONLY="run", ANSWER_FILE=str(out),
                                                         LETTA_PG_URI="postgresql://nobody:x@127.0.0.1:9/nodb"),
                            cwd=str(tmp_path))
    finally:
        server.stop()
    assert answer["exit"] == 0, (tmp_path / "seen.log").read_text()
    assert out.read_text() == repr((("run", None), "postgresql://nobody:x@127.0.0.1:9/nodb"))
