"""The installed kit's tree: the checkout's layout as the package ``kimi_conformance_kit``.

``pip install <kit>`` installs the ``kimi_conformance`` package (the launcher, the pytest
plugin) and, beside it in site-packages, ``kimi_conformance_kit/``: the tree the launcher runs
pytest in -- ``conftest.py``, ``pyproject.toml`` (pytest's settings), ``CONTRACT.md``,
``suites/``, ``cassettes/``, ``fixtures/`` (build recipes, reference provider, variants, defects)
and a copy of the package (put on the build interpreter's PYTHONPATH, so that a Letta environment
without the kit installed runs it). ``suites`` being a package in it, ``pytest --pyargs
kimi_conformance_kit.suites`` collects it (pytest's "tests as part of application code" layout).
The tree itself has no ``__init__.py``, as in the checkout: pytest puts the tree's folder (not
site-packages) first on ``sys.path`` and the suites import as ``suites.*`` either way.
``kimi_conformance.builds.KIT_ROOT`` finds it. The checkout itself stays as it is.

The build writes nothing into the checkout: setuptools' ``build/`` and ``*.egg-info`` go to a
temporary folder (an egg-info left in the checkout would register the kit's pytest plugin, by
its entry point, for every pytest run from the checkout).
"""

import atexit
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
INSTALLED_KIT = "kimi_conformance_kit"  # = kimi_conformance.builds.INSTALLED_KIT
KIT_TREES = ["kimi_conformance", "suites", "cassettes", "fixtures"]
KIT_FILES = ["conftest.py", "pyproject.toml", "CONTRACT.md", "README.md"]


def kit_files() -> list[str]:
    """The checkout's files the installed tree carries (relative paths)."""
    files = [f for f in KIT_FILES if (HERE / f).is_file()]
    for tree in KIT_TREES:
        for path in sorted((HERE / tree).rglob("*")):
            relative = path.relative_to(HERE)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix not in (".pyc", ".pyo"):
                files.append(relative.as_posix())
    return files


class build_kit_tree(build_py):
    """build_py, plus the checkout's tree copied to ``kimi_conformance_kit/`` in the build folder."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install runs from the checkout itself
            return
        target = Path(self.build_lib) / INSTALLED_KIT
        for relative in kit_files():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / relative, target / relative)


# setuptools' working folders (build/, *.egg-info) outside the checkout; pip's own options on the
# command line (e.g. prepare_metadata's --egg-base) still win.
SCRATCH = tempfile.mkdtemp(prefix="kimi-conformance-build-")
atexit.register(shutil.rmtree, SCRATCH, True)

setup(
    cmdclass={"build_py": build_kit_tree},
    options={"build": {"build_base": f"{SCRATCH}/build"}, "egg_info": {"egg_base": SCRATCH}},
)
