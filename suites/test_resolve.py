"""RESOLVE: from handle to model config, on a real server of the build (guide §3.1.1–§3.1.3)."""

from __future__ import annotations

import uuid

import pytest

from kimi_conformance.letta_compat import default_base_url, maybe_await, provider_create, unknown_provider_errors
from suites.helpers import KIMI_KEY, OTHER_KIMI_KEY, listed

RESOLVABLE = ["moonshot-v1-32k", "kimi-k2.6"]


@pytest.fixture
async def kimi_server(kimi, kimi_env, moonshot, base_url, start_server, make_provider):
    """A started server with Kimi enabled at ``base_url``, whose /models is the 2026 cassette.

    Yields ``(server, actor, listing)``; ``listing`` is what the build's provider lists
    there, so tests can tell a listing problem (LIST-*) from a resolution problem.
    """
    moonshot.serve("models/current", base_url)
    kimi_env.api_key(KIMI_KEY)
    kimi_env.base_url(base_url)
    # Resolution lists models through the provider (RESOLVE-CACHE counts those requests):
    # the startup's model sync into the database (0.16) is not needed here.
    server, actor = await start_server(sync_models=False)
    enabled = [p for p in await server.get_enabled_providers_async(actor) if p.name == kimi.provider_name]
    if not enabled or getattr(enabled[0], "base_url", "").rstrip("/") != base_url:
        found = [(p.name, getattr(p, "base_url", None)) for p in enabled]
        # the server's startup may already have listed models at the wrong URL: those
        # unanswered requests are this unmet precondition, not a replay problem
        moonshot.misses.clear()
        pytest.skip(f"precondition not met: no enabled provider {kimi.provider_name!r} at {base_url} ({found}; judged by ENABLE-KEY)")
    listing = await make_provider(base_url).list_llm_models_async()
    moonshot.requests.clear()
    return server, actor, listing


@pytest.mark.behavior("RESOLVE-HANDLE")
@pytest.mark.parametrize("model_id", RESOLVABLE)
async def test_handle_resolves_to_that_models_config(kimi, kimi_server, model_id):
    """`get_llm_config_from_handle_async(actor, handle="kimi/<id>")` returns the config of that id.

    If this fails: split the handle once on "/", find the provider by name among the
    enabled providers, list its models and return the config whose handle matches.
    """
    server, actor, listing = kimi_server
    listed(listing, model_id)
    handle = f"{kimi.provider_name}/{model_id}"
    config = await server.get_llm_config_from_handle_async(actor=actor, handle=handle)
    assert config.model == model_id, f"{handle} resolved to {config.model}"


@pytest.mark.behavior("RESOLVE-HANDLE")
async def test_model_match_is_used_when_no_handle_matches(kimi, kimi_server, monkeypatch):
    """When no listed handle equals the requested one, the config whose `model` is the part after the first "/" is used.

    If this fails: after filtering on `config.handle == handle`, retry with
    `config.model == model_name` before raising `HandleNotFoundError`.
    """
    server, actor, listing = kimi_server
    listed(listing, "moonshot-v1-32k")
    # the provider hands out handles under another spelling, as handle overrides do
    original = kimi.provider_class.get_handle
    monkeypatch.setattr(kimi.provider_class, "get_handle", lambda self, m, *a, **k: original(self, m, *a, **k) + "-override")
    config = await server.get_llm_config_from_handle_async(actor=actor, handle=f"{kimi.provider_name}/moonshot-v1-32k")
    assert config.model == "moonshot-v1-32k"


@pytest.mark.behavior("RESOLVE-UNKNOWN-MODEL")
async def test_unknown_model_raises_handle_not_found_with_the_handles(kimi, kimi_server):
    """An unknown model raises `HandleNotFoundError` naming the handle and listing the available handles.

    If this fails: raise `HandleNotFoundError(handle, [c.handle for c in all_llm_configs])`
    (not `ValueError`, not an empty list).
    """
    server, actor, listing = kimi_server
    handle = f"{kimi.provider_name}/kimi-k9-does-not-exist"
    with pytest.raises(kimi.handle_not_found_error) as raised:
        await server.get_llm_config_from_handle_async(actor=actor, handle=handle)
    message = str(raised.value)
    assert handle in message
    available = [c.handle for c in listing]
    assert available and any(h in message for h in available), f"the error should list available handles, got: {message}"


@pytest.mark.behavior("RESOLVE-UNKNOWN-PROVIDER")
async def test_unknown_provider_raises_value_error_naming_the_supported(kimi, kimi_server):
    """An unknown provider name raises `ValueError` naming the supported providers
    (on Letta >= 0.12 the server's own `LettaInvalidArgumentError` counts as well).

    If this fails: in `get_provider_from_name_async`, raise
    `ValueError(f"Provider {name} is not supported (supported providers: ...)")`.
    """
    server, actor, _ = kimi_server
    with pytest.raises(unknown_provider_errors()) as raised:
        await server.get_llm_config_from_handle_async(actor=actor, handle="no-such-provider/kimi-k2.6")
    message = str(raised.value)
    assert "no-such-provider" in message
    assert kimi.provider_name in message and "letta" in message, f"supported providers not named: {message}"


@pytest.mark.behavior("RESOLVE-CACHE")
async def test_cached_lookup_resolves_once(kimi, kimi_server, moonshot, base_url):
    """`get_cached_llm_config_async` with the same arguments twice resolves once and queries /models at most once.

    If this fails: key a cache on the arguments (`make_key(**kwargs)`) and return the cached
    config on the second call instead of resolving (and listing) again.
    """
    server, actor, listing = kimi_server
    listed(listing, "moonshot-v1-32k")
    calls = []
    resolve = server.get_llm_config_from_handle_async

    async def counting(*args, **kwargs):
        calls.append(kwargs.get("handle"))
        return await resolve(*args, **kwargs)

    server.get_llm_config_from_handle_async = counting
    handle = f"{kimi.provider_name}/moonshot-v1-32k"
    first = await server.get_cached_llm_config_async(actor=actor, handle=handle)
    second = await server.get_cached_llm_config_async(actor=actor, handle=handle)
    assert first.model == second.model == "moonshot-v1-32k"
    assert len(calls) == 1, f"resolved {len(calls)} times for the same arguments"
    assert len(moonshot.to(f"{base_url}/models", "GET")) <= 1


@pytest.fixture
async def stored_kimi_provider(kimi, kimi_server, moonshot, base_url):
    """A Kimi provider stored by the user (category byok) with a key of its own; deleted afterwards.

    Where the build's ``ProviderCreate`` has no ``base_url`` (before 0.11), the stored
    provider lists its models at its class's default URL: the replay answers there too.
    """
    from letta.schemas.providers import ProviderCreate

    server, actor, _ = kimi_server
    name = f"my-kimi-{uuid.uuid4().hex[:8]}"
    request, lacking = provider_create(ProviderCreate, name=name, provider_type=kimi.provider_type, api_key=OTHER_KIMI_KEY, base_url=base_url)
    stored = await server.provider_manager.create_provider_async(request, actor=actor)
    if "base_url" in lacking and default_base_url(kimi.provider_class):
        moonshot.serve("models/current", default_base_url(kimi.provider_class))
    try:
        yield name
    finally:
        await server.provider_manager.delete_provider_by_id_async(stored.id, actor=actor)


@pytest.mark.behavior("RESOLVE-BYOK")
async def test_stored_kimi_provider_is_listed_beside_the_environment_one(kimi, kimi_server, stored_kimi_provider):
    """A Kimi provider stored by a user (category byok) is listed beside the environment one.

    If this fails: `get_enabled_providers_async` should return the environment providers
    and the stored ones (`provider_manager.list_providers_async` cast to their subtype),
    with `cast_to_subtype` knowing the Kimi type.
    """
    server, actor, _ = kimi_server
    by_name = {p.name: p for p in await server.get_enabled_providers_async(actor)}
    assert kimi.provider_name in by_name, "the environment Kimi provider disappeared"
    assert stored_kimi_provider in by_name, "the stored Kimi provider is not listed"
    assert by_name[stored_kimi_provider].provider_category == kimi.provider_category_byok
    assert isinstance(by_name[stored_kimi_provider], kimi.provider_class), "a stored Kimi provider should come back as the Kimi provider class"


@pytest.mark.behavior("ROUTE-KEY")
async def test_a_stored_providers_model_is_called_with_its_own_key(kimi, kimi_server, stored_kimi_provider):
    """A model of a user's stored Kimi provider is called with that provider's key, not the environment's.

    Checked on `_prepare_client_kwargs_async`, the path Letta's agent loop takes (upstream
    0.16.8's synchronous BYOK lookup has no database session at all).
    If this fails: for a config whose `provider_category` is `byok`, `KimiClient` must take
    the key from the stored provider (`get_byok_overrides_async`) before the settings or
    `KIMI_API_KEY`; otherwise a user's requests are billed to the deployment's key.
    """
    server, actor, _ = kimi_server
    if stored_kimi_provider not in {p.name for p in await server.get_enabled_providers_async(actor)}:
        pytest.skip("precondition not met: the stored Kimi provider is not enabled (judged by RESOLVE-BYOK)")
    handle = f"{stored_kimi_provider}/moonshot-v1-32k"
    try:
        config = await server.get_llm_config_from_handle_async(actor=actor, handle=handle)
    except Exception as e:
        pytest.skip(f"precondition not met: {handle} does not resolve ({type(e).__name__}; judged by RESOLVE-*)")
    if config.provider_category != kimi.provider_category_byok or config.provider_name != stored_kimi_provider:
        pytest.skip(f"precondition not met: {handle} resolved to a config of {config.provider_name!r} "
                    f"({config.provider_category}), not of the stored provider (judged by LIST-FIELDS)")
    kwargs = await maybe_await(kimi.client_class(actor=actor)._prepare_client_kwargs_async(config))
    assert kwargs["api_key"] == OTHER_KIMI_KEY, "the stored provider's key must be used"
