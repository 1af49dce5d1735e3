"""Exit codes a CI can trust: 1 means the build's Kimi code broke a promise, and only that.

Everything else -- a bad option or path, no interpreter, an interpreter without pytest or
Letta, Letta's own dependencies missing, an unusable builds folder -- is exit 4 before any
test, with one line naming it, and leaves the previous report and the cassettes as they
were. Most cases are refused by the launcher before any build is made or Letta imported.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from kit_cli import BUILD, KIT_ROOT, NEEDS_MIXED_IDS, PREVIOUS_REPORT, assert_one_usage_error, kit, tree_digest
from kit_cli import previous_report  # noqa: F401 (a fixture, shared)

from kimi_conformance.exitcodes import EXIT_OK, EXIT_USAGE, TABLE


@pytest.fixture
def unchanged(previous_report):
    """After the test: the previous report and the kit's cassettes are as they were."""
    before = tree_digest(KIT_ROOT / "cassettes")
    yield previous_report
    assert previous_report.read_text() == PREVIOUS_REPORT
    assert tree_digest(KIT_ROOT / "cassettes") == before


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def python_without_pytest(tmp_path: Path) -> Path:
    """An interpreter that starts but sees no site-packages (so no pytest)."""
    return script(tmp_path / "python-bare", f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')


def python_without(tmp_path: Path, distribution: str) -> Path:
    """This environment's interpreter with every installed distribution but one."""
    import sysconfig

    shadow = tmp_path / f"site-packages-without-{distribution}"
    shadow.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(distribution):
            (shadow / entry.name).symlink_to(entry)
    return script(tmp_path / f"python-no-{distribution}", f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{shadow}" exec {sys.executable} -S "$@"\n')


def python_without_letta(tmp_path: Path) -> Path:
    return python_without(tmp_path, "letta")


def fake_letta_checkout(tmp_path: Path, server_source: str) -> Path:
    """A fork checkout whose letta/ imports, but whose server module runs ``server_source``."""
    checkout = tmp_path / "fork"
    (checkout / "letta" / "server").mkdir(parents=True)
    (checkout / "letta" / "__init__.py").write_text('__version__ = "0.16.8"\n')
    (checkout / "letta" / "server" / "__init__.py").write_text("")
    (checkout / "letta" / "server" / "server.py").write_text(server_source)
    return checkout


# case -> (launcher arguments after `run`, what the one line says); {tmp} is the test's folder
LAUNCHER_CASES = {
    "python-missing": (["--python", "/nonexistent/python"], ["--python /nonexistent/python", "no such file"]),
    "python-is-not-python": (["--python", "/bin/true"], ["--python /bin/true", "not a usable Python interpreter"]),
    "python-is-a-folder": (["--python", "{tmp}"], ["is a folder"]),
    "letta-path-missing": (["--python", sys.executable, "--letta-path", "/no/such/dir"], ["--letta-path /no/such/dir", "no such folder"]),
    "letta-path-is-the-package": (["--python", sys.executable, "--letta-path", "{tmp}/fork/letta"],
                                  ["is the letta/ package itself", "give the checkout that contains it: {tmp}/fork"]),
    "letta-path-without-letta": (["--python", sys.executable, "--letta-path", "{tmp}"], ["has no letta/ package"]),
    "letta-path-without-python": (["--letta-path", "{tmp}/fork"], ["--letta-path needs --python"]),
    "unknown-build": (["--build", "nope"], ["unknown build 'nope'", "build --list"]),
    "build-and-python": (["--build", BUILD, "--python", sys.executable], ["not allowed with argument"]),
    "option-without-value": (["--build"], ["expected one argument"]),
    "max-wait-nan": (["--build", BUILD, "--live-max-wait", "nan"], ["--live-max-wait 'nan'", "finite"]),
    "retries-negative": (["--build", BUILD, "--live-retries=-1"], ["--live-retries '-1'", "0 or more"]),
    "startup-timeout-inf": (["--build", BUILD, "--rest-startup-timeout", "inf"], ["--rest-startup-timeout 'inf'", "finite"]),
    "report-is-markdown": (["--build", BUILD, "--conformance-report", "{tmp}/out.md"], ["out.md", "would overwrite it"]),
    "report-is-a-folder": (["--build", BUILD, "--conformance-report", "{tmp}"], ["it is a directory", "--conformance-report"]),
    "summary-is-a-folder": (["--build", BUILD, "--conformance-report", "{tmp}/fork.json"], ["Markdown summary", "it is a directory"]),
}


@pytest.mark.parametrize("case", list(LAUNCHER_CASES))
def test_the_launcher_refuses_bad_options_and_paths_with_one_line(tmp_path, unchanged, case):
    """A bad option, path or interpreter: exit 4 and one line naming it, before any build or test.

    If this fails: the launcher (kimi_conformance/cli.py) must check the option before it execs
    pytest, and say what is wrong in one ERROR line (never exit 1, 2 or a traceback)."""
    fake_letta_checkout(tmp_path, "")
    (tmp_path / "fork.md").mkdir()
    args, says = LAUNCHER_CASES[case]
    fill = lambda text: text.replace("{tmp}", str(tmp_path))  # noqa: E731
    if not any(a.startswith("--conformance-report") for a in args):
        args = [*args, "--conformance-report", str(unchanged)]
    done = kit("run", *map(fill, args), cwd=tmp_path)
    assert_one_usage_error(done, *map(fill, says))


@pytest.mark.parametrize("make, says", [(python_without_pytest, "lacks the kit's requirements: pytest"),
                                        (python_without_letta, "Letta is not installed in this environment")])
def test_an_interpreter_without_pytest_or_letta_is_refused(tmp_path, unchanged, make, says):
    """`--python` naming an environment without pytest (or without Letta): exit 4, one line, no test.

    If this fails: probe the interpreter (find_spec, no import) before running pytest in it."""
    python = make(tmp_path)
    done = kit("run", "--python", str(python), "--conformance-report", str(unchanged), cwd=tmp_path)
    assert_one_usage_error(done, f"--python {python}", says)


def test_a_dependency_letta_itself_lacks_is_the_environments_fault(tmp_path, unchanged):
    """Letta's server needs a module this environment lacks (0.16 without the `postgres` extra): exit 4,
    one line naming the module and the extra, no test.

    If this fails: the controller must import the build's server module before any test and
    classify a missing third-party module as the environment's problem."""
    fork = fake_letta_checkout(tmp_path, "import asyncpg\n")
    done = kit("run", "--python", sys.executable, "--letta-path", str(fork), "--conformance-report", str(unchanged),
               "-p", "no:warnings", cwd=tmp_path)
    assert_one_usage_error(done, "Letta's server cannot be imported in this environment: No module named 'asyncpg'",
                           "(Letta 0.16 needs the `postgres` extra")


def test_an_inherited_database_variable_is_held_back_and_named(tmp_path):
    """LETTA_PG_URI in the user's shell: the replay run still judges the build (Letta on a private
    SQLite, not the user's database or a driver this environment lacks), and the header names it."""
    done = kit("run", "--build", BUILD, "-p", "no:warnings", NEEDS_MIXED_IDS, "--conformance-report", str(tmp_path / "r.json"),
               env={"LETTA_PG_URI": "postgresql://user:hunter2@db.invalid/letta"})
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_OK, output[-3000:]
    assert "LETTA_PG_URI from the environment held back" in output
    assert "hunter2" not in output, "a database URL may hold a password: named, never shown"


def test_plain_pytest_without_the_kits_requirements_is_one_line(tmp_path, unchanged):
    """`pytest --live` in the kit's checkout with an interpreter that lacks respx: exit 4 and one line
    naming the missing module, not a 30-line traceback.

    If this fails: the top-level conftest.py must turn the plugin's ImportError into the usage error."""
    import subprocess

    python = python_without(tmp_path, "respx")
    done = subprocess.run([str(python), "-m", "pytest", "--live", "-p", "no:cacheprovider"],
                          cwd=KIT_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(KIT_ROOT)})
    assert_one_usage_error(done, "lacks the kit's requirements", "No module named 'respx'")


def test_a_broken_module_of_the_build_itself_is_not_an_environment_error(tmp_path, previous_report):
    """The server fails importing a letta.* module (the build's own code): judged by the suites, not exit 4."""
    fork = fake_letta_checkout(tmp_path, "from letta.schemas.providers.kimi import KimiProvider\n")
    done = kit("run", "--python", sys.executable, "--letta-path", str(fork), "--conformance-report", str(previous_report),
               "-p", "no:warnings", "-q", cwd=tmp_path)
    assert done.returncode != EXIT_USAGE, (done.stdout + done.stderr)[-3000:]
    assert "cannot be imported in this environment" not in done.stdout + done.stderr


def test_an_unusable_builds_folder_is_named(tmp_path, unchanged):
    """KIMI_KIT_BUILDS where no build can be made: exit 4, one line naming the variable and folder."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = kit("run", "--build", BUILD, "--conformance-report", str(unchanged), env={"KIMI_KIT_BUILDS": str(blocker / "builds")})
    assert_one_usage_error(done, "KIMI_KIT_BUILDS", str(blocker / "builds"))


def test_build_and_run_agree_on_an_unknown_build(unchanged):
    """`build nope` and `run --build nope` give the same exit code (4) and the same line."""
    built, ran = kit("build", "nope"), kit("run", "--build", "nope", "--conformance-report", str(unchanged))
    assert assert_one_usage_error(built, "nope") == assert_one_usage_error(ran, "nope")


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["run", "--help"], ["build", "--help"]])
def test_help_exits_0_and_shows_the_exit_codes(args, tmp_path):
    """`--help` is not an error: exit 0, and the top-level help lists every exit code."""
    done = kit(*args, cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    if args[0] != "build":
        assert all(meaning in done.stdout for meaning in TABLE.values()), done.stdout


@pytest.mark.parametrize("args", [[], ["nope"]])
def test_no_or_an_unknown_command_is_a_usage_error(args):
    """`kimi-conformance` alone or with an unknown command: exit 4, one line, the usage."""
    done = kit(*args)
    assert_one_usage_error(done, "command")
    assert "usage:" in done.stderr


def test_relative_paths_are_the_callers(tmp_path):
    """`--conformance-report` and `--cassette-dir` typed relative to the caller's folder are read there
    (not in the kit's folder the launcher runs pytest from)."""
    caller = tmp_path / "caller"
    (caller / "mine").mkdir(parents=True)
    done = kit("run", "--build", BUILD, "-p", "no:warnings", "-q", NEEDS_MIXED_IDS,
               "--conformance-report", "out/conformance.json", "--cassette-dir", "mine", cwd=caller)
    assert_one_usage_error(done, str(caller / "mine"), "holds no cassettes")
    done = kit("run", "--build", BUILD, "-p", "no:warnings", "-q", NEEDS_MIXED_IDS, "--conformance-report", "out/conformance.json", cwd=caller)
    assert done.returncode == EXIT_OK, (done.stdout + done.stderr)[-3000:]
    assert (caller / "out" / "conformance.json").is_file() and (caller / "out" / "conformance.md").is_file()
    assert not (KIT_ROOT / "out").exists()


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """One small run from a caller's folder, without `--conformance-report`, with a TMPDIR of its own
    (caller folder, TMPDIR, result): the two tests below read it (one Letta import, not two)."""
    caller, private_tmp = tmp_path_factory.mktemp("caller"), tmp_path_factory.mktemp("tmpdir")
    return caller, private_tmp, kit("run", "--build", BUILD, "-p", "no:warnings", "-q", NEEDS_MIXED_IDS, cwd=caller,
                                    env={"TMPDIR": str(private_tmp)})


def test_the_default_report_lands_in_the_callers_folder(plain_run):
    """No `--conformance-report`: reports/conformance.json in the folder the user ran the kit from; and the
    run's first lines are the kit's, not Letta's start-up log ("Database throttling is disabled").

    If this fails: the controller's import of letta.server.server (plugin.check_letta_server) lets
    Letta's INFO lines through its console handler."""
    caller, _, done = plain_run
    assert done.returncode == EXIT_OK, (done.stdout + done.stderr)[-3000:]
    assert (caller / "reports" / "conformance.json").is_file()
    first = done.stdout.splitlines()[:5] + done.stderr.splitlines()[:5]
    assert not [line for line in first if "Database throttling" in line or " - INFO - " in line], first


def test_a_run_leaves_nothing_in_tmpdir(plain_run):
    """The private HOME (and the probe's) are gone after the run, even though libraries write into
    the HOME they saw from their own exit handlers."""
    _, private_tmp, done = plain_run
    assert done.returncode == EXIT_OK, (done.stdout + done.stderr)[-3000:]
    assert sorted(os.listdir(private_tmp)) == []


# -- interrupted and failing builds ------------------------------------------------------


def test_a_signal_ends_the_build_tools_process_group(tmp_path):
    """SIGTERM to a launcher running a build tool ends the tool and every process it started
    (uv's and compileall's workers are not orphaned).

    If this fails: builds._run must start the tool in its own session and kill its group on a signal."""
    import signal
    import subprocess

    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    code = ("from kimi_conformance import builds; "
            f"builds._run(['sh', '-c', 'sleep 300 & echo $! > {fifo}; wait'])")
    launcher = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(KIT_ROOT)})
    with open(fifo) as f:  # blocks until the tool's worker started
        worker = int(f.read().strip())
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) == -signal.SIGTERM
    assert _ends_within(worker, seconds=10), f"the build tool's worker {worker} outlived the launcher"


def _ends_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` is gone or a zombie (killed; init reaps it) within ``seconds``: the kill was sent
    before the launcher died, this only waits for the kernel to carry it out."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_stale_overlay_trees_of_dead_launchers_are_swept(tmp_path):
    """`.NAME.PID.new/.old` trees of a launcher that is gone are removed; a live launcher's are kept."""
    import subprocess

    from kimi_conformance import builds

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    for name in (f".reference-0.11.7.{dead}.new", f".reference-0.11.7.{dead}.old", f".reference-0.11.7.{os.getpid()}.new"):
        (tmp_path / name / "letta").mkdir(parents=True)
    builds.sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".reference-0.11.7.{os.getpid()}.new"]


def test_a_failed_removal_is_a_clean_build_error(tmp_path, monkeypatch):
    """A tree the build must replace cannot be removed: a BuildError naming it (exit 4), no traceback."""
    from kimi_conformance import builds

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    (tmp_path / "env").mkdir()
    monkeypatch.setattr(builds.shutil, "rmtree", refuse)
    with pytest.raises(builds.BuildError, match="cannot remove .*env.*Permission denied"):
        builds._remove_tree(tmp_path / "env")


# -- progress ---------------------------------------------------------------------------


def test_a_launcher_waiting_on_another_build_says_so(tmp_path):
    """While another kit process holds a build's lock, a second one says it is waiting (and on what),
    then goes on when the lock is released."""
    import fcntl
    import subprocess

    code = "from kimi_conformance import builds\nwith builds._locked('env-0.11.7'):\n    print('made', flush=True)\n"
    env = {**os.environ, "PYTHONPATH": str(KIT_ROOT), "KIMI_KIT_BUILDS": str(tmp_path)}
    with open(tmp_path / ".lock-env-0.11.7", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        said = waiting.stderr.readline()  # blocks until the second launcher speaks
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = waiting.communicate(timeout=60)
    assert "waiting for another kit process that is making env-0.11.7" in said
    assert waiting.returncode == 0 and out == "made\n", err


def test_build_steps_are_numbered_and_timed(capsys):
    """Each build step is said when it starts ([k/N] name ...) and when it ends, with its time and the total."""
    from kimi_conformance import builds

    steps = builds.Steps("Letta 0.11.7", total=2)
    for name in ("creating the virtualenv", "compiling bytecode"):
        with steps.step(name):
            pass
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[kimi-kit build] Letta 0.11.7: [1/2] creating the virtualenv ..."
    assert lines[1].startswith("[kimi-kit build] Letta 0.11.7: [1/2] creating the virtualenv done (") and "s in all)" in lines[1]
    assert lines[3].startswith("[kimi-kit build] Letta 0.11.7: [2/2] compiling bytecode done (")
