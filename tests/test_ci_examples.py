"""The fork pipelines in examples/ci/ and the tox environments run commands the kit has.

The workflow files are valid YAML of the expected shape; every ``python -m
kimi_conformance SUB ...`` they (or tox.ini) run names a subcommand of the CLI and only
options that the subcommand or pytest (with the kit's and Allure's plugins) accept; what
they upload is what the run writes, and the summary they post is the Markdown file the
kit writes beside the JSON report.
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kimi_conformance import summary_md

KIT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = KIT_ROOT / "examples" / "ci"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
# pytest parses the command line (loading plugins and conftests), then stops before configuring anything.
PARSE_ONLY = """
import sys, pytest

class ParseOnly:
    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config):
        return 0

sys.exit(pytest.main(sys.argv[1:], plugins=[ParseOnly()]))
"""
TOX_ENVS = {"reference-0.11.7", "reference-0.16.8", "upstream-0.16.8", "build", "own-build", "own-python", "selftest", "report"}


def _help(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=KIT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def subcommands() -> set[str]:
    done = subprocess.run([sys.executable, "-m", "kimi_conformance"], cwd=KIT_ROOT, capture_output=True, text=True, timeout=60)
    return set(re.search(r"\{([a-z,]+)\}", done.stderr).group(1).split(","))


@pytest.fixture(scope="module")
def accepts():
    """``accepts(sub, args)``: the kit's subcommand ``sub`` takes ``args`` (its own options, the rest pytest's).

    The rest goes to pytest in the kit's checkout (the kit's and Allure's plugins loaded),
    stopped right after it parsed its command line (PARSE_ONLY): nothing runs, nothing
    is written, and an unknown option is pytest's usage error.
    """
    own: dict[str, dict[str, bool]] = {}
    checked: dict[tuple, str] = {}

    def own_options(sub: str) -> dict[str, bool]:
        if sub not in own:
            text = _help("-m", "kimi_conformance", sub, "--help")
            own[sub] = {}
            for opt, metavar in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)( [A-Z_]+)?", text):
                own[sub][opt] = own[sub].get(opt, False) or bool(metavar)  # takes a value where its help shows a metavar
        return own[sub]

    def check(sub: str, args: list[str]) -> str:
        """'' when fine, else what is wrong."""
        if sub == "build":
            return "" if all(not a.startswith("-") or a == "--list" for a in args) else f"build takes names or --list: {args}"
        options = {**own_options("run"), **(own_options(sub) if sub == "report" else {})} if sub in ("run", "report") else {}
        rest, skip = [], False
        for arg in args:
            if skip:
                skip = False
            elif arg.split("=", 1)[0] in options:
                skip = options[arg.split("=", 1)[0]] and "=" not in arg
            else:
                rest.append(arg)
        key = tuple(rest)
        if key not in checked:
            done = subprocess.run([sys.executable, "-c", PARSE_ONLY, *rest], cwd=KIT_ROOT, capture_output=True, text=True, timeout=300)
            checked[key] = "" if done.returncode == 0 else f"pytest rejects {rest}: {(done.stdout + done.stderr).strip()[-500:]}"
        return checked[key]

    return check


def kit_invocations(script: str) -> list[list[str]]:
    """The arguments after ``-m kimi_conformance`` of each command line in a shell script."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        for command in re.split(r"&&|\|\||;", line):
            try:
                words = shlex.split(command, comments=True)
            except ValueError:
                continue
            for i in range(len(words) - 1):
                if words[i] == "-m" and words[i + 1] == "kimi_conformance":
                    found.append(words[i + 2 :])
    return found


def option_value(args: list[str], option: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def github_scripts(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def gitlab_scripts(job: dict) -> list[str]:
    return [line for key in ("before_script", "script", "after_script") for line in job.get(key, [])]


def workspace_relative(path: str) -> str:
    """``$GITHUB_WORKSPACE/reports/x`` / ``$REPORTS/x`` / ``$CI_PROJECT_DIR/reports/x`` -> ``reports/x``."""
    return re.sub(r"^\$\{?(REPORTS)\}?", "reports", re.sub(r"^\$\{?(GITHUB_WORKSPACE|CI_PROJECT_DIR)\}?/", "", path))


@pytest.fixture(scope="module")
def github() -> dict:
    return yaml.safe_load(GITHUB.read_text())


@pytest.fixture(scope="module")
def gitlab() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def check_invocations(scripts: list[str], subcommands: set[str], accepts, where: str) -> list[list[str]]:
    calls = [args for script in scripts for args in kit_invocations(script)]
    assert calls, f"{where} never runs the kit"
    for args in calls:
        assert args and args[0] in subcommands, f"{where}: unknown subcommand in: kimi_conformance {' '.join(args)}"
        problem = accepts(args[0], args[1:])
        assert not problem, f"{where}: kimi_conformance {args[0]}: {problem}"
    return calls


def test_the_github_workflow_is_valid_and_runs_kit_commands(github, subcommands, accepts):
    """Triggers, one job, the kit run with JUnit and Allure output, and everything it runs exists."""
    assert {"pull_request", "push"} <= set(github.get("on") or github.get(True))
    assert github["permissions"]["pull-requests"] == "write"
    [job] = github["jobs"].values()
    uses = [step.get("uses", "") for step in job["steps"]]
    assert sum(u.startswith("actions/checkout@") for u in uses) == 2, "the fork and the kit are checked out"
    calls = check_invocations(github_scripts(github), subcommands, accepts, GITHUB.name)
    [run] = [args for args in calls if args[0] == "run"]
    assert option_value(run, "--python"), "the kit runs with the environment the fork is installed in"
    uploaded = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))["with"]["path"].split()
    for option in ("--junitxml", "--alluredir"):
        assert workspace_relative(option_value(run, option)).rstrip("/") in [p.rstrip("/") for p in uploaded], option
    summary = summary_md.path_for(Path(workspace_relative(option_value(run, "--conformance-report")))).as_posix()
    assert any(f"--body-file {summary}" in script for script in github_scripts(github)), "the PR comment is the Markdown summary"
    assert any(f"{summary} >> \"$GITHUB_STEP_SUMMARY\"" in script for script in github_scripts(github))


def test_the_gitlab_job_is_valid_and_runs_kit_commands(gitlab, subcommands, accepts):
    """One job: the kit run with JUnit and Allure output kept as artifacts, the summary posted as a note."""
    [job] = [value for value in gitlab.values() if isinstance(value, dict) and "script" in value]
    calls = check_invocations(gitlab_scripts(job), subcommands, accepts, GITLAB.name)
    [run] = [args for args in calls if args[0] == "run"]
    assert option_value(run, "--python")
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert workspace_relative(option_value(run, "--junitxml")) == artifacts["reports"]["junit"]
    assert workspace_relative(option_value(run, "--alluredir")).rstrip("/") in [p.rstrip("/") for p in artifacts["paths"]]
    summary = summary_md.path_for(Path(workspace_relative(option_value(run, "--conformance-report")))).as_posix()
    assert summary in artifacts["paths"]
    assert any(f"body@{summary}" in line for line in job["after_script"])


def test_every_tox_environment_runs_a_kit_command(subcommands, accepts):
    """tox.ini has an environment per build target, the user's own build, the self-test and the report."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(KIT_ROOT / "tox.ini")
    envs = {section.split(":", 1)[1]: ini[section] for section in ini.sections() if section.startswith("testenv:")}
    assert TOX_ENVS <= set(envs)
    for name, section in envs.items():
        commands = section.get("commands", ini["testenv"]["commands"])
        # tox substitutions: {posargs:DEFAULT} -> DEFAULT, any other {...} -> a placeholder value
        commands = re.sub(r"\{[^}]*\}", "X", re.sub(r"\{posargs:([^}]*)\}", r"\1", commands))
        check_invocations([commands], subcommands, accepts, f"tox -e {name}")
    assert "report" in envs["report"]["commands"].split()
