"""The kit as a tool people install: `pip install <kit>` into a fresh virtualenv, then run from any folder.

The installed kit carries its suites, cassettes, CONTRACT.md and build recipes (the package
kimi_conformance_kit beside kimi_conformance in site-packages); `kimi-conformance run --python <a
Letta environment>`, `python -m kimi_conformance run` and `pytest --pyargs kimi_conformance_kit.suites`
work from a folder that has nothing to do with the kit, and write their report there. Installing
from the checkout leaves the checkout as it was (no build/, no *.egg-info).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit_cli import BUILD, KIT_ROOT, NEEDS_MIXED_IDS, assert_one_usage_error

from kimi_conformance import builds
from kimi_conformance.exitcodes import EXIT_OK

SHIPPED = ["suites", "cassettes", "fixtures", "kimi_conformance"]


def _checkout_state() -> tuple[str, list[str]]:
    """`git status` of the checkout and the build leftovers in it (build/, *.egg-info)."""
    status = subprocess.run(["git", "status", "--porcelain"], cwd=KIT_ROOT, capture_output=True, text=True, timeout=60).stdout
    return status, sorted(p.name for p in [*KIT_ROOT.glob("*.egg-info"), KIT_ROOT / "build"] if p.exists())


def _pip_install(pip: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(pip), "install", "--quiet", *args], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the kit pip-installed from this checkout (PyPI for its requirements)."""
    venv = tmp_path_factory.mktemp("venv") / "kit"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    _pip_install(venv / "bin" / "pip", str(KIT_ROOT))
    return venv


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "KIMI_KIT_BUILDS")}
    return {**env, **extra}


def _files(root: Path, trees: list[str]) -> set[str]:
    return {str(p.relative_to(root)) for tree in trees for p in (root / tree).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_installed_kit_carries_suites_cassettes_contract_and_recipes(installed):
    """Every file of the checkout's suites/, cassettes/, fixtures/ and the package, plus CONTRACT.md and
    the pytest settings, is in the installed kit's tree (the package kimi_conformance_kit).

    If this fails: setup.py's KIT_TREES / KIT_FILES miss a folder or file the launcher needs."""
    tree = _site_packages(installed) / builds.INSTALLED_KIT
    assert _files(tree, SHIPPED) == _files(KIT_ROOT, SHIPPED)
    for name in ("conftest.py", "pyproject.toml", "CONTRACT.md"):
        assert (tree / name).read_bytes() == (KIT_ROOT / name).read_bytes(), name


@pytest.fixture(scope="module")
def kit_only(installed, tmp_path_factory) -> tuple[Path, tuple, tuple]:
    """The kit alone (`pip install --no-deps --target`) from this checkout, as it goes into a Letta
    environment, with the checkout's state before and after the install."""
    target = tmp_path_factory.mktemp("target") / "kit"
    before = _checkout_state()
    _pip_install(installed / "bin" / "pip", "--no-deps", "--target", str(target), str(KIT_ROOT))
    return target, before, _checkout_state()


def test_installing_from_the_checkout_leaves_it_unchanged(kit_only):
    """`pip install <checkout>` writes nothing into the checkout: no build/, no *.egg-info (an egg-info
    there would register the kit's plugin, by its entry point, in every pytest run from the checkout),
    `git status` as before.

    If this fails: setup.py lets setuptools work in the checkout (its build_base / egg_base)."""
    target, before, after = kit_only
    assert after == before
    assert (target / builds.INSTALLED_KIT / "suites" / "conftest.py").is_file()


def _pyargs(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`pytest --pyargs kimi_conformance_kit.suites ARGS` with the reference build's interpreter, the kit
    installed beside it (PYTHONPATH: the build's overlay, then the kit), pytest's plugin autoload on."""
    build = builds.ensure_build(BUILD)
    env = _clean_env(PYTHONPATH=os.pathsep.join([*build.pythonpath(), str(target)]))
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run([str(build.python), "-m", "pytest", "--pyargs", "kimi_conformance_kit.suites", "-p", "no:randomly", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)


def test_pytest_pyargs_runs_the_installed_suites_from_any_folder(kit_only, tmp_path):
    """`pytest --pyargs kimi_conformance_kit.suites` from an unrelated folder: the installed tree's
    conftest and settings hold (pytest-asyncio auto mode, one session loop), the plugin comes by its
    entry point once, and the verdict and exit code are the launcher's (reference: conformant, 0),
    the report in that folder.

    If this fails: kimi_conformance/kit_settings.py or the tree's conftest.py (sys.path) missed a step."""
    done = _pyargs(kit_only[0], tmp_path, "-p", "no:warnings")
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_OK, output[-3000:]
    assert "mode=Mode.AUTO" in output and "asyncio_default_test_loop_scope=session" in output, output[:2000]
    assert json.loads((tmp_path / "reports" / "conformance.json").read_text())["verdict"] == "conformant"


def test_pytest_pyargs_keeps_the_usage_error_line(kit_only, tmp_path):
    """The same run with a bad --behavior is the launcher's exit 4 with one ERROR line."""
    done = _pyargs(kit_only[0], tmp_path, "-p", "no:warnings", "--behavior", "NOPE")
    assert_one_usage_error(done, "--behavior 'NOPE'")


def test_the_console_script_runs_a_letta_environment_from_any_folder(installed, tmp_path):
    """`kimi-conformance run --python <env> --letta-path <checkout>` from an unrelated folder: the
    suites run (exit 0 on the reference) and the report lands in that folder."""
    build = builds.ensure_build(BUILD)
    done = subprocess.run([str(installed / "bin" / "kimi-conformance"), "run", "--python", str(build.python),
                           "--letta-path", str(build.overlay_dir), "-p", "no:warnings", "-q", NEEDS_MIXED_IDS],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_clean_env())
    assert done.returncode == EXIT_OK, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "reports" / "conformance.json").is_file() and (tmp_path / "reports" / "conformance.md").is_file()


def test_python_dash_m_runs_a_made_build_from_any_folder(installed, tmp_path):
    """`python -m kimi_conformance run --build` with the installed kit and the checkout's builds folder."""
    done = subprocess.run([str(installed / "bin" / "python"), "-m", "kimi_conformance", "run", "--build", BUILD,
                           "-p", "no:warnings", "-q", NEEDS_MIXED_IDS, "--conformance-report", "here.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=_clean_env(KIMI_KIT_BUILDS=str(builds.build_root())))
    assert done.returncode == EXIT_OK, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "here.json").is_file()


def test_the_installed_kit_refuses_a_bad_interpreter_with_one_line(installed, tmp_path):
    """The installed console script keeps the launcher's promises: `--python /bin/true` is exit 4, one line."""
    done = subprocess.run([str(installed / "bin" / "kimi-conformance"), "run", "--python", "/bin/true"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=_clean_env())
    assert_one_usage_error(done, "--python /bin/true")


def test_the_installed_kit_says_selftest_needs_the_checkout(installed, tmp_path):
    """The kit's own tests are not installed: `selftest` says so in one line (exit 4)."""
    done = subprocess.run([str(installed / "bin" / "kimi-conformance"), "selftest"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=_clean_env())
    assert_one_usage_error(done, "selftest needs the kit's checkout")


def test_a_stray_egg_info_registers_the_plugin_once(tmp_path):
    """An egg-info of the kit on the path of a pytest run from the checkout (an old `pip install`
    left one there) loads the plugin by its entry point; the checkout's conftest.py names it the
    same way, so it is registered once and the run is as usual.

    If this fails: the pytest11 entry point's name (pyproject.toml) and conftest.py's
    pytest_plugins differ, and pluggy refuses the second registration."""
    egg = tmp_path / "egg" / "kimi_conformance.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: kimi-conformance\nVersion: 0.0.0\n")
    (egg / "entry_points.txt").write_text("[pytest11]\nkimi_conformance.plugin = kimi_conformance.plugin\n")
    build = builds.ensure_build(BUILD)
    env = _clean_env(PYTHONPATH=os.pathsep.join([*build.pythonpath(), str(egg.parent), str(KIT_ROOT)]))
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    done = subprocess.run([str(build.python), "-m", "pytest", "-p", "no:warnings", "-p", "no:randomly", NEEDS_MIXED_IDS,
                           "--conformance-report", str(tmp_path / "r.json")],
                          cwd=KIT_ROOT, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_OK, output[-3000:]
    assert "kimi-conformance-0.0.0" in output, output[:2000]  # the entry point was loaded
