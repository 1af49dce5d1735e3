"""Fixtures shared by the suites: base URLs, the replay, the environment, providers, servers.

One fixture per concept. Everything a test changes (environment variables, Letta's
settings objects, HOME) is changed through monkeypatch and restored after the test.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kimi_conformance import letta_compat, live
from kimi_conformance.replay import DEFAULT_CASSETTE_DIR, CassetteError, Replay, load_cassette
from suites.helpers import BASE_URLS, KIMI_KEY, LISTING_BASE_URLS, absent, kimi_typed_providers, pick_id, require

# Parameters taken from the cassette folder: every error answer of /models it holds
# (``errors/models-*``), so a new cassette is judged without editing the suites.
ERROR_ANSWERS = {
    "models_error": lambda status: True,  # every failed /models call (LIST-FALLBACK)
    "models_unauthorized": lambda status: status == 401,  # AUTH-401
    "models_other_error": lambda status: status != 401,  # AUTH-OTHER
}


def cassette_folder(config: pytest.Config) -> Path:
    directory = config.getoption("kimi_cassette_dir")
    return Path(directory) if directory else DEFAULT_CASSETTE_DIR


def models_error_cassettes(folder: Path) -> dict[str, int]:
    """``{"errors/models-...": status}`` for every /models error cassette of the folder."""
    found = {}
    for path in sorted((folder / "errors").glob("models-*.yaml")):
        try:
            statuses = [i.status for i in load_cassette(path).interactions if i.path == "/models"]
        except CassetteError:  # said once by the input check before any test
            continue
        if statuses:
            found[f"errors/{path.stem}"] = statuses[0]
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "base_url" in metafunc.fixturenames:
        urls = live.base_urls(metafunc.config, LISTING_BASE_URLS if judges_listing(metafunc) else BASE_URLS)
        metafunc.parametrize("base_url", list(urls.values()), ids=list(urls), indirect=True)
    for name, wanted in ERROR_ANSWERS.items():
        if name in metafunc.fixturenames:
            answers = [c for c, status in models_error_cassettes(cassette_folder(metafunc.config)).items() if wanted(status)]
            metafunc.parametrize(name, answers, ids=[a.split("/", 1)[1] for a in answers])


def judges_listing(metafunc: pytest.Metafunc) -> bool:
    """A LIST-* test: it runs behind a gateway too (suites.helpers.LISTING_BASE_URLS)."""
    return any(str(m.args[0]).startswith("LIST-") for m in metafunc.definition.iter_markers("behavior") if m.args)


@pytest.fixture
def base_url(request) -> str:
    """Each Moonshot platform in turn, and a gateway's host for listing (in live mode: KIMI_BASE_URL)."""
    return request.param


@pytest.fixture
def moonshot(pytestconfig, request) -> Replay:
    """Replayed Moonshot: serve cassettes, inject faults, read the requests made.

    The test fails at teardown if a request had no recorded answer or a socket was
    opened to the outside, even when the code under test swallowed the error. In live
    mode the cassettes of what the live API serves are answered by it (kimi_conformance.live).
    """
    replay = live.moonshot_transport(request.node, cassette_folder(pytestconfig), KIMI_KEY).start()
    try:
        yield replay
    finally:
        replay.stop()
    problems = replay.problems()
    if problems:
        pytest.fail("hermetic replay violated:\n  " + "\n  ".join(problems), pytrace=False)


class KimiEnvironment:
    """Sets the Kimi (and OpenAI) environment of the build, the way a deployment would.

    Letta reads its settings once at import, so each value goes both into the process
    environment and onto the build's settings object; monkeypatch restores both.
    """

    def __init__(self, kimi, monkeypatch: pytest.MonkeyPatch):
        self.kimi, self.mp = kimi, monkeypatch

    def _setting(self, role: str, value) -> None:
        """Set the settings field the binding names for ``role`` (skipped where the role is absent)."""
        if absent(self.kimi, role):
            return
        settings, field = self.kimi.settings, getattr(self.kimi, role)
        if field not in type(settings).model_fields:
            pytest.fail(f"the build's settings object has no field {field!r} (binding: {role})", pytrace=False)
        self.mp.setattr(settings, field, value)

    def _role_env(self, role: str, value: str | None) -> None:
        if not absent(self.kimi, role):
            self._env(getattr(self.kimi, role), value)

    def api_key(self, value: str | None) -> None:
        self._role_env("api_key_env", value)
        self._setting("settings_api_key", value)

    def base_url_configurable(self) -> bool:
        return not (absent(self.kimi, "settings_base_url") and absent(self.kimi, "base_url_env"))

    def base_url(self, value: str | None) -> None:
        """Configure the base URL (the behaviour under test needs the setting: absent fails it)."""
        if value is not None:
            require(self.kimi, "settings_base_url", "base_url_env")
        self._role_env("base_url_env", value)
        if value is not None:
            self._setting("settings_base_url", value)

    def deploy_at(self, base_url: str) -> None:
        """A consistent deployment at ``base_url``, for behaviours that are not about the setting.

        A build that cannot be configured for another base URL is judged at its default one
        (whether it honours the setting is ENABLE-KEY's and CLIENT-KWARGS' question).
        """
        if self.base_url_configurable():
            self.base_url(base_url)
        elif base_url.rstrip("/") != self.kimi.default_base_url.rstrip("/"):
            pytest.skip(f"precondition not met: this build cannot be configured for {base_url} (judged by ENABLE-KEY)")

    def disable(self, value: str | None) -> None:
        self._role_env("disable_env", value)

    def openai_key(self, value: str | None) -> None:
        self._env("OPENAI_API_KEY", value)
        settings = letta_compat.openai_settings()  # Letta's own model_settings, whatever object the binding names for Kimi
        if settings is not None:
            self.mp.setattr(settings, "openai_api_key", value)

    def _env(self, name: str, value: str | None) -> None:
        if value is None:
            self.mp.delenv(name, raising=False)
        else:
            self.mp.setenv(name, value)


@pytest.fixture
def kimi_env(kimi, monkeypatch) -> KimiEnvironment:
    """A clean Kimi environment: no Kimi key, no flag, the default base URL, no OpenAI key."""
    env = KimiEnvironment(kimi, monkeypatch)
    env.api_key(None)
    env.disable(None)
    env._role_env("base_url_env", None)
    env._setting("settings_base_url", kimi.default_base_url)
    env.openai_key(None)
    return env


@pytest.fixture
def kimi_config(make_provider, moonshot):
    """A Kimi `LLMConfig` as the build's provider lists it: ``await kimi_config(base_url, need=..., behavior=ID)``.

    The config comes from ``list_llm_models_async()`` over the folder's ``models/current``
    answer, for the first served id that fits ``need`` (see kimi_conformance.cassette_needs.ENTRY_NEEDS) and that
    the build lists; its ``model_endpoint`` must be ``base_url`` (LIST-FIELDS' verdict)
    unless ``check_endpoint=False``; other keywords update the config
    (``model_endpoint=None``).
    """

    async def make(base_url: str, *, need: str = "any", behavior: str, check_endpoint: bool = True, prefer: str | None = None, **update):
        served = moonshot.serve("models/current", base_url)
        configs = await letta_compat.call(make_provider(base_url).list_llm_models_async)
        model_id = pick_id(served, configs, need, behavior=behavior, prefer=prefer)
        moonshot.requests.clear()  # the test observes what its own call sends
        config = next(c for c in configs if c.model == model_id)
        endpoint = (config.model_endpoint or "").rstrip("/")
        if check_endpoint and endpoint != base_url.rstrip("/"):
            pytest.skip(f"precondition not met: {model_id} is listed with model_endpoint {endpoint!r}, not {base_url} (judged by LIST-FIELDS)")
        return config.model_copy(update=update) if update else config

    return make


@pytest.fixture
async def key_enables(kimi, kimi_env, start_server):
    """Precondition of the flag: with the key alone (no flag), the started server enables a Kimi-typed provider.

    Otherwise the flag has nothing to disable, and the key's enabling is ENABLE-KEY's verdict.
    The Kimi key stays set for the test.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.disable(None)
    server, _ = await start_server()
    if not kimi_typed_providers(kimi, server):
        pytest.skip("precondition not met: the key alone does not enable the Kimi provider (judged by ENABLE-KEY)")


@pytest.fixture
def make_provider(kimi):
    """Builds the build's Kimi provider: ``make_provider(base_url, api_key=..., name=...)``."""

    def make(base_url: str | None, *, api_key: str | None = KIMI_KEY, name: str | None = None, category=None):
        return letta_compat.make_provider(kimi, name=name or kimi.provider_name, api_key=api_key, base_url=base_url, category=category)

    return make


@pytest.fixture(scope="session")
def letta_database(kimi, kit_home):
    """The per-process database of the build (SQLite under this process's private HOME); its
    pooled connections are closed at the session's end."""
    letta_compat.prepare_database(kit_home, kimi.server_class)
    yield kit_home
    asyncio.run(letta_compat.close_database())


@pytest.fixture
def start_server(kimi, letta_database, kimi_env, moonshot):
    """Starts a server of the build the way `letta server` does, in the current Kimi environment:
    ``server, actor = await start_server()``.

    The start-up (0.16: the model sync of every enabled provider) lists Kimi models
    wherever the Kimi provider may be: each Moonshot platform and the default URL are
    answered with the folder's ``models/current`` (mounted after the test's own answers).
    Another provider's requests are cut off by the replay (no socket opened) and are not
    this test's problem: the start-up logs them, and only Moonshot's count.
    """

    kimi_urls = {url for url in (kimi.default_base_url, *BASE_URLS.values()) if url}
    kimi_hosts = {urlsplit(url).hostname for url in kimi_urls}

    def kimi_problems(problems: list[str], since: int) -> None:
        problems[since:] = [p for p in problems[since:] if any(host in p for host in kimi_hosts)]

    async def start():
        for url in kimi_urls:
            moonshot.serve_fallback("models/current", url)
        misses, blocked = len(moonshot.misses), len(moonshot.blocked)
        started = await letta_compat.start_server(kimi.server_class)
        kimi_problems(moonshot.misses, misses)
        kimi_problems(moonshot.blocked, blocked)
        return started

    return start


@pytest.fixture(autouse=True)
def _test_home(kit_home, monkeypatch):
    """A HOME of the test's own for anything resolved at run time (removed after the test)."""
    home = Path(tempfile.mkdtemp(prefix="test-home-", dir=kit_home))
    monkeypatch.setenv("HOME", str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)
