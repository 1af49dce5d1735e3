"""No secret leaves the process: a live run against a key-echoing stand-in, every output grepped.

The stand-in (``EchoingStandIn``) is Moonshot gone wrong: the key comes back in a listed
model id, in every error body, in a header and in a 429 message (and, in live mode, base64-
encoded in a chat reply), beside Moonshot's account headers and org-/proj-/ak- ids. A
kit run with every output turned on (JSON report and its Markdown, JUnit, Allure results,
recorded cassettes, stdout and stderr, where log records go: the suites run without pytest's
logging plugin) must hold none of: the key, its last
16 characters, its base64 -- for a 19-character and a 51-character key, with and without
``sk-``, in ``--live`` and ``--live --record`` modes. If this fails: pass the output
through :func:`kimi_conformance.redact.redact` (it knows the key from start-up on).
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_conformance.exitcodes import EXIT_CONTRACT_FAILURE, EXIT_RECORD_REFUSED, EXIT_USAGE
from kimi_conformance.standin import MoonshotStandIn

BUILD = "reference-0.11.7"
KIT_ROOT = Path(__file__).resolve().parent.parent
ECHO_TEST = "tests/data/echoed_key.py"  # fails with what the live API answered (ids, headers, body)
# the tests that use live-answered cassettes (recorded by --record), and the drift findings that name listed ids
SUITES = ["suites/test_drift.py", "suites/test_client.py", "suites/test_auth.py"]
KEYS = {
    "19-chars": "Kq7vX2mPz9LwR4tNb8Y",
    "19-chars-sk": "sk-q7vX2mPz9LwR4tNb",
    "51-chars": "Zq7vX2mPz9LwR4tNb8YcD3fGh5JkL6nMp1QrS0uVw2XyA4bCd6E",
    "51-chars-sk": "sk-7vX2mPz9LwR4tNb8YcD3fGh5JkL6nMp1QrS0uVw2XyA4bCd6",
}


def forms(key: str) -> dict[str, str]:
    """What the grep looks for: the key, its tail, its base64 (padded and not)."""
    encoded = base64.b64encode(key.encode()).decode()
    return {"the key": key, "its last 16 characters": key[-16:], "its base64": encoded, "its unpadded base64": encoded.rstrip("=")}


class EchoingStandIn(MoonshotStandIn):
    """A stand-in that echoes the key: in a listed id, error bodies, a header, a 429 message (and base64 in a chat reply)."""

    def __init__(self, key: str, *, base64_in_chat: bool):
        self.key = key
        super().__init__(key, extra_model_ids=[f"kimi-echo-{key}"])
        self.base64_in_chat = base64_in_chat
        self.fail_next(1, 429, retry_after=0.01)  # the start-up check gets a 429 naming the key, then retries

    def handle(self, method, path, bearer, body):
        status, headers, payload = super().handle(method, path, bearer, body)
        key = self.key
        headers = {**headers, "X-Debug-Authorization": f"Bearer {key}", "Msh-Uid": "7781234567890", "Msh-Gid": "5561234567890",
                   "Msh-Org-Id": "org-8e1f2a3b4c5d6e7f", "Msh-Project-Id": "proj-9a8b7c6d5e4f3a2b"}
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            payload = copy.deepcopy(payload)
            payload["error"]["message"] += f" (key {key}, org-8e1f2a3b4c5d6e7f <ak-3c4d5e6f7a8b9c0d> proj-9a8b7c6d5e4f3a2b)"
        elif isinstance(payload, dict) and payload.get("object") == "chat.completion":
            payload = copy.deepcopy(payload)
            encoded = base64.b64encode(key.encode()).decode() if self.base64_in_chat else ""
            payload["choices"][0]["message"]["content"] = f"echo {key} {encoded}".strip()
        return status, headers, payload


def run_kit(args: list[str], key: str, url: str, folder: Path) -> tuple[subprocess.CompletedProcess, list[Path]]:
    """One kit run with every output on; (the process, the files it wrote under ``folder``)."""
    outputs = ["--conformance-report", str(folder / "reports" / "conformance.json"), "--alluredir", str(folder / "allure"),
               "--junitxml", str(folder / "junit.xml")]
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", BUILD, "-rA", *outputs, *args]  # with the warnings summary
    env = {**os.environ, "KIMI_API_KEY": key, "KIMI_BASE_URL": url}
    done = subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=900, env=env)
    return done, sorted(p for p in folder.rglob("*") if p.is_file())


def hits(texts: dict[str, str], key: str) -> list[str]:
    return [f"{what} in {where}" for where, text in texts.items() for what, form in forms(key).items() if form in text]


def read_all(done: subprocess.CompletedProcess, files: list[Path]) -> dict[str, str]:
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    texts.update({str(p): p.read_bytes().decode("utf-8", "replace") for p in files})
    return texts


@pytest.mark.parametrize("key", list(KEYS.values()), ids=list(KEYS))
def test_a_live_run_writes_the_echoed_key_nowhere(tmp_path, key):
    """Live mode: the key the stand-in echoes (ids, bodies, headers, a 429, base64) reaches no output."""
    with EchoingStandIn(key, base64_in_chat=True) as standin:
        done, files = run_kit(["--live", *SUITES, ECHO_TEST], key, standin.url, tmp_path / "out")
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_CONTRACT_FAILURE, output[-3000:]  # only the echo test fails
    assert "failure text: headers" in output and "msh-uid" in output.lower(), "the echo test ran and printed the answer"
    assert "UserWarning: warning: headers" in output, "the warnings summary shows what the echo test warned"
    names = {p.name for p in files}
    assert {"conformance.json", "conformance.md", "junit.xml"} <= names and any(n.endswith("-result.json") for n in names)
    texts = read_all(done, files)
    assert hits(texts, key) == []
    account = ["8e1f2a3b4c5d6e7f", "9a8b7c6d5e4f3a2b", "3c4d5e6f7a8b9c0d", "7781234567890", "5561234567890"]
    assert [(i, where) for where, text in texts.items() for i in account if i in text] == [], "account ids and headers are masked"


@pytest.mark.parametrize("key", list(KEYS.values()), ids=list(KEYS))
def test_a_recording_writes_the_echoed_key_nowhere(tmp_path, key):
    """--live --record: the recorded cassettes (scrubbed) and every other output hold no form of the echoed key."""
    cassettes = tmp_path / "out" / "cassettes"
    shutil.copytree(KIT_ROOT / "cassettes", cassettes)
    with EchoingStandIn(key, base64_in_chat=False) as standin:
        done, files = run_kit(["--live", "--record", "--cassette-dir", str(cassettes), *SUITES, ECHO_TEST], key, standin.url, tmp_path / "out")
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_CONTRACT_FAILURE, output[-3000:]
    assert "recorded: " in output and (cassettes / "models" / "current.yaml").read_text().count("<KIMI_API_KEY>") >= 1  # the listed id, scrubbed
    assert hits(read_all(done, files), key) == []


@pytest.mark.parametrize("key", [KEYS["19-chars"], KEYS["51-chars-sk"]], ids=["19-chars", "51-chars-sk"])
def test_a_recording_that_would_keep_a_piece_of_the_key_is_refused(tmp_path, key):
    """A piece of the key (16 characters, whatever the key's length) the scrubbing cannot undo refuses the recording (exit 8)."""
    cassettes = tmp_path / "out" / "cassettes"
    shutil.copytree(KIT_ROOT / "cassettes", cassettes)

    class PieceEcho(EchoingStandIn):
        def handle(self, method, path, bearer, body):
            status, headers, payload = MoonshotStandIn.handle(self, method, path, bearer, body)
            if isinstance(payload, dict) and payload.get("object") == "list":
                payload = copy.deepcopy(payload)
                payload["data"][0]["id"] = f"kimi-{self.key[1:17]}"
            return status, headers, payload

    with PieceEcho(key, base64_in_chat=False) as standin:
        done, files = run_kit(["--live", "--record", "--cassette-dir", str(cassettes), "suites/test_auth.py", "-k", "test_200_returns"],
                              key, standin.url, tmp_path / "out")
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_RECORD_REFUSED, output[-3000:]
    assert "16 characters of the key" in output and "nothing was written" in output
    assert hits(read_all(done, files), key) == []
    assert key[1:17] not in output


@pytest.mark.parametrize("where", ["query", "userinfo"])
def test_a_key_inside_the_base_url_is_never_printed(tmp_path, where):
    """KIMI_BASE_URL with the key inside (?api_key=KEY, user:KEY@host): the error line names the variable, never the key."""
    key = KEYS["51-chars"]
    url = f"http://127.0.0.1:9/v1?api_key={key}" if where == "query" else f"http://user:{key}@127.0.0.1:9/v1"
    done, files = run_kit(["--live", "--live-retries", "0"], "sk-" + "x" * 30, url, tmp_path / "out")
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_USAGE, output[-3000:]
    assert "KIMI_BASE_URL" in output
    assert hits(read_all(done, files), key) == []
