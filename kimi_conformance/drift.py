"""DRIFT-MODELS and DRIFT-SHAPE: the recorded world against the live one (INFO, live mode only).

Pure functions over model lists: what the build's hardcoded fallback and the live
``/models`` disagree on, and which fields of the live entries the cassettes lack (and the
reverse). Each returns a dict for the JSON report and the lines recorded as findings.
"""

from __future__ import annotations

import json
from pathlib import Path

from kimi_conformance.replay import CassetteError, load_cassette

# the cassette that stands for today's live /models answer
CURRENT_CASSETTE = "models/current.yaml"


def entry_ids(entries: list) -> list[str]:
    return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]


def _names(items) -> str:
    return ", ".join(sorted(items)) if items else "none"


def model_drift(fallback_ids: set[str], live_entries: list, where: str) -> tuple[dict, list[str]]:
    """Fallback ids the live API no longer lists, and live ids the fallback lacks."""
    live = set(entry_ids(live_entries))
    data = {"fallback_not_listed_live": sorted(fallback_ids - live), "live_not_in_fallback": sorted(live - fallback_ids)}
    lines = [
        f"{len(data['live_not_in_fallback'])} id(s) listed by the live /models at {where} are missing from the build's "
        f"hardcoded fallback: {_names(data['live_not_in_fallback'])}",
        f"{len(data['fallback_not_listed_live'])} id(s) of the build's hardcoded fallback are no longer listed by the live "
        f"/models: {_names(data['fallback_not_listed_live'])}",
    ]
    return data, lines


def fields(entries: list) -> set[str]:
    return {key for e in entries if isinstance(e, dict) for key in e}


def cassette_entries(cassette_dir: Path) -> dict[str, list]:
    """The /models entries of every models cassette (relative name -> entries of its 200 answers)."""
    found: dict[str, list] = {}
    for path in sorted((cassette_dir / "models").glob("*.yaml")):
        try:
            cassette = load_cassette(path)
        except CassetteError:
            continue  # a broken cassette is the input check's to report
        bodies = [json.loads(i.body) for i in cassette.interactions if i.path == "/models" and i.status == 200 and i.body]
        found[str(path.relative_to(cassette_dir))] = [e for body in bodies if isinstance(body, dict) for e in body.get("data", [])]
    return found


def shape_drift(live_entries: list, by_cassette: dict[str, list]) -> tuple[dict, list[str]]:
    """Fields of the live entries that no models cassette has, and fields of the current cassette the live entries lack."""
    live = fields(live_entries)
    recorded = set().union(*(fields(entries) for entries in by_cassette.values())) if by_cassette else set()
    current = fields(by_cassette.get(CURRENT_CASSETTE, []))
    data = {"live_fields_not_in_cassettes": sorted(live - recorded), "current_cassette_fields_not_live": sorted(current - live)}
    lines = [
        f"fields of the live /models entries that no models cassette has: {_names(data['live_fields_not_in_cassettes'])}",
        f"fields of {CURRENT_CASSETTE} entries that the live entries lack: {_names(data['current_cassette_fields_not_live'])}",
    ]
    return data, lines
