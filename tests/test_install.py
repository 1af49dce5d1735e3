"""The kit as a tool people install: `pip install <kit>` into a fresh virtualenv, then run from any folder.

The installed kit carries its suites, cassettes, CONTRACT.md and build recipes (under
<prefix>/share/kimi-conformance); `kimi-conformance run --python <a Letta environment>` and
`python -m kimi_conformance run` work from a folder that has nothing to do with the kit, and
write their report there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kit_cli import BUILD, KIT_ROOT, NEEDS_MIXED_IDS, assert_one_usage_error

from kimi_conformance import builds
from kimi_conformance.exitcodes import EXIT_OK

SHIPPED = ["suites", "cassettes", "fixtures", "kimi_conformance"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the kit pip-installed from this checkout (PyPI for its requirements)."""
    venv = tmp_path_factory.mktemp("venv") / "kit"
    # pip builds in the source tree (egg-info, build/): a copy, so the checkout stays as it is
    source = tmp_path_factory.mktemp("source") / "kit"
    shutil.copytree(KIT_ROOT, source, ignore=shutil.ignore_patterns(".builds", "reports", ".git", ".tox", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "KIMI_KIT_BUILDS")}
    return {**env, **extra}


def _files(root: Path, trees: list[str]) -> set[str]:
    return {str(p.relative_to(root)) for tree in trees for p in (root / tree).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_installed_kit_carries_suites_cassettes_contract_and_recipes(installed):
    """Every file of the checkout's suites/, cassettes/, fixtures/ and the package, plus CONTRACT.md and
    the pytest settings, is in the installed kit.

    If this fails: setup.py's KIT_TREES / KIT_FILES miss a folder or file the launcher needs."""
    share = installed / "share" / "kimi-conformance"
    assert _files(share, SHIPPED) == _files(KIT_ROOT, SHIPPED)
    for name in ("conftest.py", "pyproject.toml", "CONTRACT.md"):
        assert (share / name).read_bytes() == (KIT_ROOT / name).read_bytes(), name


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
