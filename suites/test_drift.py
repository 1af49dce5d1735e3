"""DRIFT: the recorded world against the live one (live mode only, INFO; CONTRACT.md "DRIFT")."""

from __future__ import annotations

import pytest

from kimi_conformance import drift


@pytest.mark.behavior("DRIFT-MODELS")
async def test_fallback_ids_against_the_live_model_list(live_api, make_provider, moonshot, finding):
    """INFO: which ids of the build's hardcoded fallback the live /models no longer lists, and which live ids it lacks.

    Never fails on the outcome; it records both lists. A long list means the fallback (used
    whenever /models fails) offers retired models and hides current ones: refresh it.
    """
    # the fallback, as LIST-FALLBACK defines it: what listing without a key returns (no request)
    fallback = {c.model for c in await make_provider(live_api.base_url, api_key=None).list_llm_models_async()}
    data, lines = drift.model_drift(fallback, live_api.model_entries(), live_api.where)
    live_api.drift["models"] = data
    for line in lines:
        finding(line)


@pytest.mark.behavior("DRIFT-SHAPE")
def test_live_model_entries_against_the_cassettes(live_api, finding):
    """INFO: fields of the live /models entries that the cassettes lack, and fields of the current cassette the live entries lack.

    Never fails on the outcome; it records both lists. A field the cassettes lack is one
    the replayed suites never show the build: re-record (`--live --record`) or add it to
    fixtures/cassette_sources/synthesize.py.
    """
    data, lines = drift.shape_drift(live_api.model_entries(), drift.cassette_entries(live_api.cassette_dir))
    live_api.drift["shape"] = data
    for line in lines:
        finding(line)
