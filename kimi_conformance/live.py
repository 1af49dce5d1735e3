"""Live mode: ``pytest --live`` runs the same suites against Moonshot's API at ``KIMI_BASE_URL``.

What changes from replay, and what does not:

* ``base_url`` is ``KIMI_BASE_URL`` (default ``https://api.moonshot.cn/v1``) instead of the
  two public platforms in turn.
* The ``moonshot`` fixture is a LiveMoonshot (:mod:`kimi_conformance.live_transport`): the
  cassettes that stand for what the live API serves are answered by the live API; every
  other cassette (error answers, empty or foreign lists, older entry shapes) and every
  injected fault (timeouts, refused connections, malformed JSON) stays replayed, because
  the live API cannot produce them on demand, and the report lists them per behaviour.
* The build under test only ever holds the kit's placeholder key: the live transport puts
  ``KIMI_API_KEY`` in its place on the way out (and a deliberately invalid key for the
  cassettes of a refused key, AUTH-401). ``KIMI_API_KEY`` and ``KIMI_BASE_URL`` are taken
  out of the process environment for the run.
* A 429 or 5xx that persists after the retries (:mod:`kimi_conformance.upstream`) makes
  the test's outcome "upstream unavailable": neither pass nor fail.
* Before any test, one ``GET /models`` with the key checks the URL and the key (a usage
  error naming ``KIMI_BASE_URL`` or ``KIMI_API_KEY`` otherwise); its answer is what the
  DRIFT-* behaviours compare with.
* ``--record`` rewrites the live-answered cassettes (:mod:`kimi_conformance.record`).

Live runs go serially (Moonshot's low tiers allow one request at a time): ``-n`` is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kimi_conformance.cassette_needs import kept as kept_by_contract
from kimi_conformance.exitcodes import EXIT_RECORD_REFUSED, EXIT_UPSTREAM_UNAVAILABLE
from kimi_conformance.plugin import behavior_of, state
from kimi_conformance.record import Recorder, RecordRefused
from kimi_conformance.redact import redact, remember, url_secrets
from kimi_conformance.live_transport import LiveMoonshot
from kimi_conformance.replay import DEFAULT_CASSETTE_DIR, Replay
from kimi_conformance.report import PROP_OUTCOME, UNAVAILABLE
from kimi_conformance.upstream import Upstream, display_url, error_type

ENV_KEY, ENV_BASE_URL = "KIMI_API_KEY", "KIMI_BASE_URL"
DEFAULT_BASE_URL = "https://api.moonshot.cn/v1"
PROP_LIVE = "kimi_live"  # user_properties: ("kimi_live", {"injected": [...], "unavailable": [...]})
_SESSION = pytest.StashKey["LiveSession"]()
_TRANSPORT = pytest.StashKey["LiveMoonshot"]()


class UpstreamUnavailable(Exception):
    """The live API could not answer (after the retries): the test is 'upstream unavailable'."""


# -- the run's live state -------------------------------------------------------------
@dataclass
class LiveSession:
    base_url: str
    upstream: Upstream
    cassette_dir: Path
    recorder: Recorder | None
    models: dict | None = None  # the live /models answer (checked before the tests)
    models_trouble: str | None = None
    injected: dict[str, set[str]] = field(default_factory=dict)
    unavailable: list[dict] = field(default_factory=list)
    drift: dict = field(default_factory=dict)  # set by the DRIFT-* tests (live runs are serial: same process)
    chat_models: dict[str, str] = field(default_factory=dict)  # chat cassette -> the live model it chats with
    recording: dict | None = None

    @property
    def where(self) -> str:
        return display_url(self.base_url)

    def model_entries(self) -> list:
        """The entries of the live /models answer; UpstreamUnavailable when there was none."""
        if self.models is None:
            raise UpstreamUnavailable(self.models_trouble or "upstream unavailable: no live /models answer")
        return list(self.models.get("data", []))

    def absorb(self, nodeid: str, behavior: str | None, data: dict) -> None:
        for item in data.get("injected", []):
            self.injected.setdefault(behavior or "?", set()).add(item)
        if data.get("unavailable"):
            self.unavailable.append({"test": nodeid, "behavior": behavior, "reasons": data["unavailable"]})

    def as_json(self) -> dict:
        return {
            "mode": "live",
            "base_url": self.where,
            "requests": self.upstream.requests,
            "retries": self.upstream.retried,
            "upstream_unavailable": self.unavailable,
            "injected": {bid: sorted(items) for bid, items in sorted(self.injected.items())},
            "drift": self.drift,
            "chat_models": self.chat_models,
            "recording": self.recording,
        }


def pick_chat_models(entries: list) -> dict[str, str]:
    """The live model each chat cassette's request goes to, from the live /models list (never a fixed id).

    A thinking model (``supports_reasoning``) for ``chat/reasoning``; for ``chat/tool-calls`` a
    ``kimi-`` model (the K2/K3 series Letta users pick), a non-thinking one if the account has
    one. Either falls back to any id the contract keeps, in the list's order. Empty: no such id.
    """
    kept = [e for e in entries if kept_by_contract(e)]
    if not kept:
        return {}
    kept.sort(key=lambda e: not e["id"].startswith("kimi-"))  # stable: the list's order within each series
    thinking = [e["id"] for e in kept if e.get("supports_reasoning") is True]
    plain_kimi = [e["id"] for e in kept if e.get("supports_reasoning") is not True and e["id"].startswith("kimi-")]
    tool_calls = (plain_kimi or [kept[0]["id"]])[0]
    return {"chat/tool-calls": tool_calls, "chat/reasoning": (thinking or [tool_calls])[0]}


def chat_model(config: pytest.Config, cassette: str, recorded: str) -> str:
    """The model a chat test asks for: in live mode the one picked from the live list, else the cassette's ``recorded`` one."""
    live = session_of(config)
    return live.chat_models.get(cassette, recorded) if live else recorded


def session_of(config: pytest.Config) -> LiveSession | None:
    return config.stash.get(_SESSION, None)


def base_urls(config: pytest.Config, replay_urls: dict[str, str]) -> dict[str, str]:
    """The base URLs the suites run against: the live one, or the replayed platforms."""
    live = session_of(config)
    return {"live": live.base_url} if live else dict(replay_urls)


def moonshot_transport(node: pytest.Item, cassette_dir: Path, placeholder_key: str) -> Replay:
    """The ``moonshot`` fixture's object: a Replay, or in live mode a LiveMoonshot (not started)."""
    live = session_of(node.config)
    if live is None:
        return Replay(cassette_dir)
    transport = LiveMoonshot(live.cassette_dir, live.upstream, live.recorder, placeholder_key)
    node.stash[_TRANSPORT] = transport
    return transport


# -- options and start-up -------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kimi-conformance")
    group.addoption("--live", dest="kimi_live", action="store_true", default=False,
                    help=f"run against the live API at ${ENV_BASE_URL} (default {DEFAULT_BASE_URL}) with ${ENV_KEY}")
    group.addoption("--record", dest="kimi_record", action="store_true", default=False,
                    help="with --live: rewrite the live-answered cassettes (in --cassette-dir) from live traffic, scrubbed")
    group.addoption("--live-retries", dest="kimi_live_retries", type=int, default=3, metavar="N",
                    help="retries of a 429/5xx/network failure from the live API before 'upstream unavailable' (default 3)")
    group.addoption("--live-max-wait", dest="kimi_live_max_wait", type=float, default=60.0, metavar="SECONDS",
                    help="longest Retry-After the kit waits for (default 60)")


def check_base_url(value: str) -> str:
    """``KIMI_BASE_URL`` normalized (no trailing slash), or a usage error naming it."""
    problem = None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        problem = str(e)
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "not an http(s) URL with a host"
        elif parts.query or parts.fragment:
            problem = "a base URL has no query or fragment"
    if problem:
        raise pytest.UsageError(redact(f"{ENV_BASE_URL}={value!r} is not usable ({problem}); it is the API root, e.g. {DEFAULT_BASE_URL} or https://api.moonshot.ai/v1"))
    return value.rstrip("/")


def pytest_configure(config: pytest.Config) -> None:
    live, record = config.getoption("kimi_live"), config.getoption("kimi_record")
    if record and not live:
        raise pytest.UsageError("--record needs --live: it rewrites cassettes from the live API's answers")
    if not live:
        return
    if config.getoption("numprocesses", None):
        raise pytest.UsageError("--live runs serially (Moonshot's low tiers allow one request at a time): drop -n/--numprocesses")
    retries, max_wait = config.getoption("kimi_live_retries"), config.getoption("kimi_live_max_wait")
    if retries < 0 or not math.isfinite(max_wait) or max_wait < 0:  # nan would switch the cap off
        raise pytest.UsageError("--live-retries and --live-max-wait must be 0 or more")
    key = os.environ.get(ENV_KEY, "").strip()
    remember(key, *url_secrets(os.environ.get(ENV_BASE_URL, "")))  # before anything can print them, and before they leave the environment
    if not key:
        raise pytest.UsageError(f"--live needs {ENV_KEY} (a Moonshot API key) in the environment; it is not set, so no test ran")
    base_url = check_base_url(os.environ.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL)
    hidden = {name: os.environ.pop(name) for name in (ENV_KEY, ENV_BASE_URL) if name in os.environ}
    config.add_cleanup(lambda: os.environ.update(hidden))
    directory = config.getoption("kimi_cassette_dir")
    cassette_dir = Path(directory) if directory else DEFAULT_CASSETTE_DIR
    upstream = Upstream(base_url, key, retries=retries, max_wait=max_wait)
    config.add_cleanup(upstream.close)
    # --record into a new (empty) folder: the requests come from the kit's cassettes, the answers go there
    templates = DEFAULT_CASSETTE_DIR if record and not any(cassette_dir.rglob("*.yaml")) else cassette_dir
    live_session = LiveSession(base_url, upstream, templates, Recorder(cassette_dir, base_url, key) if record else None)
    config.stash[_SESSION] = live_session
    preflight(live_session)
    config.pluginmanager.register(LivePlugin(config, live_session), "kimi-conformance-live-run")


def unrecorded_templates(live: LiveSession, written: list[Path]) -> dict[str, str]:
    """Recording into a new folder: each cassette of the kit's set that the run did not write there
    (the live API cannot give error answers on demand; a deselected test asks for nothing)."""
    target = live.recorder.cassette_dir
    if target.resolve() == live.cassette_dir.resolve():
        return {}
    have = {p.resolve() for p in written} | {p.resolve() for p in target.rglob("*.yaml")}
    return {p.relative_to(live.cassette_dir).with_suffix("").as_posix():
            f"not recorded into {target}: copy it from {live.cassette_dir} for replay"
            for p in sorted(live.cassette_dir.rglob("*.yaml")) if (target / p.relative_to(live.cassette_dir)).resolve() not in have}


def preflight(live: LiveSession) -> None:
    """One GET /models with the key: a usage error for a wrong URL or key; its answer feeds DRIFT-*."""
    sent = live.upstream.send("GET", f"{live.base_url}/models", {"Accept": "application/json"}, authorization=live.upstream.bearer())
    where = f"{ENV_BASE_URL}={live.where}"
    if sent.response is None:
        raise pytest.UsageError(redact(f"{where} cannot be reached: {type(sent.error).__name__}: {sent.error}"))
    if sent.trouble:
        live.models_trouble = sent.trouble
        return
    status, kind = sent.response.status_code, error_type(sent.response)
    if status in (401, 403):
        raise pytest.UsageError(f"{ENV_KEY} was refused by {live.where}/models (HTTP {status}{' ' + kind if kind else ''}): "
                                "check the key and its platform (api.moonshot.cn or api.moonshot.ai)")
    try:
        body = sent.response.json() if status == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise pytest.UsageError(f"{where}: GET /models answered HTTP {status} without Moonshot's model list; "
                                f"{ENV_BASE_URL} is the API root, e.g. {DEFAULT_BASE_URL}")
    live.models = body
    live.chat_models = pick_chat_models(body["data"])
    if not live.chat_models:
        raise pytest.UsageError(redact(f"{where}: GET /models lists no moonshot-/kimi- model this key may use: live mode has nothing to chat with"))


# -- outcomes -------------------------------------------------------------------------
class LivePlugin:
    """The live run's hooks (registered only with --live)."""

    def __init__(self, config: pytest.Config, live: LiveSession):
        self.config, self.live = config, live

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Upstream trouble makes the test 'upstream unavailable' (a skip, with its own verdict), whatever it asserted."""
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when not in ("setup", "call"):
            return
        transport = item.stash.get(_TRANSPORT, None)
        reasons = list(transport.unavailable) if transport is not None else []
        if call.excinfo is not None and call.excinfo.errisinstance(UpstreamUnavailable):
            reasons.append(str(call.excinfo.value))
        data: dict = {"injected": list(transport.injected)} if transport is not None and report.when == "call" else {}
        if reasons:
            more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
            report.outcome = "skipped"
            report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {reasons[0]}{more}")
            report.user_properties = [*report.user_properties, (PROP_OUTCOME, UNAVAILABLE)]
            data["unavailable"] = reasons
        if data:
            report.user_properties = [*report.user_properties, (PROP_LIVE, data)]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == PROP_LIVE:
                self.live.absorb(report.nodeid, behavior_of(report), value)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        live = self.live
        refused = None
        if live.recorder is not None:
            live.recording = {"written": [], "not_recorded": {}, "refused": None}
            if exitstatus not in (0, 1):
                live.recording["skipped"] = f"the run did not complete (exit {exitstatus}): nothing recorded"
            else:
                try:
                    written, skipped = live.recorder.write()
                    skipped = {**unrecorded_templates(live, written), **skipped}
                    live.recording.update(written=[str(p) for p in written], not_recorded=skipped)
                except RecordRefused as e:
                    refused = live.recording["refused"] = str(e)
        verdicts = state(self.config).verdicts
        verdicts.sections["live"] = live.as_json()
        if refused:
            session.exitstatus = EXIT_RECORD_REFUSED
        elif session.exitstatus == 0 and verdicts.overall() == UNAVAILABLE:
            session.exitstatus = EXIT_UPSTREAM_UNAVAILABLE

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        live = self.live

        def write(line: str, **markup) -> None:
            terminalreporter.write_line(redact(line), **markup)

        terminalreporter.section("Kimi live mode")
        write(f"live: {live.upstream.requests} request(s) to {live.where} ({live.upstream.retried} retried); "
              "the build under test only saw the kit's placeholder key")
        if live.chat_models:
            write("live: chats with " + ", ".join(f"{model} ({cassette})" for cassette, model in sorted(live.chat_models.items()))
                  + ", picked from the live /models list")
        if live.unavailable:
            write(f"upstream unavailable (not a contract verdict): {len(live.unavailable)} test(s)", yellow=True)
            for entry in live.unavailable:
                write(f"  {entry['test']} ({entry['behavior']}): {entry['reasons'][0]}", yellow=True)
        if live.injected:
            write("injected in live mode (the live API cannot produce these on demand):")
            for bid, items in sorted(live.injected.items()):
                write(f"  {bid}: {', '.join(sorted(items))}")
        if live.drift:
            write("drift: the INFO DRIFT-MODELS / DRIFT-SHAPE lines above (JSON report: live.drift)")
        recording = live.recording or {}
        for path in recording.get("written", []):
            write(f"recorded: {path}", green=True)
        for name, why in sorted(recording.get("not_recorded", {}).items()):
            write(f"not recorded: {name} ({why})", yellow=True)
        if recording.get("skipped"):
            write(f"not recorded: {recording['skipped']}", yellow=True)
        if recording.get("refused"):
            write(f"ERROR: {recording['refused']}", red=True)


# -- fixtures -------------------------------------------------------------------------
@pytest.fixture
def live_api(pytestconfig: pytest.Config) -> LiveSession:
    """The live run (base URL, the live /models answer); replay runs skip the test."""
    live = session_of(pytestconfig)
    if live is None:
        pytest.skip("live mode only: compares the recorded world with the live API (run with --live)")
    return live

