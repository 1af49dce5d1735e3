"""Small assertions shared by the suites (no fixtures here)."""

from __future__ import annotations

import itertools
import logging
import warnings
from contextlib import contextmanager

import httpx
import pytest

from kimi_conformance import letta_compat
from kimi_conformance.cassette_needs import ENTRY_NEEDS
from kimi_conformance.cassette_needs import kept as kept_by_contract

# Both Moonshot platforms: the China one (the default) and the international one.
BASE_URLS = {"cn": "https://api.moonshot.cn/v1", "ai": "https://api.moonshot.ai/v1"}
# Listing also runs behind an OpenAI-compatible gateway on a host of its own (a company's LLM
# gateway, LiteLLM, One API ...): LIST-PREFIX filters by id "whatever the base URL". A name under
# the reserved .example domain, not loopback: should a request ever escape the replay, the
# socket guard refuses its DNS lookup, while loopback (the REST stand-ins) is let through.
GATEWAY_BASE_URL = "https://llm-gateway.internal.example/v1"
LISTING_BASE_URLS = {**BASE_URLS, "gateway": GATEWAY_BASE_URL}

# Deliberately fake keys: replay never needs a real one, and these can never leak one.
KIMI_KEY = "sk-kit-replay-kimi-0123456789abcdef"
OTHER_KIMI_KEY = "sk-kit-replay-kimi-user-stored-9876"
OPENAI_KEY = "sk-kit-replay-openai-must-not-reach-moonshot"

HARDCODED = {
    "moonshot-v1-8k": 8192,
    "moonshot-v1-32k": 32768,
    "moonshot-v1-128k": 131072,
    "kimi-k2-0905-preview": 262144,
    "kimi-k2-0711-preview": 131072,
    "kimi-k2-turbo-preview": 262144,
    "kimi-thinking-preview": 131072,
    "kimi-latest": 131072,
}


def by_model(configs) -> dict:
    return {c.model: c for c in configs}


# The contract's own examples of ids the filter drops (LIST-PREFIX; an entry with no id is the other one).
CONTRACT_FOREIGN_IDS = ["gpt-4o", "moonshotai/kimi-k2", "Kimi-K2", "moonshot", "abab6.5"]
# An entry of the kit's own inline /models answers (never expected in a served cassette).
PROBE_ENTRY = {"id": "moonshot-v1-8k", "object": "model", "owned_by": "moonshot", "context_length": 8192}


def served_entries(cassette) -> list[dict]:
    """The entries of a served /models answer the contract keeps, in the answer's order.

    In live mode the served cassette's bodies are what the live API delivered, so read
    them after the build's listing request.
    """
    return [e for body in cassette.json_bodies("/models") if isinstance(body, dict) for e in body.get("data") or [] if kept_by_contract(e)]


def contract_ids(cassette) -> set[str]:
    """The ids of a cassette's /models answer that the contract keeps."""
    return {e["id"] for e in served_entries(cassette)}


def served_ids(cassette, need: str = "any", *, behavior: str) -> list[str]:
    """The ids of the served answer that fit ``need``; none is a broken input, not a verdict.

    A cassette folder that lacks what a behaviour needs would leave it unjudged: in replay
    that stops the run (exit 4, one line naming the cassette); in live mode the test skips
    saying what the live list lacks. ``need`` is a key of the one needs table,
    ``kimi_conformance.cassette_needs.ENTRY_NEEDS``; its ``NEEDS`` says which cassette
    must hold it, checked before any test.
    """
    entry_need = ENTRY_NEEDS[need]
    ids = [e["id"] for e in served_entries(cassette) if entry_need.test(e)]
    if not ids:
        lacking(cassette, entry_need.what, behavior)
    return ids


def pick_id(cassette, configs, need: str = "any", *, behavior: str, prefer: str | None = None) -> str:
    """The first id of the served answer that fits ``need`` and that the build listed
    (``prefer`` first, when it is one of them).

    Which ids are listed is LIST-PREFIX's verdict: the test skips when none of them is.
    """
    ids = served_ids(cassette, need, behavior=behavior)
    listed_ids = {c.model for c in configs}
    for model_id in sorted(ids, key=lambda i: i != prefer):
        if model_id in listed_ids:
            return model_id
    pytest.skip(f"precondition not met: none of {ids} was listed (judged by LIST-PREFIX)")


def lacking(cassette, what: str, behavior: str):
    from kimi_conformance.live_transport import LiveCassette
    from kimi_conformance.replay import CassetteError

    if isinstance(cassette, LiveCassette):
        pytest.skip(f"the live /models answer lacks {what}: {behavior} cannot be judged on it")
    raise CassetteError(f"cassette {cassette.path}: its /models answer lacks {what}, which {behavior} needs")


def recorded_model(moonshot, name: str) -> str | None:
    """The model the chat cassette ``name`` was recorded for (its request body), if any.

    A chat test prefers it among the served ids: ``--record`` keeps a live answer only for
    the model the cassette holds.
    """
    import json

    from kimi_conformance.replay import CassetteError, cassette_path, load_cassette

    try:
        cassette = load_cassette(cassette_path(name, moonshot.cassette_dir))
    except CassetteError:  # said once by the input check before any test
        return None
    for interaction in cassette.interactions:
        try:
            return json.loads(interaction.request_body)["model"]
        except (ValueError, TypeError, KeyError):
            continue
    return None  # no recorded model: no preference


def serve_models(moonshot, base_url: str, data, *, status: int = 200) -> None:
    """Answer ``GET {base_url}/models`` with an inline body (``{"object": "list", "data": data}``
    for a list, else ``data`` itself): the replay serves any body, in live mode too."""
    body = {"object": "list", "data": data} if isinstance(data, list) else data
    moonshot.inject("GET", f"{base_url.rstrip('/')}/models", lambda request: httpx.Response(status, json=body))


_PROBES = itertools.count()


def probe_url() -> str:
    """A base URL of its own for one inline answer (the filter does not depend on the host)."""
    return f"https://probe-{next(_PROBES)}.kit-gateway.test/v1"


async def list_inline(make_provider, moonshot, data) -> list:
    """What the build lists through ``list_llm_models_async()`` for an inline /models answer."""
    url = probe_url()
    serve_models(moonshot, url, data)
    return await letta_compat.call(make_provider(url).list_llm_models_async)


async def filter_drops_every_entry(make_provider, moonshot, cassette) -> None:
    """Precondition of the nothing-usable fallback: the build's listing drops each entry of the cassette.

    Each entry is served beside a Moonshot id; if the build keeps it (or fails on it), the
    answer was not "nothing usable" for this build, and LIST-PREFIX is the judge.
    """
    for body in cassette.json_bodies("/models"):
        for e in body.get("data", []):
            try:
                kept = {c.model for c in await list_inline(make_provider, moonshot, [PROBE_ENTRY, e])}
            except Exception as exc:  # noqa: BLE001 - any failure on the entry is LIST-PREFIX's
                pytest.skip(f"precondition not met: listing fails on {e.get('id')!r} ({type(exc).__name__}; judged by LIST-PREFIX)")
            if kept != {PROBE_ENTRY["id"]}:
                pytest.skip(f"precondition not met: the listing keeps {sorted(kept - {PROBE_ENTRY['id']})} (judged by LIST-PREFIX)")


def from_the_api(configs, cassette):
    """Precondition: ``configs`` hold exactly the cassette's Moonshot ids (no fallback, nothing foreign).

    Which ids are kept is LIST-PREFIX's verdict, and whether a fallback happens is
    LIST-FALLBACK's; behaviours about the listed configs themselves skip otherwise.
    """
    got, want = {c.model for c in configs}, contract_ids(cassette)
    if got != want:
        pytest.skip(
            f"precondition not met: the listing of {cassette.path.name} is not its Moonshot ids "
            f"(judged by LIST-PREFIX / LIST-FALLBACK): extra {sorted(got - want)}, missing {sorted(want - got)}"
        )
    return configs


def kimi_typed_providers(kimi, server) -> list:
    """The server's enabled providers of the Kimi type, whatever their name (the name is ENABLE-KEY's question)."""
    return [p for p in server._enabled_providers if getattr(p, "provider_type", None) == kimi.provider_type]


# -- roles a build may lack (binding: role = false) -------------------------------------


def absent(kimi, role: str) -> bool:
    """True when the binding declares ``role`` absent in this build."""
    check = getattr(kimi, "absent", None)
    return bool(check is not None and check(role))


def require(kimi, *roles: str) -> None:
    """The behaviour needs these roles: a role the build lacks fails it with the binding's one line."""
    for role in roles:
        if absent(kimi, role):
            pytest.fail(kimi.absence(role), pytrace=False)


class Notices:
    """Python warnings and WARNING-or-worse log records seen inside a ``capture()`` block."""

    def __init__(self):
        self.messages: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.messages)


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"log {record.name}: {record.getMessage()}")


@contextmanager
def capture_notices():
    notices = Notices()
    handler = _Collect(notices.messages)
    root = logging.getLogger()
    # Letta's loggers do not all propagate to root: listen on every existing logger too.
    loggers = [root] + [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger) and not lg.propagate]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield notices
        notices.messages.extend(f"warning {w.category.__name__}: {w.message}" for w in caught)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def new_notices(baseline: Notices, seen: Notices) -> list[str]:
    """Notices in ``seen`` that a normal, successful listing does not also produce."""
    ordinary = set(baseline.messages)
    return [m for m in seen.messages if m not in ordinary]
