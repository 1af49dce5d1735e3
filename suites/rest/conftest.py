"""Fixtures of the black-box REST suite: real ``letta server`` processes and their Moonshot stand-ins.

Once per session (and per xdist worker), the kit starts two servers of the build under
test at the same time, each on a free loopback port with its own HOME (SQLite) and its
own stand-in: ``with-key`` (the Kimi key and base URL set) and ``with-flag`` (the same
plus the disabling flag). With ``--letta-url`` there is one server, someone else's, and
one stand-in on ``--standin-port``. A failing test gets the log of the servers it used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kimi_conformance import letta_process, rest_plugin
from kimi_conformance.replay import DEFAULT_CASSETTE_DIR, cassette_path, load_cassette
from kimi_conformance.report import PROP_OUTCOME, WARN
from kimi_conformance.standin import MoonshotStandIn
from suites.helpers import CONTRACT_FOREIGN_IDS, absent, require, served_entries, served_ids
from suites.rest.agent_reply import AgentLoopReply

REQUEST_TIMEOUT = 60.0
KEY, FLAG = "with-key", "with-flag"
MODELS_CASSETTE = "models/current"  # what each stand-in answers to GET /models
_USED = pytest.StashKey[list]()
_LOGGED = pytest.StashKey[bool]()


@dataclass
class LettaUnderTest:
    """A running Letta server the suite talks to over HTTP, and the stand-in it uses as Moonshot."""

    label: str
    url: str
    standin: MoonshotStandIn
    process: letta_process.LettaServerProcess | None  # None: started by someone else (--letta-url)
    http: httpx.Client

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path)

    def json(self, response: httpx.Response, what: str):
        """The JSON of a 2xx answer; anything else fails naming the request and the answer."""
        if not response.is_success:
            pytest.fail(f"{what}: {response.request.method} {response.request.url} answered HTTP {response.status_code}: {response.text[:800]}", pytrace=False)
        return response.json()

    def llm_models(self) -> list[dict]:
        return self.json(self.get("/v1/models/"), "listing the server's models")

    def from_standin(self, entry: dict) -> bool:
        """A listed model whose endpoint is this server's stand-in (whatever its handle says)."""
        return str(entry.get("model_endpoint") or "").rstrip("/") == self.standin.url

    def kimi_entries(self) -> list[dict]:
        return [m for m in self.llm_models() if self.from_standin(m)]

    def new_agent(self, model: str) -> httpx.Response:
        """``POST /v1/agents/`` with ``model``, and an embedding the server lists (0.11 requires one)."""
        embeddings = self.json(self.get("/v1/models/embedding"), "listing the server's embedding models")
        body = {
            "name": f"kit-rest-{uuid.uuid4().hex[:8]}",
            "model": model,
            "memory_blocks": [{"label": "human", "value": "A conformance test."}, {"label": "persona", "value": "A helpful agent."}],
        }
        if embeddings and embeddings[0].get("handle"):
            body["embedding"] = embeddings[0]["handle"]
        return self.post("/v1/agents/", body)


class Fleet:
    """The servers of a session, by label; stops what it started."""

    def __init__(self):
        self.servers: dict[str, LettaUnderTest] = {}
        self.processes: list[letta_process.LettaServerProcess] = []
        self.standins: list[MoonshotStandIn] = []

    def stop(self) -> None:
        for server in self.servers.values():
            server.http.close()
        for process in self.processes:
            process.stop()
        for standin in self.standins:
            standin.stop()


def _cassette_dir(config: pytest.Config) -> Path:
    directory = config.getoption("kimi_cassette_dir")
    return Path(directory) if directory else DEFAULT_CASSETTE_DIR


def _standin(fleet: Fleet, cassette_dir: Path, port: int = 0) -> MoonshotStandIn:
    # beside the cassette's ids, foreign ones, as a gateway lists them: the stand-in is a loopback host, not Moonshot's (LIST-PREFIX)
    standin = MoonshotStandIn(rest_plugin.STANDIN_API_KEY, cassette_dir=cassette_dir, models_cassette=f"{MODELS_CASSETTE}.yaml",
                              extra_model_ids=CONTRACT_FOREIGN_IDS,
                              chat_responder=AgentLoopReply(cassette_dir), port=port)
    fleet.standins.append(standin.start())
    return standin


def _client(url: str) -> httpx.Client:
    # trust_env=False: a proxy of the outer environment must not sit between the kit and loopback
    return httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, trust_env=False)


@pytest.fixture(scope="session")
def rest_fleet(pytestconfig, kimi, tmp_path_factory):
    """The session's servers (see the module docstring); every process is stopped at the end."""
    opts = rest_plugin.options(pytestconfig)
    cassette_dir = _cassette_dir(pytestconfig)
    fleet = Fleet()
    restore_signals = letta_process.install_stop_on_signals()
    try:
        if opts.letta_url:
            standin = _standin(fleet, cassette_dir, opts.standin_port)
            fleet.servers[KEY] = LettaUnderTest(KEY, opts.letta_url, standin, None, _client(opts.letta_url))
        else:
            # one fleet per xdist worker, each in a folder of its own
            worker = getattr(pytestconfig, "workerinput", {}).get("workerid", "")  # this session's own xdist worker id
            workdir = opts.workdir / worker if opts.workdir else tmp_path_factory.mktemp("letta-rest")
            # a role the build lacks (binding: role = false) is not set; the tests that need it say so
            configs = {KEY: {}} if absent(kimi, "disable_env") else {KEY: {}, FLAG: {kimi.disable_env: "1"}}
            standins = {label: _standin(fleet, cassette_dir) for label in configs}
            for label, extra in configs.items():
                env = {} if absent(kimi, "api_key_env") else {kimi.api_key_env: rest_plugin.STANDIN_API_KEY}
                if not absent(kimi, "base_url_env"):
                    env[kimi.base_url_env] = standins[label].url
                env.update(extra)
                fleet.processes.append(letta_process.LettaServerProcess(label, workdir, env=env))
            letta_process.start_all(fleet.processes, opts.startup_timeout)
            for label, process in zip(configs, fleet.processes):
                fleet.servers[label] = LettaUnderTest(label, process.url, standins[label], process, _client(process.url))
        yield fleet
    finally:
        fleet.stop()
        restore_signals()


def _server(request, fleet: Fleet, label: str) -> LettaUnderTest:
    server = fleet.servers[label]
    request.node.stash.setdefault(_USED, []).append(server)
    return server


@pytest.fixture
def letta_with_key(request, rest_fleet, kimi) -> LettaUnderTest:
    """The server started with the Kimi key and the stand-in as base URL (or the --letta-url one)."""
    if rest_fleet.servers[KEY].process is not None:
        require(kimi, "api_key_env", "base_url_env")  # the kit cannot point a server it starts at its stand-in
    return _server(request, rest_fleet, KEY)


@pytest.fixture
def letta_with_flag(request, rest_fleet, kimi) -> LettaUnderTest:
    """The server started with the key and the disabling flag (not available with --letta-url).

    A flag test judges something only where the key alone makes Kimi models visible: the
    ``key_alone_lists_kimi`` fixture checks that first.
    """
    require(kimi, "disable_env")
    if FLAG not in rest_fleet.servers:
        pytest.skip(f"--letta-url: the kit cannot restart that server with {kimi.disable_env}=1; "
                    "this check runs only against servers the kit starts")
    return _server(request, rest_fleet, FLAG)


@pytest.fixture
def configured(kimi):
    """Precondition: the server lists models served by its stand-in: ``configured(server)`` returns them.

    With --letta-url the kit cannot tell a misconfigured server from a broken build: it
    skips, saying how to start the server. A server the kit started is configured, so an
    empty list there is the listing's fault: judged by REST-MODELS (``judged_here=True``),
    a skip elsewhere.
    """

    def check(server: LettaUnderTest, *, judged_here: bool = False) -> list[dict]:
        entries = server.kimi_entries()
        if not entries and server.process is None:
            pytest.skip(f"precondition not met: {server.url} lists no model served by the kit's stand-in {server.standin.url}; "
                        f"start it with {kimi.base_url_env}={server.standin.url} {kimi.api_key_env}={rest_plugin.STANDIN_API_KEY}")
        if not entries and not judged_here:
            pytest.skip(f"precondition not met: {server.url} lists no model served by the stand-in (judged by REST-MODELS)")
        return entries

    return check


@pytest.fixture
def key_alone_lists_kimi(letta_with_key, kimi) -> None:
    """Precondition of every flag test: the server started with the key alone lists Kimi models.

    A provider that never becomes visible without the flag gives the flag nothing to hide:
    judged by REST-MODELS (and ENABLE-KEY in process), not by the flag.
    """
    if not letta_with_key.kimi_entries():
        pytest.skip(f"precondition not met: with the key alone, {letta_with_key.url} lists no Kimi model (judged by REST-MODELS)")


@pytest.fixture(scope="session")
def served_windows(pytestconfig) -> dict[str, int]:
    """``{id: context_length}`` of the stand-in's /models answer, for the ids the contract keeps
    (a folder whose answer has none is a broken input: exit 4 naming the cassette)."""
    cassette = load_cassette(cassette_path(MODELS_CASSETTE, _cassette_dir(pytestconfig)))
    with_context = served_ids(cassette, "with-context", behavior="REST-MODELS")
    return {e["id"]: e["context_length"] for e in served_entries(cassette) if e["id"] in with_context}


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: sees the report as the kit rates it (warn included)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A failing (or warning) REST test carries the log tail of each server it used, in its report and in Allure."""
    outcome = yield
    report = outcome.get_result()
    if item.stash.get(_LOGGED, False) or not (report.failed or (PROP_OUTCOME, WARN) in report.user_properties):
        return
    for server in item.stash.get(_USED, []):
        if server.process is None:
            continue
        item.stash[_LOGGED] = True
        title = f"letta server {server.label} (pid {server.process.pid})"
        tail = server.process.log_tail(200)
        report.sections.append((title, tail))
        if item.config.pluginmanager.hasplugin("allure_pytest"):
            import allure

            allure.attach(tail, name=title, attachment_type=allure.attachment_type.TEXT)
