"""What a cassette folder must hold for every MUST to be judged, checked once before any test.

A folder that lacks it (``--cassette-dir`` pointing at a re-recorded or hand-made set, or
the kit's own after an edit) would leave a MUST silently not-applicable while the verdict
says ``conformant``. Instead the run stops before any test with one line per missing
thing, naming the cassette, what it lacks and which behaviours need it (exit 4).

The needs are stated in contract terms (a kept id with ``context_length``, one without,
a chat reply with tool calls ...), never as particular ids: the suites take the ids they
need from the answer they are served.

This is the one needs table: ``ENTRY_NEEDS`` says what a test may need from a served
/models entry (the suites pick ids with it: ``suites.helpers.served_ids``, which in live
mode skips when the live list lacks it), and ``NEEDS`` says which cassette must hold what
for which behaviours, checked here before any test. A new need goes into both tables here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kimi_conformance.replay import Cassette, CassetteError, load_cassette

KEPT_PREFIXES = ("moonshot-", "kimi-")  # the contract's filter (LIST-PREFIX)


def _bodies(cassette: Cassette, path: str, status: int = 200) -> list:
    out = []
    for interaction in cassette.interactions:
        if interaction.path == path and interaction.status == status and interaction.body:
            try:
                out.append(json.loads(interaction.body))
            except ValueError:
                continue
    return out


def _entries(cassette: Cassette) -> list[dict]:
    return [e for body in _bodies(cassette, "/models") if isinstance(body, dict) and isinstance(body.get("data"), list)
            for e in body["data"] if isinstance(e, dict)]


def kept(entry) -> bool:
    """The contract's filter (LIST-PREFIX): an entry whose id starts with a kept prefix."""
    return isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"].startswith(KEPT_PREFIXES)


@dataclass(frozen=True)
class EntryNeed:
    test: Callable[[dict], bool]  # on a kept /models entry
    what: str  # how to say it


# What a test may need from a served /models answer: a kept entry that fits, and how to say it.
ENTRY_NEEDS = {
    "any": EntryNeed(lambda e: True, "a Moonshot model id"),
    "with-context": EntryNeed(lambda e: isinstance(e.get("context_length"), int), "an entry with context_length"),
    "without-context": EntryNeed(lambda e: "context_length" not in e, "an entry without context_length"),
    "thinking": EntryNeed(lambda e: e.get("supports_reasoning") is True, "a thinking model (supports_reasoning: true)"),
}


def _listing(need: str) -> Callable[[Cassette], bool]:
    """A 200 /models answer with a kept entry that fits ``ENTRY_NEEDS[need]``."""
    return lambda c: any(kept(e) and ENTRY_NEEDS[need].test(e) for e in _entries(c))


def _messages(cassette: Cassette) -> list[dict]:
    return [c.get("message") or {} for body in _bodies(cassette, "/chat/completions") if isinstance(body, dict)
            for c in body.get("choices") or [] if isinstance(c, dict)]


def _statuses(cassette: Cassette) -> set[int]:
    return {i.status for i in cassette.interactions}


@dataclass(frozen=True)
class Need:
    cassette: str  # relative name without .yaml; a trailing * matches every cassette with that prefix
    holds: str  # what it must hold, in contract terms
    behaviors: str  # the MUSTs that need it
    check: Callable[[Cassette], bool]


NEEDS = [
    Need("models/current", "a 200 /models answer with a kept id (moonshot-/kimi-) that has context_length",
         "LIST-CONTEXT, LIST-FIELDS, AUTH-OK, RESOLVE-*, ROUTE-KEY, REST-MODELS", _listing("with-context")),
    Need("models/current", "a 200 /models answer with a kept id of a thinking model (supports_reasoning: true)",
         "CLIENT-CHAT", _listing("thinking")),
    Need("models/legacy-2024", "a 200 /models answer with a kept id without context_length (the older entry shape)",
         "LIST-CONTEXT", _listing("without-context")),
    Need("models/context-override", "a 200 /models answer with a kept id that has context_length",
         "LIST-CONTEXT", _listing("with-context")),
    Need("models/mixed-ids", "a 200 /models answer with a kept id beside an id the contract drops",
         "LIST-PREFIX", lambda c: any(map(kept, _entries(c))) and not all(map(kept, _entries(c)))),
    Need("models/empty", "a 200 /models answer with no kept id", "LIST-FALLBACK",
         lambda c: bool(_bodies(c, "/models")) and not any(map(kept, _entries(c)))),
    Need("models/foreign-only", "a 200 /models answer with entries but no kept id", "LIST-FALLBACK",
         lambda c: bool(_entries(c)) and not any(map(kept, _entries(c)))),
    Need("chat/tool-calls", "a 200 chat completion whose reply has tool_calls", "CLIENT-CHAT, ROUTE-KEY",
         lambda c: any(m.get("tool_calls") for m in _messages(c))),
    Need("chat/reasoning", "a 200 chat completion whose reply has tool_calls and reasoning_content (a thinking model)", "CLIENT-CHAT",
         lambda c: any(m.get("tool_calls") and m.get("reasoning_content") for m in _messages(c))),
    Need("errors/models-401-*", "a /models answer with status 401", "AUTH-401, LIST-FALLBACK", lambda c: 401 in _statuses(c)),
    Need("errors/models-*", "a /models answer with an error status other than 401", "AUTH-OTHER, LIST-FALLBACK",
         lambda c: any(s >= 400 and s != 401 for s in _statuses(c))),
]


def _candidates(directory: Path, pattern: str) -> list[Path]:
    if pattern.endswith("*"):
        return sorted(directory.glob(pattern + ".yaml"))
    return [directory / f"{pattern}.yaml"]


def missing(directory: Path) -> list[str]:
    """One line per need the folder does not meet, one per absent cassette (empty: every MUST can be judged)."""
    problems = []
    absent: dict[str, tuple[int, list[str]]] = {}  # cassette -> (its line, what each of its needs says)
    for need in NEEDS:
        paths = [p for p in _candidates(directory, need.cassette) if p.is_file()]
        if not paths:
            line, whys = absent.setdefault(need.cassette, (len(problems), []))
            whys.append(f"{need.behaviors} {'needs' if ',' not in need.behaviors else 'need'} {need.holds}")
            problems[line:line + 1] = [f"cassette {directory / f'{need.cassette}.yaml'} does not exist ({', and '.join(whys)})"]
            continue
        try:
            met = any(need.check(load_cassette(p)) for p in paths)
        except CassetteError as e:  # reported by the caller's own loading
            problems.append(str(e))
            continue
        if not met:
            named = paths[0] if len(paths) == 1 else directory / f"{need.cassette}.yaml"
            problems.append(f"cassette {named} lacks {need.holds}: {need.behaviors} could not be judged")
    return problems
