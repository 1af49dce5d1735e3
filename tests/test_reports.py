"""What a CI gets from a run: Allure results, JUnit XML, the Markdown summary and the exit codes.

One defective build (its key sent without "Bearer": LIST-REQUEST and AUTH-OK red, the
failing tests talked to replayed Moonshot) is run once for the module with every report
turned on; the no-Kimi, SHOULD and usage-error cases run small selections.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kimi_conformance import guide_links, redact, summary_md
from kimi_conformance.allure_labels import EXCHANGE_ATTACHMENT, SEVERITY
from kimi_conformance.allure_results import CATEGORIES, CONTRACT, NO_KIMI, REPLAY, SHOULD_WARN, UPSTREAM, properties_line
from kimi_conformance.contract import BEHAVIORS
from kimi_conformance.exitcodes import EXIT_CONTRACT_FAILURE, EXIT_NO_KIMI, EXIT_OK, EXIT_USAGE

DEFECT = "auth-header-not-bearer-0.11.7"
DEFECT_RED = {"LIST-REQUEST", "AUTH-OK"}
SHOULD_DEFECT = "nothing-usable-fallback-silent-0.11.7"  # LIST-FALLBACK-NOTICE (a SHOULD) red
FAKE_KEY = "sk-kit-replay-kimi-0123456789abcdef"  # suites/helpers.py KIMI_KEY
GUIDE = Path(__file__).resolve().parents[2] / "shared" / "spec" / guide_links.GUIDE_FILE


class Reports:
    """The files one kit run wrote: JSON, Markdown, JUnit, Allure results."""

    def __init__(self, run, folder: Path):
        self.run, self.folder = run, folder
        self.allure = folder / "allure"
        self.results = [json.loads(p.read_text()) for p in sorted(self.allure.glob("*-result.json"))]

    def labels(self, result: dict, name: str) -> list[str]:
        return [label["value"] for label in result.get("labels", []) if label["name"] == name]

    def story(self, result: dict) -> str | None:
        stories = self.labels(result, "story")
        return stories[0] if stories else None


def run_with_reports(run_kit, tmp_path_factory, build: str, *args: str) -> Reports:
    folder = tmp_path_factory.mktemp(f"reports-{build}")
    run = run_kit(build, "--alluredir", str(folder / "allure"), "--junitxml", str(folder / "junit.xml"), *args)
    return Reports(run, folder)


@pytest.fixture(scope="module")
def defect(run_kit, tmp_path_factory) -> Reports:
    return run_with_reports(run_kit, tmp_path_factory, DEFECT)


@pytest.fixture(scope="module")
def should_warn(run_kit, tmp_path_factory) -> Reports:
    return run_with_reports(run_kit, tmp_path_factory, SHOULD_DEFECT, "-k", "nothing_usable")


@pytest.fixture(scope="module")
def no_kimi(run_kit, tmp_path_factory) -> Reports:
    return run_with_reports(run_kit, tmp_path_factory, "upstream-0.16.8")


def markdown_summary(run) -> str:
    """The Markdown summary a run wrote (the terminal summary names it, beside the JSON report)."""
    found = re.findall(r"^Markdown summary: (.+)$", run.output, re.M)
    assert len(found) == 1, run.output[-3000:]
    path = Path(found[0])
    assert path.suffix == ".md" and path.with_suffix(".json").exists()
    return path.read_text(encoding="utf-8")


def category_of(status: str, message: str) -> list[str]:
    """The categories Allure puts a result in (each messageRegex must match the whole message)."""
    return [c["name"] for c in CATEGORIES if status in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message)]


# -- exit codes ----------------------------------------------------------------------------


def test_a_defective_build_exits_1(defect):
    """A MUST broken: exit 1, the code CI reads as "contract failure"."""
    assert defect.run.returncode == EXIT_CONTRACT_FAILURE, defect.run.output[-3000:]
    assert defect.run.red() == DEFECT_RED


def test_a_build_without_kimi_exits_with_its_own_code(no_kimi):
    """No Kimi provider at all is not a contract failure: exit 6, distinct from 1."""
    assert no_kimi.run.returncode == EXIT_NO_KIMI != EXIT_CONTRACT_FAILURE


def test_a_bad_option_is_pytests_usage_error(run_kit):
    """An option nobody knows: pytest's usage code (4), one line naming it."""
    run = run_kit("reference-0.11.7", "--no-such-kit-option")
    assert run.returncode == EXIT_USAGE
    assert "--no-such-kit-option" in run.output


def test_a_should_failure_is_a_warning_by_default(should_warn):
    """A SHOULD broken (silent nothing-usable fallback): exit 0, verdict warn, its own Allure category."""
    assert should_warn.run.returncode == EXIT_OK, should_warn.run.output[-3000:]
    assert should_warn.run.behaviors["LIST-FALLBACK-NOTICE"] == "warn"
    warned = [r for r in should_warn.results if should_warn.story(r) == "LIST-FALLBACK-NOTICE"]
    assert warned and all(category_of(r["status"], r["statusDetails"]["message"]) == [SHOULD_WARN] for r in warned)
    assert all(any(a["name"] == EXCHANGE_ATTACHMENT for a in r["attachments"]) for r in warned)


def test_a_should_failure_fails_under_strict(run_kit):
    """The same build with --strict: exit 1, verdict fail."""
    run = run_kit(SHOULD_DEFECT, "-k", "nothing_usable", "--strict")
    assert run.returncode == EXIT_CONTRACT_FAILURE, run.output[-3000:]
    assert run.behaviors["LIST-FALLBACK-NOTICE"] == "fail"


# -- Markdown summary ----------------------------------------------------------------------


def test_the_markdown_summary_names_the_red_ids(defect):
    """conformance.md beside the JSON report: the verdict, a row per behaviour, the red IDs and their tests."""
    md = markdown_summary(defect.run)
    assert "non-conformant" in md.splitlines()[0]
    for bid in BEHAVIORS:
        assert re.search(rf"^\| {re.escape(bid)} \| {BEHAVIORS[bid].level} \| ", md, re.M), f"no row for {bid}"
    for bid in DEFECT_RED:
        assert f"| {bid} | MUST | ❌ fail |" in md
        assert f"**{bid}**" in md.split("| behaviour |")[0], "the red IDs are named above the table"
    assert "test_200_returns_and_carried_the_bearer_key" in md
    assert "none red" not in md, "a red build's summary must not also say none red (fresh-eyes finding)"


def test_the_markdown_summary_of_a_build_without_kimi_says_so(no_kimi):
    md = markdown_summary(no_kimi.run)
    assert "no Kimi provider" in md.splitlines()[0]
    assert "this build has no Kimi provider" in md
    assert "❌" not in md
    assert "none red" not in md, "nothing was tested: 'none red' would read as a pass"


def test_the_markdown_summary_renders_any_verdict():
    """An unknown verdict value (a newer report) still renders, and Markdown in values is escaped."""
    md = summary_md.render({"verdict": "from-a-newer-kit", "behaviors": {"LIST-PREFIX": "from-a-newer-kit"},
                            "levels": {"LIST-PREFIX": "MUST"}, "build": {"letta_path": "/a|b"},
                            "findings": {"ENABLE-FLAG": ["a | b"]}})
    assert "| LIST-PREFIX | MUST | ❔ from-a-newer-kit |" in md
    assert "a \\| b" in md


def test_the_markdown_summary_gives_each_red_id_its_promise_case_and_fix(monkeypatch):
    """Per red ID: the promise (linked to the kit's CONTRACT.md, or KIMI_CONFORMANCE_CONTRACT_URL), the
    failing case and the "If this fails:" hint of that test; a partial run says what was not checked."""
    monkeypatch.setenv("KIMI_CONFORMANCE_CONTRACT_URL", "https://example.org/kit/CONTRACT.md")
    case = "suites/test_list.py::test_foreign_ids_are_dropped[gpt-4o]"
    md = summary_md.render({"verdict": "non-conformant", "behaviors": {"LIST-PREFIX": "fail"}, "levels": {"LIST-PREFIX": "MUST"},
                            "failed_tests": {"LIST-PREFIX": [case]}, "not_checked": ["AUTH-401"]})
    assert BEHAVIORS["LIST-PREFIX"].summary in md
    assert "(https://example.org/kit/CONTRACT.md#list-model-listing-21-23-32)" in md
    assert f"`{case}`" in md
    assert summary_md.fix_hint(case) and summary_md.fix_hint(case) in md
    assert "**Not checked** (a partial run): AUTH-401" in md


# -- JUnit ---------------------------------------------------------------------------------


def test_junit_xml_carries_the_behaviour_id_of_every_test(defect):
    """Each <testcase> has a kimi_behavior property; the failing ones name the red IDs."""
    root = ET.parse(defect.folder / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert cases
    ids = {case.get("name"): {p.get("value") for p in case.findall("./properties/property[@name='kimi_behavior']")} for case in cases}
    assert all(len(found) == 1 for found in ids.values()), "one behaviour ID per test case"
    tested = {bid for bid, v in defect.run.behaviors.items() if v != "not-applicable"}
    assert tested <= set().union(*ids.values()) <= set(BEHAVIORS)
    failed = {next(iter(ids[c.get("name")])) for c in cases if c.find("failure") is not None}
    assert failed == DEFECT_RED


# -- Allure --------------------------------------------------------------------------------


def test_every_test_is_labelled_with_group_id_severity_description_and_guide_link(defect):
    """feature = contract group, story = behaviour ID, severity from the level, docstring, link to the guide."""
    tests = [r for r in defect.results if r.get("fullName", "").startswith("suites.")]
    assert tests
    for result in tests:
        bid = defect.story(result)
        assert bid in BEHAVIORS, result["fullName"]
        behavior = BEHAVIORS[bid]
        assert defect.labels(result, "feature") == [behavior.group]
        assert defect.labels(result, "severity") == [SEVERITY[behavior.level]]
        assert behavior.summary in result["description"] and len(result["description"]) > len(behavior.summary) + 40
        urls = [link["url"] for link in result.get("links", [])]
        assert urls == [*(url for _, url in guide_links.links(behavior.guide)), guide_links.contract_link(behavior.id)[1]]
        assert all("#" in url for url in urls)


def test_every_behaviour_id_is_a_story_even_without_a_test(defect):
    """The report lists every ID of CONTRACT.md; an ID no test ran for is one not-applicable result."""
    assert {defect.story(r) for r in defect.results} == set(BEHAVIORS)
    placeholders = [r for r in defect.results if r["fullName"].startswith("kimi_conformance.contract#")]
    tested = {defect.story(r) for r in defect.results if r["fullName"].startswith("suites.")}
    assert {defect.story(r) for r in placeholders} == set(BEHAVIORS) - tested
    assert all(r["status"] == "skipped" and defect.run.behaviors[defect.story(r)] == "not-applicable" for r in placeholders)


def test_environment_properties_carry_the_build_identity(defect):
    text = (defect.allure / "environment.properties").read_text(encoding="latin-1")
    props = dict(line.split("=", 1) for line in text.splitlines() if line)
    build = defect.run.report["build"]
    assert props["letta.version"] == build["letta_version"] == "0.11.7"
    assert props["letta.path"] == build["letta_path"]
    assert props["python"] == build["python"]
    assert props["binding"] == "default"
    assert props["binding.provider_class"] == build["binding"]["provider_class"]
    assert props["verdict"] == "non-conformant"


def test_a_failing_test_carries_its_http_exchange_with_secrets_scrubbed(defect):
    """The failing AUTH-OK test has the request it sent and the answer it got, key masked."""
    failed = [r for r in defect.results if r["status"] == "failed" and defect.story(r) == "AUTH-OK"]
    assert failed
    for result in failed:
        sources = [a["source"] for a in result.get("attachments", []) if a["name"] == EXCHANGE_ATTACHMENT]
        assert len(sources) == 1, [a["name"] for a in result.get("attachments", [])]
        text = (defect.allure / sources[0]).read_text()
        assert re.search(r"=== request 1: GET https://api\.moonshot\.(cn|ai)/v1/models", text)
        assert "--- response 1: 200 OK" in text and '"object": "list"' in text
        assert "authorization: sk-***cdef" in text
    passed = [r for r in defect.results if r["status"] == "passed"]
    assert not any(a["name"] == EXCHANGE_ATTACHMENT for r in passed for a in r.get("attachments", []))


def test_no_key_reaches_the_allure_results(defect):
    """Not in attachments, tracebacks or captured output (the key's first and last parts included)."""
    for path in defect.allure.iterdir():
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert FAKE_KEY not in text and FAKE_KEY[:16] not in text and FAKE_KEY[-16:] not in text, path.name


def test_failures_fall_into_the_contract_violation_category(defect):
    for result in defect.results:
        if result["status"] in ("failed", "broken"):
            assert category_of(result["status"], result["statusDetails"]["message"]) == [CONTRACT], result["name"]


def test_a_build_without_kimi_is_one_category(no_kimi):
    results = [r for r in no_kimi.results if r["fullName"].startswith("suites.")]
    assert results and all(r["status"] == "skipped" for r in results)
    assert {tuple(category_of(r["status"], r["statusDetails"]["message"])) for r in results} == {(NO_KIMI,)}
    props = (no_kimi.allure / "environment.properties").read_text(encoding="latin-1")
    assert "verdict=no-kimi-provider" in props and "letta.version=0.16.8" in props


@pytest.mark.parametrize(("status", "message", "category"), [
    ("skipped", "Skipped: not applicable: this build has no Kimi provider: looked for X", NO_KIMI),
    ("failed", "Failed: hermetic replay violated:\n  replay miss: GET https://api.moonshot.cn/v1/v1/models", REPLAY),
    ("broken", "kimi_conformance.replay.CassetteError: cassette x.yaml does not exist", REPLAY),
    ("broken", "httpx.ConnectError: [replay] no recorded answer for GET https://x/v1/models", REPLAY),
    ("skipped", "Skipped: upstream unavailable: 429 rate_limit_reached_error after 3 tries", UPSTREAM),
    ("broken", "LLMError: 429 exceeded_current_quota_error", UPSTREAM),
    ("failed", "AssertionError: assert 'kimi/x' == 'kimi/kimi-k2'", CONTRACT),
    ("broken", "TypeError: 'NoneType' object is not subscriptable", CONTRACT),
    ("skipped", "XFAIL LIST-FALLBACK-NOTICE is a SHOULD: reported as warn\n\nAssertionError", SHOULD_WARN),
])
def test_each_kind_of_message_has_exactly_one_category(status, message, category):
    """The categories exclude each other, so Allure shows a result under one heading."""
    assert category_of(status, message) == [category]


def test_a_precondition_skip_has_no_category():
    assert category_of("skipped", "Skipped: precondition not met: kimi-k2 was not listed (judged by LIST-PREFIX)") == []


# -- pieces --------------------------------------------------------------------------------


@pytest.mark.skipif(not GUIDE.exists(), reason=f"{GUIDE} is not beside this checkout")
def test_the_guide_headings_the_links_point_to_are_the_guides():
    assert guide_links.headings_in(GUIDE.read_text(encoding="utf-8")) == guide_links.HEADINGS


def test_guide_anchors_follow_the_markdown_renderers_rule():
    assert guide_links.anchor("2.1") == "21-模型识别问题"
    assert guide_links.anchor("3.3.4") == "334-llm客户端创建"
    assert guide_links.anchor("2") == "2-常见问题类型"
    assert guide_links.links("black box") == []


def test_the_guide_location_can_be_configured(monkeypatch):
    monkeypatch.setenv(guide_links.GUIDE_URL_ENV, "https://example.org/kimi-provider-guide.zh.md")
    [(name, url)] = guide_links.links("§5.1")
    assert url.startswith("https://example.org/kimi-provider-guide.zh.md#51-") and name == "guide §5.1 缓存策略"


def test_redaction_masks_keys_headers_and_pieces_of_known_secrets(monkeypatch):
    monkeypatch.setenv("KIMI_API_KEY", "sk-liveKEY0123456789abcdefXYZ")
    text = redact.redact("a sk-liveKEY0123456789abcdefXYZ b ...EY0123456789abcdefXYZ c org-1234567890123 ak-1234567890123")
    assert "0123456789" not in text and "org-1234567890123" not in text and "ak-1234567890123" not in text
    assert "sk-***fXYZ" in text
    headers = redact.redact_headers({"Authorization": "Bearer sk-other0123456789abc", "Cookie": "session=abcdefghijkl", "Accept": "*/*"})
    assert headers == {"Authorization": "Bearer sk-***9abc", "Cookie": "***ijkl", "Accept": "*/*"}


def test_properties_lines_are_escaped():
    assert properties_line("a b", "x\\y\nz é") == "a\\ b=x\\\\y\\nz \\u00e9"
