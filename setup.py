"""Package data of an installed kit: the checkout's layout under <prefix>/share/kimi-conformance.

``pip install <kit>`` installs the ``kimi_conformance`` package (the launcher, the pytest
plugin) and, beside it, the tree the launcher runs pytest in: ``conftest.py``,
``pyproject.toml`` (pytest's settings), ``CONTRACT.md``, ``suites/``, ``cassettes/``,
``fixtures/`` (build recipes, reference provider, variants, defects) and a copy of the
package (put on the build interpreter's PYTHONPATH, so that a Letta environment without the
kit installed runs it). ``kimi_conformance.builds.KIT_ROOT`` finds it.
"""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
INSTALLED_KIT = "share/kimi-conformance"  # = kimi_conformance.builds.INSTALLED_KIT
KIT_TREES = ["kimi_conformance", "suites", "cassettes", "fixtures"]
KIT_FILES = ["conftest.py", "pyproject.toml", "CONTRACT.md", "README.md"]


def kit_data_files() -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {INSTALLED_KIT: [f for f in KIT_FILES if (HERE / f).is_file()]}
    for tree in KIT_TREES:
        for path in sorted((HERE / tree).rglob("*")):
            relative = path.relative_to(HERE)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix not in (".pyc", ".pyo"):
                groups.setdefault(f"{INSTALLED_KIT}/{relative.parent.as_posix()}", []).append(relative.as_posix())
    return sorted(groups.items())


setup(data_files=kit_data_files())
