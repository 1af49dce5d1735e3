"""The Allure HTML report, really rendered: headless Chromium shows every behaviour ID and the red story.

``python -m kimi_conformance report`` (what ``tox -e report`` runs) is made once for the
module against a defective build (the guide's "before the fix" filter: LIST-PREFIX red),
served by a local static server, and loaded in Chromium; the report is a JavaScript
app, so the checks read the DOM after its scripts ran (``--dump-dom`` with a virtual
time budget, raised in bounded steps until the page has rendered). A screenshot of the
red story goes to ``reports/html-report.png`` (a CI artifact).
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kimi_conformance.contract import BEHAVIORS
from kimi_conformance.exitcodes import EXIT_CONTRACT_FAILURE

KIT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
BUILD = "before-fix-filter-0.11.7"
RED_STORY = "LIST-PREFIX"
SCREENSHOT = KIT_ROOT / "reports" / "html-report.png"
VIRTUAL_TIME_BUDGETS_MS = (5_000, 15_000, 40_000)  # the bounded "poll": each step lets the app run longer
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: the HTML report test needs Debian's chromium (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory) -> Path:
    """The report folder made by the `report` command for the defective build."""
    folder = tmp_path_factory.mktemp("html-report")
    cmd = [sys.executable, "-m", "kimi_conformance", "report", "--build", BUILD, "--results", str(folder / "results"),
           "--out", str(folder / "html"), "-q", "-p", "no:warnings", "--conformance-report", str(folder / "conformance.json")]
    done = subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_CONTRACT_FAILURE, output[-3000:]
    assert f"Allure HTML report: {folder / 'html' / 'index.html'}" in output
    return folder / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def served(html_report):
    """The report on http://127.0.0.1:<free port>/ (stopped after the module)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html_report)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium(url: str, profile: Path, budget_ms: int, *extra: str) -> subprocess.CompletedProcess:
    if profile.exists():
        shutil.rmtree(profile)
    profile.mkdir(parents=True)
    cmd = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def rendered_dom(url: str, profile: Path, ready) -> str:
    """The DOM after the app's scripts ran, once ``ready(dom)`` holds (or the last budget's DOM)."""
    dom = ""
    for budget in VIRTUAL_TIME_BUDGETS_MS:
        done = chromium(url, profile, budget, "--dump-dom")
        assert done.returncode == 0, done.stderr[-2000:]
        dom = done.stdout
        if ready(dom):
            break
    return dom


def tree_names(dom: str) -> set[str]:
    """The group names the behaviours tree shows (features and the stories of expanded ones)."""
    return {html.unescape(n).strip() for n in re.findall(r'class="node__name"[^>]*>([^<]*)<', dom)}


def visible_text(dom: str) -> str:
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest.fixture(scope="module")
def behaviors_tree(html_report) -> list[dict]:
    """The features of the report's Behaviors tab (uids to open each one in the browser)."""
    return json.loads((html_report / "data" / "behaviors.json").read_text())["children"]


def test_every_behaviour_id_is_visible_in_the_behaviors_tab(served, behaviors_tree, tmp_path):
    """Each feature opened (the URL of its first story expands it): all stories together are CONTRACT.md's IDs.

    If this fails: the Allure labels (kimi_conformance/allure_labels.py) or the not-applicable results
    (allure_results.py) no longer give every behaviour a story.
    """
    seen: set[str] = set()
    features = {f["name"] for f in behaviors_tree}
    assert features == {b.group for b in BEHAVIORS.values()}
    for feature in behaviors_tree:
        stories = {s["name"] for s in feature["children"]}
        dom = rendered_dom(f"{served}#behaviors/{feature['children'][0]['uid']}", tmp_path / "profile", lambda d: stories <= tree_names(d))
        names = tree_names(dom)
        assert features <= names, f"the tree did not render (features seen: {sorted(names)})"
        assert stories <= names, f"{feature['name']}: stories not shown: {sorted(stories - names)}"
        seen |= stories
    assert seen == set(BEHAVIORS)


def test_the_red_story_shows_its_failed_test(served, behaviors_tree, tmp_path):
    """The defect's story, opened on one of its failed tests: Failed, the contract violation category, the guide link.

    Saves the screenshot reports/html-report.png.
    """
    feature = next(f for f in behaviors_tree if f["name"] == BEHAVIORS[RED_STORY].group)
    story = next(s for s in feature["children"] if s["name"] == RED_STORY)
    failed = [t for t in story["children"] if t["status"] == "failed"]
    assert failed, f"{RED_STORY} has no failed test in the report"
    url = f"{served}#behaviors/{story['uid']}/{failed[0]['uid']}"
    dom = rendered_dom(url, tmp_path / "profile", lambda d: failed[0]["name"] in visible_text(d) and "Failed" in visible_text(d))
    text = visible_text(dom)
    assert RED_STORY in tree_names(dom)
    assert failed[0]["name"] in text and "Failed" in text
    assert "Categories: contract violation" in text
    assert "Severity: critical" in text
    assert "guide §2.1" in text
    picture = tmp_path / "html-report.png"
    shot = chromium(url, tmp_path / "profile", VIRTUAL_TIME_BUDGETS_MS[-1], f"--screenshot={picture}", "--window-size=1400,1000")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    staged = SCREENSHOT.with_name(SCREENSHOT.name + ".tmp")
    shutil.copyfile(picture, staged)
    os.replace(staged, SCREENSHOT)
