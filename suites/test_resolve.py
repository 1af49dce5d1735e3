"""RESOLVE: from handle to model config, on a real server of the build (guide §3.1.1–§3.1.3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from kimi_conformance import letta_compat
from kimi_conformance.letta_compat import call, chat_step, default_base_url, unknown_provider_errors
from suites.helpers import KIMI_KEY, OPENAI_KEY, OTHER_KIMI_KEY, served_ids

QUESTION = "What's the weather in Beijing?"


@dataclass
class KimiServer:
    server: object
    actor: object
    listing: list  # what the build's provider lists at base_url (to tell LIST-* from RESOLVE-*)
    ids: list[str]  # the served ids the build lists, in the answer's order


@pytest.fixture
async def kimi_server(kimi, kimi_env, moonshot, base_url, start_server, make_provider) -> KimiServer:
    """A started server with Kimi enabled at ``base_url``, whose /models is the folder's ``models/current``.

    The server starts as a deployment's would (0.16 syncs the models of its providers into
    the database at startup; a build may resolve handles from them). ``ids`` are the
    served ids the build lists: resolution is only judged for those (LIST-PREFIX otherwise).
    """
    served = moonshot.serve("models/current", base_url)
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)
    server, actor = await start_server()
    enabled = [p for p in await call(server.get_enabled_providers_async, actor) if p.name == kimi.provider_name]
    if not enabled or (getattr(enabled[0], "base_url", None) or "").rstrip("/") != base_url:
        found = [(p.name, getattr(p, "base_url", None)) for p in enabled]
        # the server's startup may already have listed models at the wrong URL: those
        # unanswered requests are this unmet precondition, not a replay problem
        moonshot.misses.clear()
        pytest.skip(f"precondition not met: no enabled provider {kimi.provider_name!r} at {base_url} ({found}; judged by ENABLE-KEY)")
    listing = await call(make_provider(base_url).list_llm_models_async)
    listed_ids = {c.model for c in listing}
    ids = [m for m in served_ids(served, behavior="RESOLVE-HANDLE") if m in listed_ids]
    moonshot.requests.clear()
    return KimiServer(server, actor, listing, ids)


def resolvable(kimi_server: KimiServer, count: int = 1) -> list[str]:
    """Served ids the build lists (precondition of every resolution: judged by LIST-PREFIX)."""
    if not kimi_server.ids:
        pytest.skip("precondition not met: the provider lists none of the served ids (judged by LIST-PREFIX)")
    return kimi_server.ids[:count] if count else kimi_server.ids


@pytest.mark.behavior("RESOLVE-HANDLE")
async def test_handle_resolves_to_that_models_config(kimi, kimi_server):
    """`get_llm_config_from_handle_async(actor, handle="kimi/<id>")` returns the config of that id, for every served id.

    If this fails: split the handle once on "/", find the provider by name among the
    enabled providers, list its models and return the config whose handle matches.
    """
    resolved = {}
    for model_id in resolvable(kimi_server, count=0):
        handle = f"{kimi.provider_name}/{model_id}"
        config = await call(kimi_server.server.get_llm_config_from_handle_async, actor=kimi_server.actor, handle=handle)
        resolved[handle] = config.model
    assert resolved == {f"{kimi.provider_name}/{m}": m for m in kimi_server.ids}


@pytest.mark.behavior("RESOLVE-HANDLE")
async def test_model_match_is_used_when_no_handle_matches(kimi, kimi_server, monkeypatch):
    """When no listed handle equals the requested one, the config whose `model` is the part after the first "/" is used.

    If this fails: after filtering on `config.handle == handle`, retry with
    `config.model == model_name` before raising `HandleNotFoundError`.
    """
    (model_id,) = resolvable(kimi_server)
    # the provider hands out handles under another spelling, as handle overrides do
    original = kimi.provider_class.get_handle
    monkeypatch.setattr(kimi.provider_class, "get_handle", lambda self, m, *a, **k: original(self, m, *a, **k) + "-override")
    config = await call(kimi_server.server.get_llm_config_from_handle_async, actor=kimi_server.actor, handle=f"{kimi.provider_name}/{model_id}")
    assert config.model == model_id


@pytest.mark.behavior("RESOLVE-UNKNOWN-MODEL")
async def test_unknown_model_raises_handle_not_found_with_the_handles(kimi, kimi_server):
    """An unknown model raises `HandleNotFoundError` naming the handle and listing the available handles.

    If this fails: raise `HandleNotFoundError(handle, [c.handle for c in all_llm_configs])`
    (not `ValueError`, not an empty list).
    """
    server, actor, listing = kimi_server.server, kimi_server.actor, kimi_server.listing
    handle = f"{kimi.provider_name}/kimi-k9-does-not-exist"
    with pytest.raises(kimi.handle_not_found_error) as raised:
        await call(server.get_llm_config_from_handle_async, actor=actor, handle=handle)
    message = str(raised.value)
    assert handle in message
    available = [c.handle for c in listing]
    assert available and any(h in message for h in available), f"the error should list available handles, got: {message}"


@pytest.mark.behavior("RESOLVE-UNKNOWN-PROVIDER")
async def test_unknown_provider_raises_value_error_naming_the_supported(kimi, kimi_server):
    """An unknown provider name raises `ValueError` (on Letta >= 0.12 also the server's `LettaInvalidArgumentError`) naming the supported providers.

    If this fails: in `get_provider_from_name_async`, raise
    `ValueError(f"Provider {name} is not supported (supported providers: ...)")`.
    """
    server, actor = kimi_server.server, kimi_server.actor
    with pytest.raises(letta_compat.unknown_provider_errors()) as raised:
        await call(server.get_llm_config_from_handle_async, actor=actor, handle="no-such-provider/kimi-k2.6")
    message = str(raised.value)
    assert "no-such-provider" in message
    assert kimi.provider_name in message and "letta" in message, f"supported providers not named: {message}"


@pytest.mark.behavior("RESOLVE-CACHE")
async def test_cached_lookup_resolves_once(kimi, kimi_server, moonshot, base_url):
    """Resolving the same handle twice through the server's cached path sends at most one /models request.

    The cached path is the guide's `get_cached_llm_config_async` where the build has it, else
    the server's resolution itself (a build resolving from models synced at startup sends none).
    If this fails: key a cache on the arguments (`make_key(**kwargs)`) and return the cached
    config on the second call instead of resolving (and listing) again.
    """
    server, actor = kimi_server.server, kimi_server.actor
    (model_id,) = resolvable(kimi_server)
    resolve = letta_compat.cached_resolution(server)
    handle = f"{kimi.provider_name}/{model_id}"
    first = await call(resolve, actor=actor, handle=handle)
    second = await call(resolve, actor=actor, handle=handle)
    assert first.model == second.model == model_id
    sent = moonshot.to(f"{base_url}/models", "GET")
    assert len(sent) <= 1, f"resolving {handle} twice sent {len(sent)} /models requests"


@pytest.fixture
async def stored_kimi_provider(kimi, kimi_server, moonshot, base_url):
    """A Kimi provider stored by the user (category byok) with a key of its own; deleted afterwards.

    Where the build's ``ProviderCreate`` has no ``base_url`` (before 0.11), the stored
    provider lists its models at its class's default URL: the replay answers there too.
    """
    server, actor = kimi_server.server, kimi_server.actor
    name = f"my-kimi-{uuid.uuid4().hex[:8]}"
    stored, lacking = await letta_compat.store_provider(server, actor, name=name, provider_type=kimi.provider_type, api_key=OTHER_KIMI_KEY, base_url=base_url)
    if "base_url" in lacking and default_base_url(kimi.provider_class):
        moonshot.serve("models/current", default_base_url(kimi.provider_class))
    try:
        yield name
    finally:
        await letta_compat.delete_stored_provider(server, actor, stored)


@pytest.mark.behavior("RESOLVE-BYOK")
async def test_stored_kimi_provider_is_listed_beside_the_environment_one(kimi, kimi_server, stored_kimi_provider):
    """A Kimi provider stored by a user (category byok) is listed beside the environment one.

    If this fails: `get_enabled_providers_async` should return the environment providers
    and the stored ones (`provider_manager.list_providers_async` cast to their subtype),
    with `cast_to_subtype` knowing the Kimi type.
    """
    by_name = {p.name: p for p in await call(kimi_server.server.get_enabled_providers_async, kimi_server.actor)}
    assert kimi.provider_name in by_name, "the environment Kimi provider disappeared"
    assert stored_kimi_provider in by_name, "the stored Kimi provider is not listed"
    assert by_name[stored_kimi_provider].provider_category == kimi.provider_category_byok
    assert isinstance(by_name[stored_kimi_provider], kimi.provider_class), "a stored Kimi provider should come back as the Kimi provider class"


@pytest.mark.behavior("ROUTE-KEY")
@pytest.mark.parametrize("sync", [False, True], ids=["request_async", "request"])
async def test_a_stored_providers_model_is_called_with_its_own_key(kimi, kimi_env, kimi_server, stored_kimi_provider, moonshot, base_url, sync):
    """A model of a user's stored Kimi provider reaches Moonshot with that provider's key, not the deployment's (nor the OpenAI key).

    Judged on the chat request sent through the agent loop's path (the factory on the
    config's endpoint type, then the client's `request_async`; or its `request`, which
    Letta's legacy agent and summarizer call through `send_llm_request`), where a stored
    provider works (RESOLVE-BYOK) and its handle resolves to its own config. The `request`
    case is not applicable on a Letta line whose own synchronous stored-provider lookup
    (`get_byok_overrides`) cannot run.
    If this fails: for a config whose `provider_category` is `byok`, the client must take
    the key from the stored provider (`get_byok_overrides_async`; `get_byok_overrides` on
    the sync path) before the settings or `KIMI_API_KEY`; otherwise a user's requests are
    billed to the deployment's key.
    """
    server, actor = kimi_server.server, kimi_server.actor
    stored = [p for p in await call(server.get_enabled_providers_async, actor) if p.name == stored_kimi_provider]
    if not stored or stored[0].provider_category != kimi.provider_category_byok or not isinstance(stored[0], kimi.provider_class):
        pytest.skip("precondition not met: the stored Kimi provider is not enabled as a byok Kimi provider (judged by RESOLVE-BYOK)")
    (model_id,) = resolvable(kimi_server)
    handle = f"{stored_kimi_provider}/{model_id}"
    try:
        config = await call(server.get_llm_config_from_handle_async, actor=actor, handle=handle)
    except Exception as e:
        pytest.skip(f"precondition not met: {handle} does not resolve ({type(e).__name__}; judged by RESOLVE-BYOK)")
    if config.provider_category != kimi.provider_category_byok or config.provider_name != stored_kimi_provider:
        pytest.skip(f"precondition not met: {handle} resolved to a config of {config.provider_name!r} "
                    f"({config.provider_category}), not of the stored provider (judged by LIST-FIELDS)")
    if sync and (why := letta_compat.sync_stored_key_lookup_unavailable(server, actor, stored_kimi_provider, OTHER_KIMI_KEY)):
        pytest.skip(f"not applicable on this Letta line: {why}")
    kimi_env.openai_key(OPENAI_KEY)
    url = letta_compat.stored_provider_url(kimi.provider_class, base_url)  # before 0.11: the class's default URL
    moonshot.serve("chat/tool-calls", url)
    moonshot.requests.clear()
    client = await call(kimi.client_factory, provider_type=config.model_endpoint_type, actor=actor)
    try:
        await chat_step(client, config, text=QUESTION, sync=sync)
    except Exception:  # noqa: BLE001 - what reached Moonshot is the verdict, below
        pass
    sent = moonshot.to(f"{url}/chat/completions", "POST")
    assert sent, f"nothing reached {url}/chat/completions (requests: {[r.method + ' ' + r.url for r in moonshot.requests]})"
    assert sent[0].bearer != OPENAI_KEY, "the OpenAI key was sent to Moonshot for a stored Kimi provider's model"
    assert sent[0].bearer == OTHER_KIMI_KEY, "the stored provider's key must be used, not the deployment's"
