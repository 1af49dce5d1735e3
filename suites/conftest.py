"""Fixtures shared by the suites: base URLs, the replay, the environment, providers, servers.

One fixture per concept. Everything a test changes (environment variables, Letta's
settings objects, HOME) is changed through monkeypatch and restored after the test.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from kimi_conformance import letta_compat, live
from kimi_conformance.replay import DEFAULT_CASSETTE_DIR, Replay
from suites.helpers import BASE_URLS, KIMI_KEY


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "base_url" in metafunc.fixturenames:
        urls = live.base_urls(metafunc.config, BASE_URLS)
        metafunc.parametrize("base_url", list(urls.values()), ids=list(urls), indirect=True)


@pytest.fixture
def base_url(request) -> str:
    """Each Moonshot platform in turn (in live mode: KIMI_BASE_URL)."""
    return request.param


@pytest.fixture
def moonshot(pytestconfig, request) -> Replay:
    """Replayed Moonshot: serve cassettes, inject faults, read the requests made.

    The test fails at teardown if a request had no recorded answer or a socket was
    opened to the outside, even when the code under test swallowed the error. In live
    mode the cassettes of what the live API serves are answered by it (kimi_conformance.live).
    """
    directory = pytestconfig.getoption("kimi_cassette_dir")
    replay = live.moonshot_transport(request.node, Path(directory) if directory else DEFAULT_CASSETTE_DIR, KIMI_KEY).start()
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

    def _setting(self, field: str, value) -> None:
        settings = self.kimi.settings
        if field not in type(settings).model_fields:
            pytest.fail(f"the build's settings object has no field {field!r} (binding: settings_* names)", pytrace=False)
        self.mp.setattr(settings, field, value)

    def api_key(self, value: str | None) -> None:
        self._env(self.kimi.api_key_env, value)
        self._setting(self.kimi.settings_api_key, value)

    def base_url(self, value: str | None) -> None:
        self._env(self.kimi.base_url_env, value)
        if value is not None:
            self._setting(self.kimi.settings_base_url, value)

    def disable(self, value: str | None) -> None:
        self._env(self.kimi.disable_env, value)

    def openai_key(self, value: str | None) -> None:
        self._env("OPENAI_API_KEY", value)
        self.mp.setattr(self.kimi.settings, "openai_api_key", value)

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
    env._env(kimi.base_url_env, None)
    env._setting(kimi.settings_base_url, kimi.default_base_url)
    env.openai_key(None)
    return env


@pytest.fixture
def make_provider(kimi):
    """Builds the build's Kimi provider: ``make_provider(base_url, api_key=..., name=...)``."""

    def make(base_url: str | None, *, api_key: str | None = KIMI_KEY, name: str | None = None, category=None):
        return letta_compat.make_provider(kimi, name=name or kimi.provider_name, api_key=api_key, base_url=base_url, category=category)

    return make


@pytest.fixture(scope="session")
def letta_database(kimi, kit_home) -> Path:
    """The per-process database of the build (SQLite under this process's private HOME)."""
    letta_compat.prepare_database(kit_home, kimi.server_class)
    return kit_home


@pytest.fixture
def start_server(kimi, letta_database, kimi_env):
    """Starts a server of the build in the current Kimi environment: ``server, actor = await start_server()``.

    ``start_server(sync_models=False)`` skips the model sync into the database that 0.16
    servers run at startup (resolution lists models through the provider itself).
    """

    async def start(sync_models: bool = True):
        return await letta_compat.start_server(kimi.server_class, sync_models=sync_models)

    return start


@pytest.fixture
def construct_server(kimi, letta_database, kimi_env):
    """Constructs (only) a server of the build in the current Kimi environment."""
    return lambda: letta_compat.construct_server(kimi.server_class)


@pytest.fixture(autouse=True)
def _test_home(kit_home, monkeypatch):
    """A HOME of the test's own for anything resolved at run time (removed after the test)."""
    home = Path(tempfile.mkdtemp(prefix="test-home-", dir=kit_home))
    monkeypatch.setenv("HOME", str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)
