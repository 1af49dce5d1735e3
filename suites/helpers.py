"""Small assertions shared by the suites (no fixtures here)."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import pytest

# Both Moonshot platforms: the China one (the default) and the international one.
BASE_URLS = {"cn": "https://api.moonshot.cn/v1", "ai": "https://api.moonshot.ai/v1"}

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


def listed(configs, model_id: str):
    """The config listed for ``model_id``; when the listing dropped it, the test is not the judge.

    Whether an id is kept at all is LIST-PREFIX's verdict; other behaviours only judge
    what happens to ids that were kept, so they skip rather than fail twice.
    """
    found = by_model(configs).get(model_id)
    if found is None:
        pytest.skip(f"precondition not met: {model_id} was not listed (judged by LIST-PREFIX)")
    return found


# The contract's filter (LIST-PREFIX), used to state the preconditions of other behaviours.
CONTRACT_PREFIXES = ("moonshot-", "kimi-")
PROBE_ENTRY = {"id": "moonshot-v1-8k", "object": "model", "owned_by": "moonshot", "context_length": 8192}


def contract_ids(cassette) -> set[str]:
    """The ids of a cassette's /models answer that the contract keeps."""
    return {
        e["id"]
        for body in cassette.json_bodies("/models")
        for e in body.get("data", [])
        if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"].startswith(CONTRACT_PREFIXES)
    }


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


def filter_drops_every_entry(provider, cassette) -> None:
    """Precondition of the nothing-usable fallback: the build's filter drops each entry of the cassette.

    Each entry is listed beside a Moonshot id; if the build keeps it (or fails on it), the
    answer was not "nothing usable" for this build, and LIST-PREFIX is the judge.
    """
    for body in cassette.json_bodies("/models"):
        for e in body.get("data", []):
            try:
                kept = {c.model for c in provider._list_llm_models([PROBE_ENTRY, e])}
            except Exception as exc:  # noqa: BLE001 - any failure on the entry is LIST-PREFIX's
                pytest.skip(f"precondition not met: the filter fails on {e.get('id')!r} ({type(exc).__name__}; judged by LIST-PREFIX)")
            if kept != {PROBE_ENTRY["id"]}:
                pytest.skip(f"precondition not met: the filter keeps {sorted(kept - {PROBE_ENTRY['id']})} (judged by LIST-PREFIX)")


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
