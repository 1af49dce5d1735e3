"""The kit's own inputs, checked before any test runs: the cassette folder and the report path.

A bad input is one usage error naming the file, raised before anything is written,
so that a previous report is never replaced by a partial one.
"""

from __future__ import annotations

import os
from pathlib import Path

from kimi_conformance import cassette_needs
from kimi_conformance.replay import CassetteError, load_cassette


class InputError(Exception):
    """An input of the kit (not the build under test) is unusable; the message names it."""


def check_cassette_dir(directory: Path) -> int:
    """Every cassette under ``directory`` loads (YAML, metadata, no key). Returns their count."""
    if not directory.is_dir():
        raise InputError(f"cassette folder {directory} does not exist (--cassette-dir)")
    files = sorted(directory.rglob("*.yaml"))
    problems = []
    for path in files:
        try:
            cassette = load_cassette(path)
        except CassetteError as e:
            problems.append(str(e))
            continue
        expected = endpoint_of(path.relative_to(directory))
        recorded = {(i.method, i.path) for i in cassette.interactions}
        if expected and expected not in recorded:
            have = ", ".join(f"{m} {p}" for m, p in sorted(recorded)) or "no interactions"
            problems.append(f"cassette {path} does not answer {' '.join(expected)}, the request it is for (it has: {have})")
    problems = problems or cassette_needs.missing(directory)  # what every MUST needs (only once each file loads)
    if problems:
        raise InputError("; ".join(problems))
    return len(files)


def endpoint_of(relative: Path) -> tuple[str, str] | None:
    """The Moonshot request a cassette is for, from where it lies: chat/ or models/ (errors/models-*)."""
    if relative.parts[0] == "chat":
        return ("POST", "/chat/completions")
    if relative.parts[0] == "models" or relative.name.startswith("models-"):
        return ("GET", "/models")
    return None


def check_report_path(path: Path) -> None:
    """The JSON report can be written at ``path`` (its folder exists or can be made, and is writable)."""
    if path.exists() and path.is_dir():
        raise InputError(f"cannot write the JSON report to {path}: it is a directory (--conformance-report)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write the JSON report to {path}: {e.strerror or e} (--conformance-report)") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write the JSON report to {path}: its folder is not writable (--conformance-report)")
