"""ENABLE: provider enabling at server start (guide §3.1.4, §4.1.1).

Each test starts a server the way `letta server` does (the build's async start-up where
it has one: a build may enable providers there), on a fresh database.
"""

from __future__ import annotations

import pytest

from kimi_conformance.letta_compat import provider_key
from suites.helpers import BASE_URLS, KIMI_KEY, absent, kimi_typed_providers, require


async def started(start_server):
    """A server of the build, started in the current Kimi environment."""
    server, _ = await start_server()
    return server


def kimi_providers(kimi, server) -> list:
    """The enabled providers named like the contract's Kimi provider (what ENABLE-KEY promises)."""
    return [p for p in server._enabled_providers if p.name == kimi.provider_name]


@pytest.mark.behavior("ENABLE-KEY")
@pytest.mark.parametrize("configured", [None, *BASE_URLS], ids=["default-url", *[f"KIMI_BASE_URL={k}" for k in BASE_URLS]])
async def test_key_enables_a_base_kimi_provider(kimi, kimi_env, start_server, configured):
    """With `KIMI_API_KEY` set, the started server enables one provider named `kimi`, of type kimi, category base, with that key and base URL.

    If this fails: at server start (`SyncServer.__init__`, or its `init_async`), append
    `KimiProvider(name="kimi", api_key=model_settings.kimi_api_key, base_url=model_settings.kimi_base_url)`
    when the key is set, and read `KIMI_API_KEY` / `KIMI_BASE_URL` into `model_settings`.
    """
    require(kimi, "api_key_env", "settings_api_key")
    kimi_env.api_key(KIMI_KEY)
    expected_url = kimi.default_base_url
    if configured:
        expected_url = BASE_URLS[configured]
        kimi_env.base_url(expected_url)
    found = kimi_providers(kimi, await started(start_server))
    assert len(found) == 1, f"expected one enabled provider named {kimi.provider_name!r}, found {len(found)}"
    provider = found[0]
    assert provider.provider_type == kimi.provider_type
    assert provider.provider_category == kimi.provider_category_base
    assert provider_key(provider) == KIMI_KEY
    assert provider.base_url.rstrip("/") == expected_url


@pytest.mark.behavior("ENABLE-FLAG")
@pytest.mark.parametrize("flag", ["1", "true", "yes"])
async def test_disabling_flag_wins_over_the_key(kimi, kimi_env, key_enables, start_server, flag):
    """With `LETTA_DISABLE_KIMI_PROVIDER` set to a non-empty value, the server does not enable Kimi, even with a key.

    Judged only where the key alone enables the provider (ENABLE-KEY's verdict otherwise).
    If this fails: guard the enabling with `not os.getenv("LETTA_DISABLE_KIMI_PROVIDER")`
    (read at server start, not cached at import).
    """
    require(kimi, "disable_env")
    kimi_env.disable(flag)
    assert kimi_typed_providers(kimi, await started(start_server)) == []


@pytest.mark.behavior("ENABLE-FLAG")
async def test_empty_flag_counts_as_unset(kimi, kimi_env, key_enables, start_server):
    """An empty `LETTA_DISABLE_KIMI_PROVIDER` does not disable the provider.

    Judged only where the key alone enables the provider (ENABLE-KEY's verdict otherwise).
    If this fails: treat an empty value like an unset variable (`if not os.getenv(...)`).
    """
    require(kimi, "disable_env")
    kimi_env.disable("")
    assert len(kimi_typed_providers(kimi, await started(start_server))) == 1


@pytest.mark.behavior("ENABLE-FLAG")
@pytest.mark.parametrize("flag", ["0", "false"])
async def test_what_zero_and_false_do_is_reported(kimi, kimi_env, key_enables, start_server, finding, flag):
    """INFO: what `LETTA_DISABLE_KIMI_PROVIDER=0` / `=false` do (the guide's `os.getenv` test disables on them).

    Never fails on the outcome; it records it in the report (only where the key alone
    enables the provider: otherwise there is nothing to report about the flag; nor where
    the build has no flag, which the other ENABLE-FLAG tests fail on).
    """
    if absent(kimi, "disable_env"):
        pytest.skip(f"nothing to report: {kimi.absence('disable_env')} (judged by ENABLE-FLAG)")
    kimi_env.disable(flag)
    enabled = bool(kimi_typed_providers(kimi, await started(start_server)))
    finding(f"{kimi.disable_env}={flag} leaves the Kimi provider {'enabled' if enabled else 'disabled'}")


@pytest.mark.behavior("ENABLE-NOKEY")
async def test_no_key_no_provider_letta_remains(kimi, kimi_env, start_server):
    """Without a key the Kimi provider is not enabled, and the `letta` provider is still there.

    If this fails: only enable Kimi when `model_settings.kimi_api_key` is set, and keep
    the default `LettaProvider` in `_enabled_providers`.
    """
    server = await started(start_server)
    assert kimi_typed_providers(kimi, server) == []
    assert "letta" in [p.name for p in server._enabled_providers]
