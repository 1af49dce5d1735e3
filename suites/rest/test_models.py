"""REST-MODELS and HANDLE-FORMAT over HTTP: what ``GET /v1/models/`` of a running server lists."""

from __future__ import annotations

import pytest

from suites.helpers import CONTRACT_FOREIGN_IDS

pytestmark = pytest.mark.rest


@pytest.mark.behavior("REST-MODELS")
def test_models_lists_kimi_handles_with_their_context_windows(letta_with_key, kimi, configured, served_windows):
    """A server started with a Kimi key lists ``kimi/<id>`` with the API's ``context_length`` for every id Moonshot serves.

    If it fails: the build's ``GET /v1/models/`` must include each model its Kimi provider
    lists, under the handle ``<provider name>/<id>`` and with the context window the
    ``/models`` entry gives (LIST-PREFIX, LIST-CONTEXT, HANDLE-FORMAT, as a client sees them).
    """
    configured(letta_with_key, judged_here=True)
    listed = {m.get("handle"): m.get("context_window") for m in letta_with_key.llm_models()}
    expected = {f"{kimi.provider_name}/{model_id}": window for model_id, window in served_windows.items()}
    wrong = {handle: (window, listed.get(handle, "not listed")) for handle, window in expected.items() if listed.get(handle) != window}
    assert not wrong, (
        f"GET {letta_with_key.url}/v1/models/ does not list these Kimi handles with their context windows "
        f"(handle: (expected, listed)): {wrong}; Kimi handles it lists: {sorted(h for h in listed if str(h).startswith(kimi.provider_name + '/'))}"
    )


@pytest.mark.behavior("REST-MODELS")
def test_models_lists_no_kimi_handle_with_the_flag(key_alone_lists_kimi, letta_with_flag, kimi):
    """A server started with the key and the disabling flag lists no Kimi model.

    Judged only where the key alone makes Kimi models visible (``key_alone_lists_kimi``).

    If it fails: with the flag set, the build must not enable the Kimi provider, so
    ``GET /v1/models/`` has no ``<provider name>/...`` handle and nothing from Moonshot.
    """
    kimi_models = [m.get("handle") for m in letta_with_flag.llm_models()
                   if str(m.get("handle", "")).startswith(kimi.provider_name + "/") or letta_with_flag.from_standin(m)]
    assert not kimi_models, f"with {kimi.disable_env}=1, GET {letta_with_flag.url}/v1/models/ still lists {kimi_models}"


@pytest.mark.behavior("HANDLE-FORMAT")
def test_listed_kimi_handles_are_provider_slash_model(letta_with_key, kimi, configured):
    """Every model the server lists from Moonshot has the handle ``<provider name>/<last segment of its id>``.

    If it fails: ``get_handle`` must return ``f"{provider.name}/{model.split('/')[-1]}"``;
    clients create agents with these handles.
    """
    entries = configured(letta_with_key)
    wrong = {m.get("model"): m.get("handle") for m in entries if m.get("handle") != f"{kimi.provider_name}/{str(m.get('model')).split('/')[-1]}"}
    assert not wrong, f"GET {letta_with_key.url}/v1/models/ lists Kimi models with handles that are not {kimi.provider_name}/<id> (model: handle): {wrong}"


@pytest.mark.behavior("LIST-PREFIX")
def test_models_behind_a_non_moonshot_host_lists_no_foreign_id(letta_with_key, configured):
    """Behind a base URL that is not Moonshot's (the stand-in on loopback, as a gateway would be), no foreign id is listed.

    The stand-in serves the contract's foreign ids (``gpt-4o``, ``moonshotai/kimi-k2``,
    ``Kimi-K2`` ...) beside the cassette's Kimi ids. If it fails: filter on the ids
    (``moonshot-``/``kimi-`` prefixes, case-sensitive) whatever the base URL, never only
    when the URL names Moonshot's host.
    """
    foreign = sorted({str(m.get("model")) for m in configured(letta_with_key)} & set(CONTRACT_FOREIGN_IDS))
    assert not foreign, (
        f"GET {letta_with_key.url}/v1/models/ lists foreign ids served by the stand-in at {letta_with_key.standin.url}: {foreign}"
    )
