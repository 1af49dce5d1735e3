"""The pytest plugin: options, the binding probe, verdicts per behaviour ID, reports.

Registered by the kit's top-level ``conftest.py`` (running from a checkout) or by
the ``pytest11`` entry point (installed).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
import re
import shutil
from pathlib import Path

import pytest

try:  # plain `pytest` with an interpreter that lacks the kit's requirements: one line, not a traceback
    import httpx, respx, vcr, yaml  # noqa: E401, F401
except ModuleNotFoundError as e:
    import sys

    sys.stderr.write(f"ERROR: {sys.executable} lacks the kit's requirements: No module named {e.name!r} (install the kit "
                     "into this environment: pip install <kit>; or run `python -m kimi_conformance run --python ...`)\n")
    raise SystemExit(4) from None  # exitcodes.EXIT_USAGE; SystemExit passes pytest's plugin-loading wrappers

from kimi_conformance import allure_labels, held_back, redaction_plugin, scratch, summary_md
from kimi_conformance import binding as binding_mod
from kimi_conformance import discover
from kimi_conformance.contract import BEHAVIORS, MUST
from kimi_conformance.exitcodes import EXIT_NO_KIMI, EXIT_USAGE
from kimi_conformance.inputs import InputError, check_cassette_dir, check_report_path
from kimi_conformance.redact import redact
from kimi_conformance.replay import DEFAULT_CASSETTE_DIR, CassetteError
from kimi_conformance.report import FAIL, NA, PASS, PROP_BEHAVIOR, PROP_FINDING, PROP_INPUT_ERROR, PROP_OUTCOME, WARN, BuildIdentity, Verdicts

pytest_plugins = ["kimi_conformance.rest_plugin"]  # the black-box REST suite's options (-m rest, --letta-url)
pytest_plugins.append("kimi_conformance.live")  # --live, --record, drift (live.py)
pytest_plugins.append("kimi_conformance.kit_settings")  # `pytest --pyargs kimi_conformance_kit.suites` (installed)
DEFAULT_REPORT = "reports/conformance.json"
_STATE = pytest.StashKey["KitPlugin"]()


class KitPlugin:
    """Per-run state and the hooks that need it (registered in pytest_configure)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        # pytest's own --strict (the `strict` ini value) also makes SHOULD failures fail.
        self.strict: bool = _truthy(config.getini("strict")) if "strict" in config._parser._inidict else bool(getattr(config.option, "strict", False))
        self.verdicts = Verdicts(strict=self.strict)
        self.build = BuildIdentity()
        self.binding: binding_mod.Binding | None = None
        self.is_worker = hasattr(config, "workerinput")
        self.report_path = Path(config.getoption("kimi_report") or DEFAULT_REPORT).absolute()  # the folder pytest started in
        # Letta fixes ~/.letta (config, SQLite) at import: give this process a private
        # HOME before anything imports it, and put the real one back at the end.
        self.saved_home = os.environ.get("HOME")
        self.home = Path(scratch.make_dir("kimi-kit-home-"))  # in memory where /dev/shm is
        os.environ["HOME"] = str(self.home)
        # Database settings inherited from the user's shell (LETTA_PG_URI, ...) would point the
        # build at their database (or at a driver this environment lacks): held back for the run.
        self.held_settings = held_back.hold_back(os.environ)
        # Libraries Letta imports (composio) write into the HOME they saw at import from their own
        # atexit handlers; registered before them, this removal runs after them (atexit is LIFO).
        atexit.register(shutil.rmtree, self.home, True)
        self.selection = behavior_selection(config.getoption("kimi_behavior") or [])
        self.environ_at_start: dict[str, str] = {}
        self.interrupted = False

    def restore(self) -> None:
        os.environ.update(self.held_settings)
        if self.saved_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = self.saved_home
        shutil.rmtree(self.home, ignore_errors=True)

    # -- the probe ---------------------------------------------------------------------
    def probe(self) -> None:
        """Import the build, resolve the binding; decide 'no Kimi provider' once."""
        config = self.config
        path = config.getoption("kimi_binding")
        if not path and config.getini("kimi_binding"):
            path = str(config.rootpath / config.getini("kimi_binding"))
        try:
            self.binding = binding_mod.load(path)
        except binding_mod.BindingConfigError as e:
            raise pytest.UsageError(str(e)) from None
        self.build.binding = self.binding.describe()
        self.check_inputs()
        try:
            import letta
        except Exception as e:
            raise pytest.UsageError(f"letta cannot be imported in this environment ({type(e).__name__}: {e})") from None
        self.build.letta_version = getattr(letta, "__version__", None)
        self.build.letta_path = str(Path(letta.__file__).parent)
        self.check_letta_server()
        try:
            self.binding.resolve("provider_class")
        except binding_mod.RoleAbsent:
            self.verdicts.no_kimi = "this build has no Kimi provider (binding: provider_class = false)"
        except binding_mod.MissingTarget as e:
            looked = " and ".join(self.binding.locations["provider_class"])
            self.verdicts.no_kimi = (
                f"this build has no Kimi provider: looked for {looked} "
                f"in letta {self.build.letta_version} at {self.build.letta_path} ({e.reason})"
            ) + discover.hint()
        if not self.is_worker:  # every role resolved and checked once, by the controller, before any test
            problems = self.binding.problems(provider_found=not self.verdicts.no_kimi)
            if problems:
                raise pytest.UsageError(*[problem.line for problem in problems])

    def check_letta_server(self) -> None:
        """Letta's server module imports here, or the reason is this environment (a third-party
        module missing, e.g. asyncpg without 0.16's `postgres` extra): one usage error, never a
        contract verdict. A failure inside the build's own code (letta.*) is left for the suites."""
        if self.is_worker:
            return
        # Letta's start-up INFO lines ("Database throttling is disabled", from letta/server/db.py
        # at import, through the console handler letta/log.py sets up) stay off the user's terminal;
        # its warnings and errors still pass.
        quiet_before = logging.root.manager.disable
        logging.disable(max(quiet_before, logging.INFO))
        try:
            importlib.import_module("letta.server.server")
        except ModuleNotFoundError as e:
            problem = environment_problem(e, self.build.letta_version)
            if problem:
                raise pytest.UsageError(problem) from None
        except Exception:
            pass  # the build's code: the suites say which promise it breaks
        finally:
            logging.disable(quiet_before)

    def check_inputs(self) -> None:
        """The report path and the cassettes, before any test runs (one usage error each)."""
        if self.is_worker:  # the controller checked them before starting the workers
            return
        directory = Path(self.config.getoption("kimi_cassette_dir") or DEFAULT_CASSETTE_DIR)
        try:
            check_report_path(self.report_path)
            if getattr(self.config.option, "kimi_record", False) and not any(directory.rglob("*.yaml")):
                directory.mkdir(parents=True, exist_ok=True)  # --live --record into a new folder: nothing to check yet
                return
            check_cassette_dir(directory)
        except InputError as e:
            raise pytest.UsageError(str(e)) from None

    # -- hooks -------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.probe()
        self.environ_at_start = dict(os.environ)

    def pytest_collection_modifyitems(self, session, config, items: list[pytest.Item]) -> None:
        if self.selection is not None:  # --behavior: only the tests of the selected IDs
            kept = [item for item in items if _selected(item, self.selection)]
            dropped = [item for item in items if item not in kept]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = kept
        for item in items:
            marks = list(item.iter_markers("behavior"))
            if not marks:
                continue
            if len(marks) != 1 or len(marks[0].args) != 1 or marks[0].args[0] not in BEHAVIORS:
                raise pytest.UsageError(f"{item.nodeid}: needs exactly one @pytest.mark.behavior(ID) with an ID of CONTRACT.md")
            item.user_properties.append((PROP_BEHAVIOR, marks[0].args[0]))
            if self.verdicts.no_kimi:
                item.add_marker(pytest.mark.skip(reason=f"not applicable: {self.verdicts.no_kimi}"))

    @pytest.hookimpl(hookwrapper=True, trylast=True)  # innermost: reporters (Allure, JUnit) see the kit's rating
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        bid = behavior_of(item)
        if bid is None:
            return
        if call.excinfo is not None and call.excinfo.errisinstance(CassetteError):
            # The kit's input is broken, not the build: said once, never a contract verdict.
            report.longrepr = f"cassette problem: {call.excinfo.value}"
            report.user_properties = [*report.user_properties, (PROP_INPUT_ERROR, str(call.excinfo.value))]
            return
        level = BEHAVIORS[bid].level
        if report.failed and level != MUST and not self.strict:
            # A SHOULD (or INFO) failure is a warning unless --strict: shown as xfail, recorded as warn.
            report.outcome = "skipped"
            report.wasxfail = f"{bid} is a {level}: reported as warn (--strict makes it fail)"
            report.user_properties = [*report.user_properties, (PROP_OUTCOME, WARN)]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        errors = [value for key, value in report.user_properties if key == PROP_INPUT_ERROR]
        if errors:
            self.verdicts.input_errors.update(errors)
            return
        bid = behavior_of(report)
        outcome = _outcome(report) if bid else None
        if outcome is None:
            return
        findings = [value for key, value in report.user_properties if key == PROP_FINDING] if report.when == "call" else []
        self.verdicts.record(bid, outcome, report.nodeid, findings)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        held = [f"kimi-conformance: {', '.join(self.held_settings)} from the environment held back for this run "
                "(the kit runs Letta on a private SQLite)"] if self.held_settings else []
        return [f"kimi-conformance: report -> {self.report_path}; strict={self.strict}", *held]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.verdicts.isolation.extend(environment_changes(self.environ_at_start, dict(os.environ)))
        if self.is_worker:
            self.config.workeroutput["kimi_isolation"] = list(self.verdicts.isolation)
            return
        if self.verdicts.input_errors:
            session.exitstatus = EXIT_USAGE  # nothing written: the previous report stays as it was
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True  # a partial run is no verdict: the previous report stays as it was
            return
        self.verdicts.write(self.report_path, self.build)
        summary_md.write_next_to(self.report_path)
        if self.verdicts.no_kimi and exitstatus in (0, 5):
            session.exitstatus = EXIT_NO_KIMI

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker:
            return
        if self.verdicts.input_errors:
            for error in sorted(self.verdicts.input_errors):
                terminalreporter.write_line(redact(f"ERROR: {error}"), red=True)
            terminalreporter.write_line(f"no verdict: the kit's input is broken (nothing written to {self.report_path})", red=True)
            return
        if self.interrupted:
            terminalreporter.write_line(f"no verdict: the run was interrupted (nothing written to {self.report_path})", red=True)
            return
        terminalreporter.section("Kimi provider conformance")
        for line in map(redact, self.verdicts.summary_lines(self.build)):
            bad = line.endswith(" fail") or line.startswith("VERDICT: non-conformant") or line.startswith("VERDICT: this build")
            terminalreporter.write_line(line, red=bad, green=line.endswith(" pass"), yellow=line.endswith(" warn"))
        if self.verdicts.overall() == "untested" and config.getoption("keyword", None):
            terminalreporter.write_line("hint: -k matches test names, not behaviour IDs; select by ID with --behavior ID (README: Selecting behaviours)", yellow=True)
        for change in sorted(set(self.verdicts.isolation)):
            terminalreporter.write_line(f"WARNING: the run did not restore its process: {change}", yellow=True)
        terminalreporter.write_line(f"JSON report: {self.report_path}")
        terminalreporter.write_line(f"Markdown summary: {summary_md.path_for(self.report_path)}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """An xdist worker's isolation findings reach the controller's report."""
        self.verdicts.isolation.extend(getattr(node, "workeroutput", {}).get("kimi_isolation", []))

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.restore()
        # The run is over: spare the interpreter's final garbage collection the whole
        # object graph of Letta (about 2 s of a run): the frozen objects are left to the
        # operating system. atexit handlers still run; reports are written by now.
        gc.freeze()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kimi-conformance", "Kimi provider conformance")
    group.addoption("--conformance-report", dest="kimi_report", metavar="PATH", default=None,
                    help=f"where to write the JSON verdict report (default: {DEFAULT_REPORT})")
    group.addoption("--binding", dest="kimi_binding", metavar="FILE", default=None,
                    help="TOML file declaring where the build keeps its Kimi implementation (see README)")
    group.addoption("--cassette-dir", dest="kimi_cassette_dir", metavar="DIR", default=None,
                    help="folder of Moonshot cassettes (default: the kit's cassettes/)")
    group.addoption("--behavior", dest="kimi_behavior", metavar="ID", action="append", default=None,
                    help="run only the tests of these behaviour IDs (repeatable): an ID (LIST-PREFIX), a group prefix "
                         "(LIST, AUTH) or an expression over them ('LIST and not LIST-FIELDS'); the verdict of a "
                         "partial run says how many MUST behaviours were not checked, never 'conformant'")
    parser.addini("kimi_binding", "binding TOML file (same as --binding), relative to the rootdir", default="")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_cmdline_main(config: pytest.Config):
    """A usage error raised in the run (the kit's input checks, --behavior ...) is one ``ERROR:`` line
    per message and exit 4 -- pytest's own printer adds a blank line after each."""
    try:
        return (yield)
    except pytest.UsageError as e:
        import sys

        sys.stderr.write("".join(f"ERROR: {message}\n" for message in e.args))
        sys.stderr.flush()
        return EXIT_USAGE


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "behavior(ID): the CONTRACT.md behaviour a test checks (exactly one per test)")
    plugin = KitPlugin(config)
    config.stash[_STATE] = plugin
    config.pluginmanager.register(plugin, "kimi-conformance-state")
    allure_labels.register(config, plugin)
    redaction_plugin.register(config)  # every output passes the one redactor


def environment_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Variables a run left added, removed or changed in its process (values never shown).

    PYTEST_CURRENT_TEST is pytest's own (it removes an inherited one): not a leak.
    """
    before, after = ({k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"} for env in (before, after))
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    return [f"environment: {k} added" for k in sorted(after.keys() - before.keys())] + [
        f"environment: {k} removed" for k in sorted(before.keys() - after.keys())
    ] + [f"environment: {k} changed" for k in changed]


_ID_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9][A-Za-z0-9-]*)")


def behavior_selection(values: list[str]) -> list[str] | None:
    """The ``--behavior`` values as Python boolean expressions over IDs (None: no selection).

    Each value is an ID, a prefix of IDs (``LIST`` = every ``LIST-*``) or an expression with
    ``and``/``or``/``not`` and parentheses; the values are alternatives. An unknown ID is a usage error."""
    if not values:
        return None
    compiled = []
    for value in values:
        parts, pos = [], 0
        while pos < len(value.rstrip()):
            match = _ID_TOKEN.match(value, pos)
            if not match:
                raise pytest.UsageError(f"--behavior {value!r}: cannot read it at {value[pos:]!r} (IDs, and, or, not, parentheses)")
            token, pos = match.group(1), match.end()
            if token in ("(", ")", "and", "or", "not"):
                parts.append(token)
            elif any(bid == token.upper() or bid.startswith(token.upper() + "-") for bid in BEHAVIORS):
                parts.append(f"_match({token.upper()!r})")
            else:
                raise pytest.UsageError(f"--behavior {value!r}: {token!r} is no behaviour ID or prefix of one "
                                        f"(IDs: {', '.join(BEHAVIORS)})")
        expression = " ".join(parts)
        try:
            compile(expression, "--behavior", "eval")
        except SyntaxError:
            raise pytest.UsageError(f"--behavior {value!r}: not a well-formed expression over IDs") from None
        compiled.append(expression)
    return compiled


def _selected(item: pytest.Item, selection: list[str]) -> bool:
    marks = list(item.iter_markers("behavior"))
    if len(marks) != 1 or not marks[0].args:
        return False
    bid = marks[0].args[0]
    scope = {"__builtins__": {}, "_match": lambda token: bid == token or bid.startswith(token + "-")}
    return any(eval(expression, scope) for expression in selection)  # noqa: S307 (built from checked tokens only)


# What a missing module means for the user, by the module (Letta's optional extras).
_EXTRAS = {"asyncpg": "postgres", "pgvector": "postgres", "psycopg2": "postgres", "psycopg": "postgres", "pg8000": "postgres",
           "redis": "redis", "sqlite_vec": "sqlite"}


def environment_problem(error: ModuleNotFoundError, letta_version: str | None) -> str | None:
    """The one line for a module Letta's server needs but this environment lacks (None: the missing
    module is part of letta itself, so the build's code is what is broken)."""
    missing = (error.name or "").split(".")[0]
    if not missing or missing == "letta":
        return None
    why = []
    if missing in _EXTRAS:
        minor = ".".join((letta_version or "").split(".")[:2]) or "this version"
        why.append(f"Letta {minor} needs the `{_EXTRAS[missing]}` extra: pip install 'letta[{_EXTRAS[missing]}]=={letta_version}'"
                   if letta_version else f"Letta needs the `{_EXTRAS[missing]}` extra")
    hint = f" ({'; '.join(why)})" if why else ""
    return f"Letta's server cannot be imported in this environment: No module named {missing!r}{hint}"


def _truthy(value) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


def state(config: pytest.Config) -> KitPlugin:
    return config.stash[_STATE]


def behavior_of(item_or_report) -> str | None:
    for key, value in getattr(item_or_report, "user_properties", []):
        if key == PROP_BEHAVIOR:
            return value
    return None


def _outcome(report: pytest.TestReport) -> str | None:
    for key, value in report.user_properties:
        if key == PROP_OUTCOME:
            return value
    if report.failed:
        return FAIL
    if report.skipped:
        return NA if report.when in ("setup", "call") else None
    if report.passed and report.when == "call":
        return PASS
    return None


@pytest.fixture
def finding(request: pytest.FixtureRequest):
    """Record an INFO finding for the test's behaviour ID (JSON report and summary)."""

    def record(text: str) -> None:
        request.node.user_properties.append((PROP_FINDING, text))

    return record


@pytest.fixture(scope="session")
def kimi(pytestconfig: pytest.Config) -> binding_mod.Binding:
    """The resolved binding of the build under test."""
    return state(pytestconfig).binding


@pytest.fixture(scope="session")
def kit_home(pytestconfig: pytest.Config) -> Path:
    """This process's private HOME (Letta's ~/.letta lives here)."""
    return state(pytestconfig).home
