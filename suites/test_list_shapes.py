"""LIST: /models answers and entries of an unexpected shape (guide §3.2, §3.2.1).

Moonshot's answer is a JSON object whose ``data`` is a list of objects. What the
listing does when the answer or one of its entries is something else is part of
LIST-PREFIX (every entry that is not a Moonshot model is dropped, the others kept)
and LIST-FALLBACK (a /models call that did not give a model list falls back, with a
warning). Found by the mutation benchmark (bench/mutation.py): without these tests a
listing that stops at the first odd entry, or that iterates a ``null`` list, passed.
"""

from __future__ import annotations

import httpx
import pytest

from kimi_conformance.letta_compat import call
from suites.helpers import HARDCODED, PROBE_ENTRY, capture_notices, list_inline, new_notices

# entries that are not JSON objects: no id to read, nothing to list
NOT_OBJECTS = {"string": "moonshot-v1-32k", "null": None, "number": 8192, "array": ["kimi-k2.5"]}
AFTER = {"id": "kimi-k2.5", "object": "model", "owned_by": "moonshot", "context_length": 262144}
# 200 answers whose JSON is not a model list
NOT_A_MODEL_LIST = {"data-null": {"object": "list", "data": None}, "json-array": [PROBE_ENTRY]}


@pytest.mark.behavior("LIST-PREFIX")
@pytest.mark.parametrize("odd", list(NOT_OBJECTS))
async def test_entries_that_are_not_objects_are_dropped(make_provider, moonshot, odd):
    """An entry that is not an object (a string, null, a number, a list) does not make the listing crash.

    Moonshot never sends such an entry, so the build may drop it (and list the entries
    around it) or fall back with its warning (CONTRACT.md, "How a behaviour is judged"):
    only an exception out of `list_llm_models_async()` is red.
    If this fails: skip entries that are not dicts (`if not isinstance(model, dict): continue`)
    instead of indexing them, or let the listing's failure handling fall back.
    """
    try:
        await list_inline(make_provider, moonshot, [PROBE_ENTRY, NOT_OBJECTS[odd], AFTER])
    except Exception as e:  # noqa: BLE001 - any exception is the crash this test is about
        pytest.fail(f"list_llm_models_async() raised {type(e).__name__} on a {odd} entry in data: {e}", pytrace=False)


@pytest.mark.behavior("LIST-FALLBACK")
@pytest.mark.parametrize("answer", list(NOT_A_MODEL_LIST))
async def test_an_answer_that_is_not_a_model_list_falls_back_with_a_warning(make_provider, moonshot, base_url, answer):
    """A 200 from /models whose JSON is not an object with a `data` list (`"data": null`, a bare array) gives the hardcoded list and a warning.

    If this fails: check the answer's shape inside the failure handling of the /models call
    (`isinstance(data, dict) and isinstance(data.get("data"), list)`, else raise and fall back
    with a warning), so the listing never iterates `None` or calls `.get` on a list.
    """
    moonshot.serve("models/current", base_url)
    with capture_notices() as baseline:
        await call(make_provider(base_url).list_llm_models_async)
    moonshot.inject("GET", f"{base_url}/models", lambda request: httpx.Response(200, json=NOT_A_MODEL_LIST[answer]))
    with capture_notices() as seen:
        configs = await call(make_provider(base_url).list_llm_models_async)
    assert {c.model: c.context_window for c in configs} == HARDCODED
    assert new_notices(baseline, seen), f"falling back after a 200 answer that is not a model list ({answer}) must warn"
