"""Command line: ``python -m kimi_conformance {run,selftest,build,matrix,report}``.

Standard library only, so that it works on a machine that has nothing but Python:
``run`` makes the build it needs (an embedded default, the reference build) and
runs the suites with that build's interpreter; ``selftest`` runs the kit's own tests.

Before any test, ``run`` checks what is not the build's Kimi code -- options, paths (resolved
against the caller's folder), the interpreter, pytest and Letta being there -- and says what is
wrong in one line, exit 4 (exitcodes.py), so that exit 1 always means a broken promise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kimi_conformance import builds, exitcodes
from kimi_conformance.exitcodes import EXIT_OK, EXIT_USAGE
from kimi_conformance.inputs import InputError, check_report_path, nonnegative_number

KIT_ROOT = builds.KIT_ROOT
SELFTEST_BUILD = "reference-0.11.7"


# The suites' plugins are registered by kimi_conformance.suite_plugins, with pytest's
# entry-point autoload off (it reads the metadata of every distribution of a Letta
# environment, ~250: about a second per run). KIMI_KIT_PLUGIN_AUTOLOAD=1 (or a
# PYTEST_DISABLE_PLUGIN_AUTOLOAD of your own) keeps pytest's autoload.
def suite_invocation(python: Path | str, args: list[str], pythonpath: list[str], suites: bool = True) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run pytest in a build's environment (on the suites,
    with their plugins registered by name; else, for the kit's own tests, with pytest's autoload)."""
    # a new pytest session: not the xdist worker or the test the launcher may be called from
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_") and k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, str(KIT_ROOT)])
    plugins: list[str] = []
    if suites and env.get("KIMI_KIT_PLUGIN_AUTOLOAD") != "1" and "PYTEST_DISABLE_PLUGIN_AUTOLOAD" not in env:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugins = ["-p", "kimi_conformance.suite_plugins"]
    return [str(python), "-m", "pytest", *plugins, *args], env


class LauncherError(Exception):
    """Something that is not the build's Kimi code is wrong; the message is the one line said (exit 4)."""


class KitArgumentParser(argparse.ArgumentParser):
    """argparse, with a bad option being the kit's usage error (exit 4, one line), not argparse's 2."""

    def error(self, message: str):
        raise LauncherError(f"{self.prog}: {message} (see --help)")


def _exec(python: Path | str, args: list[str], pythonpath: list[str], suites: bool = True) -> int:
    cmd, env = suite_invocation(python, args, pythonpath, suites)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(KIT_ROOT)
    os.execve(str(python), cmd, env)


# pytest options whose next argument is a value, not a test path
_VALUE_OPTIONS = {"--deselect", "--ignore", "--ignore-glob", "-k", "-m", "-p", "-n", "--junitxml", "--alluredir",
                  "--conformance-report", "--cassette-dir", "--binding", "--rootdir", "-c", "--basetemp"}


def _names_paths_in(args: list[str], folder: str) -> bool:
    """Whether the pytest arguments name test paths in ``folder`` (then the folder is not added)."""
    for previous, arg in zip([None, *args], args):
        if previous in _VALUE_OPTIONS or arg.startswith("-"):
            continue
        if arg == folder or arg.startswith((folder + "/", folder + "\\")):
            return True
    return False


# pytest and kit options whose value is a path the user typed (resolved against the caller's folder)
_PATH_OPTIONS = {"--binding", "--cassette-dir", "--conformance-report", "--junitxml", "--junit-xml", "--alluredir",
                 "--basetemp", "--rootdir", "-c", "--confcutdir", "--log-file", "--rest-workdir"}
# numeric kit options: finite, 0 or more (name -> whole number?)
_NUMERIC_OPTIONS = {"--live-retries": True, "--live-max-wait": False, "--rest-startup-timeout": False}
DEFAULT_REPORT = Path("reports") / "conformance.json"


def _option_values(args: list[str]):
    """(index, option, value, joined) for each ``--opt value`` / ``--opt=value`` in the pytest arguments."""
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if eq and name.startswith("--"):
            yield i, name, value, True
        elif i + 1 < len(args) and arg.startswith("-"):
            yield i, arg, args[i + 1], False


def resolve_user_paths(args: list[str], caller: Path) -> list[str]:
    """The pytest arguments with every path option's value made absolute against ``caller``
    (the launcher runs pytest from the kit's folder), and numeric options checked."""
    out = list(args)
    for i, name, value, joined in _option_values(args):
        if name in _NUMERIC_OPTIONS:
            try:
                nonnegative_number(name, value, integer=_NUMERIC_OPTIONS[name])
            except InputError as e:
                raise LauncherError(str(e)) from None
        if name not in _PATH_OPTIONS:
            continue
        if not value:
            raise LauncherError(f"{name} needs a path")
        absolute = str(caller / Path(value).expanduser())
        if joined:
            out[i] = f"{name}={absolute}"
        else:
            out[i + 1] = absolute
    return out


def report_path_in(args: list[str]) -> Path | None:
    found = None
    for _, name, value, _ in _option_values(args):
        if name == "--conformance-report":
            found = Path(value)
    return found


def _check_python(python: str, caller: Path) -> Path:
    """The interpreter ``--python`` names: a file that can be run (a bare name is looked up on PATH)."""
    if os.sep not in python and "/" not in python:
        found = shutil.which(python)
        if not found:
            raise LauncherError(f"--python {python}: no such interpreter on PATH")
        return Path(found)
    path = caller / Path(python).expanduser()
    if not path.exists():
        raise LauncherError(f"--python {python}: no such file ({path})")
    if path.is_dir():
        raise LauncherError(f"--python {python}: is a folder; give the interpreter, e.g. {path / 'bin' / 'python'}")
    if not os.access(path, os.X_OK):
        raise LauncherError(f"--python {python}: not executable ({path})")
    return path


def _check_letta_path(letta_path: str, caller: Path) -> Path:
    """A fork checkout: the folder that contains the ``letta/`` package (not the package itself)."""
    path = (caller / Path(letta_path).expanduser()).resolve()
    if not path.is_dir():
        raise LauncherError(f"--letta-path {letta_path}: no such folder ({path})")
    if (path / "letta" / "__init__.py").is_file():
        return path
    if path.name == "letta" and (path / "__init__.py").is_file():
        raise LauncherError(f"--letta-path {letta_path}: is the letta/ package itself; give the checkout that contains it: {path.parent}")
    raise LauncherError(f"--letta-path {letta_path}: {path} has no letta/ package (letta/__init__.py); give your fork's checkout")


# What the target interpreter must have, checked without importing anything heavy (find_spec).
_PROBE = r"""
import importlib.util, sys
need = {"pytest": "pytest", "pytest_asyncio": "pytest-asyncio", "xdist": "pytest-xdist", "respx": "respx",
        "vcr": "vcrpy", "yaml": "PyYAML", "httpx": "httpx", "allure_pytest": "allure-pytest", "kimi_conformance": "kimi-conformance"}
missing = []
for module, dist in need.items():
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        missing.append(dist)
try:
    letta = importlib.util.find_spec("letta") is not None
except (ImportError, ValueError):
    letta = False
print("KIMI-KIT-PROBE", "%d.%d" % sys.version_info[:2], int(letta), ",".join(missing))
"""


def check_interpreter(python: Path, pythonpath: list[str], shown: str) -> None:
    """The interpreter runs Python >= 3.11 and has pytest, the kit's requirements and a letta package."""
    _, env = suite_invocation(python, [], pythonpath)
    home = tempfile.mkdtemp(prefix="kimi-kit-probe-")
    try:
        done = subprocess.run([str(python), "-c", _PROBE], env={**env, "HOME": home}, capture_output=True, text=True, timeout=120,
                              cwd=home, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LauncherError(f"{shown}: cannot be run as a Python interpreter ({getattr(e, 'strerror', None) or e})") from None
    finally:
        shutil.rmtree(home, ignore_errors=True)
    lines = [line.split(" ") for line in done.stdout.splitlines() if line.startswith("KIMI-KIT-PROBE ")]
    if done.returncode != 0 or not lines or len(lines[-1]) != 4:
        said = (done.stderr.strip().splitlines() or ["it printed nothing the kit understands"])[-1]
        raise LauncherError(f"{shown}: not a usable Python interpreter (exit {done.returncode}; {said})")
    _, version, has_letta, missing = lines[-1]
    if tuple(int(p) for p in version.split(".")) < (3, 11):
        raise LauncherError(f"{shown}: Python {version}; the kit needs Python 3.11 or newer")
    if missing:
        raise LauncherError(f"{shown}: this environment lacks the kit's requirements: {missing.replace(',', ', ')} "
                            "(install the kit into it: pip install kimi-conformance, or pip install <kit checkout>)")
    if has_letta != "1":
        raise LauncherError(f"{shown}: Letta is not installed in this environment (pip install letta, or --letta-path <your fork's checkout>)")


def _run(argv: list[str]) -> int:
    parser = KitArgumentParser(
        prog="python -m kimi_conformance run",
        description="Run the conformance suites against a Letta build. Arguments after the options go to pytest. "
                    "Exit codes:\n" + exitcodes.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--build", help=f"a build target made by the kit (default: {builds.DEFAULT_BUILD}); see `build --list`")
    target.add_argument("--python", help="the interpreter of an environment where your Letta build and the kit's requirements are installed")
    parser.add_argument("--letta-path", help="a fork checkout (the folder containing letta/) put first on PYTHONPATH (with --python)")
    args, rest = parser.parse_known_args(argv)
    caller = Path.cwd()
    rest = resolve_user_paths(rest, caller)
    report = report_path_in(rest)
    if report is None:  # the default report lies in the caller's folder, not the kit's
        report = caller / DEFAULT_REPORT
        rest = ["--conformance-report", str(report), *rest]
    try:
        check_report_path(report)
    except InputError as e:
        raise LauncherError(str(e)) from None
    # the suites, unless the user picked some of them (suites/test_list.py::..., suites/...)
    suites = [] if _names_paths_in(rest, "suites") else ["suites"]
    if args.python:
        python = _check_python(args.python, caller)
        pythonpath = [str(_check_letta_path(args.letta_path, caller))] if args.letta_path else []
        check_interpreter(python, pythonpath, f"--python {args.python}")
        return _exec(python, [*suites, *rest], pythonpath)
    if args.letta_path:
        parser.error("--letta-path needs --python (the environment the fork's dependencies are installed in)")
    try:
        build = builds.ensure_build(args.build or builds.DEFAULT_BUILD)
    except builds.BuildError as e:
        raise LauncherError(str(e)) from None
    extra = ["--binding", str(build.binding_file)] if build.binding_file else []
    return _exec(build.python, [*suites, *extra, *rest], build.pythonpath())


def _chooses_workers(args: list[str]) -> bool:
    return any(a.startswith(("-n", "--numprocesses", "--dist")) or a.endswith("no:xdist") for a in args)


def _selftest(argv: list[str]) -> int:
    if not (KIT_ROOT / "tests").is_dir():
        raise LauncherError(f"selftest needs the kit's checkout: the kit's own tests are not installed ({KIT_ROOT} has no tests/)")
    try:
        build = builds.ensure_build(SELFTEST_BUILD)
    except builds.BuildError as e:
        raise LauncherError(str(e)) from None
    # The kit's own tests run in an environment that has pytest and friends (the 0.11.7
    # build's); they make the other builds they need and run the kit against them.
    tests = [] if _names_paths_in(argv, "tests") else ["tests"]
    # The whole self-test in two xdist workers, one test file at a time each (the verdict
    # matrix's file in one, the files that run the launcher in the other); a -n, --dist or
    # -p no:xdist of the caller's wins.
    workers = ["-n", "2", "--dist", "loadfile"] if tests and not _chooses_workers(argv) else []
    tests = [*tests, *workers]
    # Not the kit's plugin: neither by module nor by its entry point's name (an editable
    # install made before the build moved out of the checkout may have left kimi_conformance.egg-info there).
    return _exec(build.python, [*tests, "-p", "no:kimi_conformance", "-p", "no:kimi_conformance.plugin", *argv], [], suites=False)


def _matrix(argv: list[str]) -> int:
    from kimi_conformance import matrix

    return matrix.main(argv)


def _report(argv: list[str]) -> int:
    from kimi_conformance import html_report

    return html_report.main(argv)


def _discover(argv: list[str]) -> int:
    from kimi_conformance import discover

    return discover.main(argv)


USAGE = (
    "usage: kimi-conformance {run,selftest,build,matrix,report,discover} ...  (or python -m kimi_conformance ...)\n"
    "  run       run the suites against a Letta build (default: the reference build)\n"
    "  selftest  run the kit's own tests\n"
    "  build     make build targets (--list to see them)\n"
    "  matrix    run the suites against every build and check each verdict (the detection score)\n"
    "  report    run the suites with Allure results and render the Allure HTML report\n"
    "  discover  inspect a build for its Kimi implementation and propose a binding (--write FILE)\n"
    "exit codes:\n"
)


def commands() -> dict:
    """Subcommand name -> function(argv) -> exit code (a new subcommand is one more entry)."""
    return {"run": _run, "selftest": _selftest, "build": builds.main, "matrix": _matrix, "report": _report, "discover": _discover}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    table = commands()
    if argv[:1] in (["-h"], ["--help"], ["help"]):
        print(USAGE + exitcodes.describe())
        return EXIT_OK
    if not argv or argv[0] not in table:
        said = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"ERROR: {said}\n{USAGE}{exitcodes.describe()}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return table[argv[0]](argv[1:])
    except LauncherError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # argparse's --help (0); anything else from a subcommand's parser is a usage error
        return EXIT_OK if e.code in (0, None) else (e.code if isinstance(e.code, int) and e.code != 2 else EXIT_USAGE)
