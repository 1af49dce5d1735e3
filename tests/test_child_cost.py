"""What makes a fork child cheaper never changes what it does (issue 17).

- ``fork_warm.warm_all`` (the fork server's warm-up) imports no ``letta`` module that the
  server's preload had not imported (a build's overlay may change any of them);
- the redactor's cached environment secrets are the environment's, before and after it changes;
- the Allure labels made once per behaviour are the ones made per test;
- the HOMEs go to /dev/shm only when it is usable, the default temp folder otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from kimi_conformance import builds, redact, scratch

KIT_ROOT = Path(__file__).resolve().parent.parent

_IN_BUILD = r"""
import json, sys
from types import SimpleNamespace
from kimi_conformance import forkserver, fork_warm
letta = lambda: {n for n in sys.modules if n == "letta" or n.startswith("letta.")}
import importlib
for name in forkserver.PRELOAD:
    importlib.import_module(name)
before = letta()
reported = fork_warm.warm_all()
new = sorted(letta() - before)

from kimi_conformance import allure_labels
from kimi_conformance.contract import BEHAVIORS
def doc():
    '''A test's docstring.'''
item = SimpleNamespace(function=doc)
same = all([(m.name, m.args, m.kwargs) for m in allure_labels.behavior_marks(item, b)]
           == [(m.name, m.args, m.kwargs) for m in allure_labels.behavior_marks(item, b, allure_labels.behavior_labels(b))]
           for b in BEHAVIORS.values())
print("RESULT " + json.dumps({"reported": reported, "new": new, "labels_same": same, "behaviors": len(BEHAVIORS)}))
"""


@pytest.mark.parametrize("version", ["0.11.7", "0.16.8"])
def test_warm_all_imports_no_build_module_and_labels_are_the_same(version, tmp_path):
    reference = builds.get_build(f"reference-{version}")
    if not reference.python.exists() or not reference.overlay_dir.is_dir():
        pytest.skip(f"{reference.name} is not made (python3 -m kimi_conformance build {reference.name})")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([*reference.pythonpath(), str(KIT_ROOT)])}
    done = subprocess.run([str(reference.python), "-c", _IN_BUILD], cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["new"] == [] and result["reported"] == [], (
        f"fork_warm.warm_all imported letta modules a build's overlay may change: {result['new']}")
    assert result["labels_same"] and result["behaviors"] > 0


def test_cached_environment_secrets_follow_the_environment(monkeypatch):
    secret = "cost-test-secret-0123456789"
    monkeypatch.delenv("KIMI_COST_TEST_API_KEY", raising=False)
    assert redact.environment_secrets() == redact._scan_environment(os.environ)
    text = f"sent {secret} to the server"
    assert redact.redact(text) == text
    monkeypatch.setenv("KIMI_COST_TEST_API_KEY", secret)
    assert secret in redact.environment_secrets()
    assert redact.environment_secrets() == redact._scan_environment(os.environ)
    masked = redact.redact(text)
    assert secret not in masked and masked.endswith("6789 to the server")
    redact._ENVIRONMENT_SCAN[:] = [None, []]  # uncached: the same output
    assert redact.redact(text) == masked
    monkeypatch.delenv("KIMI_COST_TEST_API_KEY")
    assert secret not in redact.environment_secrets()
    assert redact.redact(text) == text
    assert redact.environment_secrets({"A_TOKEN": secret, "PLAIN": secret}) == [secret]  # a mapping given: scanned as is


def test_home_in_memory_only_where_usable(tmp_path, monkeypatch):
    assert scratch.scratch_root(str(tmp_path), min_free=0) == str(tmp_path)
    assert scratch.scratch_root(str(tmp_path / "missing"), min_free=0) is None
    assert scratch.scratch_root(str(tmp_path), min_free=1 << 62) is None  # too small a tmpfs
    monkeypatch.setattr(scratch, "MEMORY_DIR", str(tmp_path / "missing"))
    made = Path(scratch.make_dir("kimi-cost-test-"))
    try:
        assert made.parent == Path(tempfile.gettempdir()) and made.name.startswith("kimi-cost-test-")
    finally:
        made.rmdir()
    monkeypatch.setattr(scratch, "MEMORY_DIR", str(tmp_path))
    monkeypatch.setattr(scratch, "MIN_FREE_BYTES", 0)
    made = Path(scratch.make_dir("kimi-cost-test-"))
    assert made.parent == tmp_path and made.is_dir()
