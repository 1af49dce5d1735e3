"""Command line: ``python -m kimi_conformance {run,selftest,build,matrix,report}``.

Standard library only, so that it works on a machine that has nothing but Python:
``run`` makes the build it needs (an embedded default, the reference build) and
runs the suites with that build's interpreter; ``selftest`` runs the kit's own tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kimi_conformance import builds
from kimi_conformance.exitcodes import EXIT_USAGE

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


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kimi_conformance run",
        description="Run the conformance suites against a Letta build. Arguments after the options go to pytest.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--build", help=f"a build target made by the kit (default: {builds.DEFAULT_BUILD}); see `build --list`")
    target.add_argument("--python", help="the interpreter of an environment where your Letta build and the kit's requirements are installed")
    parser.add_argument("--letta-path", help="a fork checkout whose letta/ package is put first on PYTHONPATH (with --python)")
    args, rest = parser.parse_known_args(argv)
    # the suites, unless the user picked some of them (suites/test_list.py::..., suites/...)
    suites = [] if _names_paths_in(rest, "suites") else ["suites"]
    if args.python:
        pythonpath = [str(Path(args.letta_path).resolve())] if args.letta_path else []
        return _exec(args.python, [*suites, *rest], pythonpath)
    if args.letta_path:
        parser.error("--letta-path needs --python (the environment the fork's dependencies are installed in)")
    try:
        build = builds.ensure_build(args.build or builds.DEFAULT_BUILD)
    except builds.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    extra = ["--binding", str(build.binding_file)] if build.binding_file else []
    return _exec(build.python, [*suites, *extra, *rest], build.pythonpath())


def _selftest(argv: list[str]) -> int:
    try:
        build = builds.ensure_build(SELFTEST_BUILD)
    except builds.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    # The kit's own tests run in an environment that has pytest and friends (the 0.11.7
    # build's); they make the other builds they need and run the kit against them.
    tests = [] if _names_paths_in(argv, "tests") else ["tests"]
    # Not the kit's plugin: neither by module nor by its entry point's name (an editable
    # install, e.g. tox -e own-build, leaves kimi_conformance.egg-info in the checkout).
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": _run, "selftest": _selftest, "build": builds.main, "matrix": _matrix, "report": _report,
                "discover": _discover}
    if not argv or argv[0] not in commands:
        print(
            "usage: python -m kimi_conformance {run,selftest,build,matrix,report,discover} ...\n"
            "  run       run the suites against a Letta build (default: the reference build)\n"
            "  selftest  run the kit's own tests\n"
            "  build     make build targets (--list to see them)\n"
            "  matrix    run the suites against every build and check each verdict (the detection score)\n"
            "  report    run the suites with Allure results and render the Allure HTML report\n"
            "  discover  inspect a build for its Kimi implementation and propose a binding (--write FILE)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return commands[argv[0]](argv[1:])
