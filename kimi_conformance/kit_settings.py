"""The kit's pytest settings for a run that did not read them: ``pytest --pyargs kimi_conformance_kit.suites``.

pytest finds its configuration file from the command line's paths and the current folder; a
``--pyargs`` run from another folder reads that folder's settings (or none), not the installed
tree's ``pyproject.toml``. The suites need the tree's pytest-asyncio settings (auto mode, one
event loop for the session) and its warning filters: this module (a plugin the kit's plugin loads,
by its entry point, before any conftest) applies them from that file when the run names the
installed tree. A run from
the checkout or through the launcher reads them as usual (nothing to do).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kimi_conformance.builds import INSTALLED_KIT, KIT_ROOT
# settings the suites cannot run without (the rest of [tool.pytest.ini_options] only saves time)
NEEDED = ("asyncio_mode", "asyncio_default_fixture_loop_scope", "asyncio_default_test_loop_scope")


def names_the_installed_tree(config: pytest.Config) -> bool:
    """``--pyargs kimi_conformance_kit[.suites[.module]][::test]``."""
    return bool(config.option.pyargs) and any(
        str(arg).split("::", 1)[0].split(".", 1)[0] == INSTALLED_KIT for arg in config.args)


def apply(config: pytest.Config) -> None:
    """Give a ``--pyargs`` run of the installed tree the tree's NEEDED settings and warning filters."""
    if not names_the_installed_tree(config):
        return
    pyproject = KIT_ROOT / "pyproject.toml"
    if config.inipath is not None and Path(config.inipath).resolve() == pyproject.resolve():
        return
    settings = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    for name in NEEDED:
        # pytest has no public setter for a configuration value; getini() answers from this cache first
        config._inicache[name] = settings[name]
    for line in settings.get("filterwarnings", []):
        config.addinivalue_line("filterwarnings", line)


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio reads its settings
def pytest_configure(config: pytest.Config) -> None:
    apply(config)
