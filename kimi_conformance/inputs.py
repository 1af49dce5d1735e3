"""The kit's own inputs, checked before any test runs: the cassette folder and the report path.

A bad input is one usage error naming the file, raised before anything is written,
so that a previous report is never replaced by a partial one.

Standard library only at import (the launcher uses :func:`check_report_path` before
any build exists); YAML and the cassette loader are imported where they are used.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

# A cassette is a few KB of YAML; anything far larger is not one (and is not read whole).
MAX_CASSETTE_BYTES = 1 << 20
# Nesting of a cassette: interactions > request/response > headers/body > list: well under this.
MAX_CASSETTE_DEPTH = 64


class InputError(Exception):
    """An input of the kit (not the build under test) is unusable; the message names it."""


class UnreadableCassette(InputError):
    """A cassette file that is not a small regular file of shallow YAML."""


def read_cassette_text(path: Path) -> str:
    """The text of a cassette: a regular file (not a FIFO, device or folder) under the size cap,
    UTF-8, whose YAML nests no deeper than MAX_CASSETTE_DEPTH (libyaml's composer recurses in C:
    a deeply nested file would crash the interpreter instead of raising)."""
    try:
        info = os.stat(path)  # follows a symlink: a link to /dev/zero is a device
    except FileNotFoundError:
        raise UnreadableCassette(f"cassette {path} does not exist") from None
    except OSError as e:
        raise UnreadableCassette(f"cassette {path} cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableCassette(f"cassette {path} is not a regular file (a folder, FIFO, socket or device); the kit reads only files")
    if info.st_size > MAX_CASSETTE_BYTES:
        raise UnreadableCassette(f"cassette {path} is {info.st_size} bytes, over the kit's cap of {MAX_CASSETTE_BYTES}; it is not a cassette")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CASSETTE_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UnreadableCassette(f"cassette {path} cannot be read: {e}") from None
    if len(data) > MAX_CASSETTE_BYTES:
        raise UnreadableCassette(f"cassette {path} grew over the kit's cap of {MAX_CASSETTE_BYTES} bytes while read")
    check_yaml_depth(text, path)
    return text


def check_yaml_depth(text: str, path: Path) -> None:
    """Walk the YAML's event stream (flat, no recursion) and refuse nesting deeper than the cap."""
    import yaml

    depth = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_CASSETTE_DEPTH:
                    raise UnreadableCassette(f"cassette {path} nests deeper than {MAX_CASSETTE_DEPTH} levels; it is not a cassette")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # the loader says what is wrong with it


def check_cassette_dir(directory: Path) -> int:
    """Every cassette under ``directory`` loads (YAML, metadata, no key). Returns their count."""
    from kimi_conformance import cassette_needs
    from kimi_conformance.replay import CassetteError, load_cassette

    if not directory.is_dir():
        raise InputError(f"cassette folder {directory} does not exist (--cassette-dir)")
    files = sorted(directory.rglob("*.yaml"))
    if not files:
        raise InputError(f"cassette folder {directory} holds no cassettes (*.yaml) (--cassette-dir); "
                         "give the kit's cassettes/ or a copy of it, or record into it with --live --record")
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


def summary_path_for(report: Path) -> Path:
    """Where the Markdown summary of a JSON report goes (beside it, ``.md``)."""
    return report.with_suffix(".md")


def check_report_path(path: Path) -> None:
    """The JSON report and its Markdown summary can be written: distinct files, not folders,
    in a folder that exists or can be made and is writable."""
    summary = summary_path_for(path)
    if summary == path:
        raise InputError(f"cannot write the JSON report to {path}: the Markdown summary goes beside it as {summary.name} "
                         "and would overwrite it; give a .json path (--conformance-report)")
    for target, what in ((path, "the JSON report"), (summary, "the Markdown summary")):
        if target.is_dir():
            raise InputError(f"cannot write {what} to {target}: it is a directory (--conformance-report)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write the JSON report to {path}: {e.strerror or e} (--conformance-report)") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write the JSON report to {path}: its folder is not writable (--conformance-report)")
    for target, what in ((path, "the JSON report"), (summary, "the Markdown summary")):
        if target.exists() and not os.access(target, os.W_OK):
            raise InputError(f"cannot write {what} to {target}: the file is not writable (--conformance-report)")


def nonnegative_number(option: str, value: str, integer: bool = False) -> float:
    """A numeric option's value: finite and 0 or more (``nan``, ``inf`` and negatives are refused)."""
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise InputError(f"{option} {value!r}: not a {'whole ' if integer else ''}number") from None
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise InputError(f"{option} {value!r}: must be a finite number, 0 or more")
    return number
