"""``--record``: rewrite the cassettes the live API answered, scrubbed, all or nothing.

During a live run, each answer the live API gives to a cassette's own request (same
method and path, the same model for a chat cassette, the cassette's status) is captured
once. At the end of the run, every cassette whose requests were all captured is
rewritten from live traffic, in vcrpy's format, with metadata ``origin: recorded``,
``recorded_at``, ``base_url`` and ``kit_version``.

Before anything is written, every header and body is scrubbed: only the headers of
``KEPT_REQUEST_HEADERS`` / ``KEPT_RESPONSE_HEADERS`` are kept (no ``Authorization``,
cookie, request or trace id), the key is replaced wherever it appears, and Moonshot's
organization, project and key ids (``org-…``, ``proj-…``, ``ak-…``) are zeroed. A cassette that would still
contain the key (in any of the forms of :func:`kimi_conformance.redact.key_forms`, whatever
the key's length), anything that looks like a key, a live ``org-``/``proj-``/``ak-`` id or
one of Moonshot's account headers refuses the whole recording (exit 8): nothing is written.
The finder is :func:`kimi_conformance.redact.find_secrets`, the one the replay uses.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from kimi_conformance import __version__
from kimi_conformance.replay import Cassette
from kimi_conformance.redact import ACCOUNT_IDS, WINDOW, find_secrets, remember

KEPT_REQUEST_HEADERS = ("accept", "content-type")
KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "server", "vary")
KEY_MARK = "<KIMI_API_KEY>"


class RecordRefused(Exception):
    """Recording would write a secret or cannot write; nothing was written (the message says why)."""


@dataclass
class Capture:
    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    response_body: bytes


@dataclass
class _Wanted:
    cassette: Cassette
    captures: dict[tuple[str, str], Capture] = field(default_factory=dict)
    models: dict[tuple[str, str], str | None] = field(default_factory=dict)  # the model a chat request asked for

    def model(self, method: str, path: str) -> str | None:
        if (method, path) not in self.models:
            self.models[(method, path)] = _model(_recorded_request_body(self.cassette, method, path))
        return self.models[(method, path)]

    def requests(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((i.method, i.path) for i in self.cassette.interactions))


def leaks(text: str, key: str) -> list[str]:
    """What of the key (in any form, whatever its length), of any key, or of an account ``text`` still holds, without the key itself."""
    return sorted({what if what.startswith(("the key", "the start", "the end", f"{WINDOW} ")) else f"{what} (line {line})"
                   for line, what in find_secrets(text, (key,))})


def scrub_text(text: str, key: str) -> str:
    text = text.replace(key, KEY_MARK)
    return ACCOUNT_IDS.sub(lambda m: f"{m.group(1)}-{'0' * len(m.group(2))}", text)


def _kept(headers, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() in allowed:
            out.setdefault(name.title(), []).append(value)
    return out


class Recorder:
    """Captures live answers to the cassettes' requests; writes them at the end, scrubbed, all or nothing."""

    def __init__(self, cassette_dir: Path, base_url: str, api_key: str):
        self.cassette_dir = cassette_dir
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        remember(api_key)
        self._wanted: dict[str, _Wanted] = {}

    def capture(self, name: str, cassette: Cassette, request: httpx.Request, response: httpx.Response, path: str) -> None:
        """Keep the first live answer to the cassette's own request (same request and status; same model for a chat)."""
        method = request.method.upper()
        wanted = self._wanted.setdefault(name, _Wanted(cassette))
        recorded = [i for i in cassette.interactions if (i.method, i.path) == (method, path)]
        if not recorded or response.status_code != recorded[0].status or (method, path) in wanted.captures:
            return
        model = wanted.model(method, path)
        if model is not None and model != _model(request.content):
            return
        wanted.captures[(method, path)] = Capture(
            request.method.upper(), path, dict(request.headers.items()), request.content,
            response.status_code, response.reason_phrase, list(response.headers.multi_items()), response.content,
        )

    # -- writing -----------------------------------------------------------------------
    def plan(self) -> tuple[dict[Path, str], dict[str, str]]:
        """(file -> scrubbed YAML text) for every complete cassette, and (cassette -> why not) for the others."""
        import yaml

        texts: dict[Path, str] = {}
        skipped: dict[str, str] = {}
        recorded_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        for name, wanted in sorted(self._wanted.items()):
            missing = [f"{m} {p}" for m, p in wanted.requests() if (m, p) not in wanted.captures]
            if missing:
                skipped[name] = f"no live answer to {', '.join(missing)}"
                continue
            data = {
                "metadata": {
                    "origin": "recorded",
                    "base_url": self.base_url,
                    "recorded_at": recorded_at,
                    "kit_version": __version__,
                    "source": f"live traffic recorded by kimi-conformance --live --record (replaces a {wanted.cassette.origin} cassette)",
                    "scrubbed": "headers other than " + ", ".join(sorted({*KEPT_REQUEST_HEADERS, *KEPT_RESPONSE_HEADERS}))
                    + f" removed; the key replaced by {KEY_MARK}; org-/proj-/ak- ids zeroed",
                },
                "interactions": [self._interaction(wanted.captures[r]) for r in wanted.requests()],
                "version": 1,
            }
            texts[self.cassette_dir / f"{name}.yaml"] = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        return texts, skipped

    def _interaction(self, c: Capture) -> dict:
        body = scrub_text(c.response_body.decode("utf-8", "replace"), self._key)
        request_body = scrub_text(c.request_body.decode("utf-8", "replace"), self._key) if c.request_body else None
        headers = _kept(c.response_headers, KEPT_RESPONSE_HEADERS)
        headers["Content-Length"] = [str(len(body.encode()))]
        return {
            "request": {
                "body": request_body,
                "headers": _kept(c.request_headers.items(), KEPT_REQUEST_HEADERS),
                "method": c.method,
                "uri": f"{self.base_url}{c.path}",
            },
            "response": {
                "status": {"code": c.status, "message": c.reason},
                "headers": {k: [scrub_text(v, self._key) for v in vs] for k, vs in headers.items()},
                "body": {"string": body},
            },
        }

    def write(self) -> tuple[list[Path], dict[str, str]]:
        """Write every complete cassette, or none: raises RecordRefused before writing if one would leak."""
        texts, skipped = self.plan()
        for path, text in texts.items():
            found = leaks(text, self._key)
            if found:
                raise RecordRefused(f"--record refused: {path} would still contain {', '.join(found)} after scrubbing; nothing was written")
        temporary: dict[Path, Path] = {}
        try:
            for path, text in texts.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                temporary[path] = tmp
                tmp.write_text(text, encoding="utf-8")
        except OSError as e:
            for tmp in temporary.values():
                tmp.unlink(missing_ok=True)
            raise RecordRefused(f"--record cannot write into {self.cassette_dir}: {e.strerror or e}; nothing was written") from None
        for path, tmp in temporary.items():
            os.replace(tmp, path)
        return sorted(texts), skipped


def _recorded_request_body(cassette: Cassette, method: str, path: str) -> bytes | None:
    """The recorded request body of ``method path`` (vcrpy keeps it beside the response)."""
    import yaml

    try:
        data = yaml.safe_load(cassette.path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    for it in data.get("interactions", []) if isinstance(data, dict) else []:
        request = it.get("request", {})
        if str(request.get("method", "")).upper() == method and str(request.get("uri", "")).endswith(path):
            body = request.get("body")
            return body.encode() if isinstance(body, str) else body
    return None


def _model(body: bytes | None) -> str | None:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return None
    return data.get("model") if isinstance(data, dict) and isinstance(data.get("model"), str) else None
