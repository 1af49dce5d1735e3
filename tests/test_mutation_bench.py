"""The mutation benchmark (bench/mutation*.py): verdicts, scores, judgements, reloading, and both runners.

The benchmark itself (`python3 bench/mutation.py`) is run by hand; these tests check
its parts, and run two hand-made mutants of the reference provider through each
runner: one the suites must kill, one (an equivalent mutant) they must not.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

KIT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT_ROOT / "bench"))

import mutation_judgements  # noqa: E402
import mutation_mutants  # noqa: E402
from mutation_mutants import BenchError, Mutant, Result  # noqa: E402

from kimi_conformance import forkserver  # noqa: E402

PROVIDER = mutation_mutants.TARGETS["provider"]
GREEN = {"behaviors": {"LIST-PREFIX": "pass", "REST-AGENT": "not-applicable"}}


def result(outcome: str, *, target: str = "provider", equivalent: str | None = None, **fields) -> Result:
    base = dict(key="provider-001", target=target, file=str(PROVIDER.source.relative_to(KIT_ROOT)), line=1, col=0,
                operator="core/NumberReplacer", occurrence=0, definition=None, before="x = 1", after="x = 2", job_id="j",
                outcome=outcome, killed_by=[], exit_code=0, seconds=0.0, log="")
    return Result(**{**base, **fields}, equivalent=equivalent)


@pytest.mark.parametrize(
    ("exit_code", "report", "expected"),
    [
        (None, None, ("timeout", [])),
        (0, GREEN, ("survived", [])),
        (1, {"behaviors": {"AUTH-OK": "fail", "LIST-PREFIX": "pass"}}, ("killed", ["AUTH-OK"])),
        (0, {"behaviors": {"ROUTE-KEY": "warn"}}, ("killed", ["ROUTE-KEY"])),
        (6, {"behaviors": {"AUTH-OK": "not-applicable"}}, ("killed", ["no Kimi provider"])),
        (99, None, ("killed", ["the build does not import"])),
        (4, None, ("killed", ["the build does not import"])),
        (1, GREEN, ("error", ["exit 1 without a red behaviour"])),
        (2, None, ("error", ["exit 2 without a report"])),
        (0, None, ("error", ["exit 0 without a report"])),
    ],
)
def test_a_run_is_judged_from_its_exit_code_and_report(exit_code, report, expected):
    """Killed only on a red behaviour, the no-Kimi verdict or a build that does not import; a failure without a verdict is an error."""
    assert mutation_mutants.classify(exit_code, report) == expected


def test_changed_lines_name_the_first_changed_line():
    """The report shows the line a mutant changes, before and after, stripped."""
    assert mutation_mutants.changed_lines("a = 1\n    if x >= 400:\nb = 2\n", "a = 1\n    if x > 400:\nb = 2\n") == (2, "if x >= 400:", "if x > 400:")
    assert mutation_mutants.changed_lines("same\n", "same\n") == (0, "", "")


def test_sample_is_a_reproducible_subset_in_the_original_order():
    """--sample N picks the same N mutants for the same seed, keeps their order, and all of them when N is not smaller."""
    mutants = [Mutant(f"provider-{i:03d}", "provider", str(i), "op", 0, i, 0, None, "", "", "") for i in range(20)]
    first, again = mutation_mutants.sample(mutants, 5, seed=3), mutation_mutants.sample(mutants, 5, seed=3)
    assert [m.key for m in first] == [m.key for m in again] and len(first) == 5
    assert [m.key for m in first] == sorted(m.key for m in first)
    assert mutation_mutants.sample(mutants, 50, seed=3) == mutants


def test_mutants_from_cosmic_ray_are_keyed_per_module_in_source_order():
    """Keys follow position in the file; an occurrence cosmic-ray could not mutate (no source) is dropped."""
    original = PROVIDER.source.read_text()
    later = original.replace("KIMI_DEFAULT_CONTEXT_WINDOW = 8192", "KIMI_DEFAULT_CONTEXT_WINDOW = 8193", 1)
    earlier = original.replace('KIMI_DEFAULT_BASE_URL = "https://api.moonshot.cn/v1"', 'KIMI_DEFAULT_BASE_URL = "x"', 1)
    entries = [
        {"job_id": "b", "file": str(PROVIDER.source), "operator": "core/NumberReplacer", "occurrence": 1, "start": [27, 30], "source": later},
        {"job_id": "a", "file": str(PROVIDER.source), "operator": "core/Other", "occurrence": 0, "start": [25, 0], "source": earlier},
        {"job_id": "c", "file": str(PROVIDER.source), "operator": "core/Other", "occurrence": 9, "start": [99, 0], "source": None},
    ]
    mutants = mutation_mutants.mutants_from_cosmic_ray(entries, [PROVIDER])
    assert [(m.key, m.job_id) for m in mutants] == [("provider-001", "a"), ("provider-002", "b")]
    assert (mutants[1].line, mutants[1].before, mutants[1].after) == (27, "KIMI_DEFAULT_CONTEXT_WINDOW = 8192", "KIMI_DEFAULT_CONTEXT_WINDOW = 8193")


def test_scores_count_timeouts_as_detected_and_leave_errors_and_equivalents_out():
    """score = (killed + timeouts) / (mutants - errors); the second score also leaves judged-equivalent survivors out."""
    results = [result("killed"), result("killed"), result("timeout"), result("survived"), result("survived", equivalent="why"), result("error")]
    summary = mutation_mutants.summarize(results)["provider"]
    assert (summary["mutants"], summary["killed"], summary["survived"], summary["equivalent"], summary["errors"]) == (6, 2, 2, 1, 1)
    assert summary["score"] == 0.6 and summary["score_without_equivalent"] == 0.75


def test_the_equivalence_judgements_still_name_code_of_the_reference():
    """Each judgement in bench/mutation_equivalent.toml is complete and its `before` line still occurs in its file.

    If this fails: the reference code changed under a judgement; run the benchmark and judge the survivors again.
    """
    judgements = mutation_judgements.load()
    assert judgements
    for j in judgements:
        assert j.before in (KIT_ROOT / j.file).read_text(), f"stale judgement: {j.describe()}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[equivalent]\n", "not a readable TOML file"),
        ('[[equivalent]]\nfile = "f"\noperator = "o"\nbefore = "b"\nafter = "a"\n', "#1: missing or empty why"),
        ('[[equivalent]]\nfile = "f"\noperator = "o"\nbefore = "b"\nafter = "a"\nwhy = "w"\nline = 3\n', "#1: unknown key(s) line"),
        ('[judgement]\nwhy = "w"\n', "unknown key(s) judgement"),
    ],
    ids=["not-toml", "missing-why", "unknown-key", "unknown-table"],
)
def test_a_malformed_judgements_file_is_one_error_naming_it(tmp_path, text, message):
    """A judgements file that is not TOML, or an entry missing a field or with an unknown one, is one error naming the file and entry."""
    path = tmp_path / "equivalent.toml"
    path.write_text(text)
    with pytest.raises(BenchError, match=re.escape(message)) as raised:
        mutation_judgements.load(path)
    assert str(path) in str(raised.value)


def test_judgements_mark_survivors_and_flag_a_judged_mutant_that_was_killed():
    """A matching survivor is marked equivalent; a matching killed mutant, and a judgement matching nothing, are stale."""
    judged = mutation_judgements.Judgement(file=result("survived").file, operator="core/NumberReplacer", before="x = 1", after="x = 2", why="same")
    other = mutation_judgements.Judgement(file=judged.file, operator="core/Other", before="y", after="z", why="gone")
    survivor, killed = result("survived"), result("killed", key="provider-002", killed_by=["LIST-CONTEXT"])
    problems = mutation_judgements.apply([survivor, killed], [judged, other])
    assert survivor.equivalent == "same" and killed.equivalent is None
    assert len(problems) == 1 and "provider-002" in problems[0] and "LIST-CONTEXT" in problems[0]
    assert mutation_judgements.unmatched([survivor, killed], [judged, other], {judged.file}) == [f"matches no mutant any more: {other.describe()}"]


def test_reloading_a_module_rebinds_the_names_other_modules_imported(tmp_path, monkeypatch):
    """The fork server's reload re-reads the mutated file and moves `from m import C` references to the new objects."""
    (tmp_path / "kit_mut_target.py").write_text("class Provider:\n    value = 1\n\ndef helper():\n    return 1\n")
    (tmp_path / "kit_mut_user.py").write_text("from kit_mut_target import Provider, helper\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("kit_mut_target", "kit_mut_user"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import kit_mut_user

    (tmp_path / "kit_mut_target.py").write_text(textwrap.dedent("""\
        class Provider:
            value = 2222

        def helper():
            return 2222
    """))
    forkserver.reload_module("kit_mut_target")
    assert (kit_mut_user.Provider.value, kit_mut_user.helper()) == (2222, 2222)
    assert kit_mut_user.Provider is sys.modules["kit_mut_target"].Provider
    forkserver.reload_module("kit_mut_never_imported")  # nothing to do: its first import reads the file
    for name in ("kit_mut_target", "kit_mut_user"):
        sys.modules.pop(name, None)


def hand_made(key: str, old: str, new: str) -> Mutant:
    original = PROVIDER.source.read_text()
    assert original.count(old) >= 1, f"the reference provider no longer contains {old!r}"
    mutated = original.replace(old, new, 1)
    line, before, after = mutation_mutants.changed_lines(original, mutated)
    return Mutant(key, "provider", key, "hand-made", 0, line, 0, None, before, after, mutated)


KILLED = ("provider-901", "KIMI_DEFAULT_CONTEXT_WINDOW = 8192", "KIMI_DEFAULT_CONTEXT_WINDOW = 8193")
EQUIVALENT = ("provider-902", "is_embedding: bool = False", "is_embedding: bool = True")


@pytest.mark.parametrize(("runner", "cases"), [("fork", [KILLED, EQUIVALENT]), ("subprocess", [KILLED])])
def test_a_runner_kills_a_real_mutant_and_spares_an_equivalent_one(tmp_path, runner, cases):
    """Against reference-0.11.7: the 8192 default changed is killed by LIST-CONTEXT; get_handle's unread is_embedding default survives.

    If this fails: the runner does not run the mutated file (the fork server's reload, a stale
    .pyc, the scratch overlay) or judges the run wrongly; the logs are in the test's tmp_path.
    """
    from kimi_conformance import builds
    from mutation_workers import run_mutants

    build = builds.ensure_build("reference-0.11.7")
    mutants = [hand_made(*case) for case in cases]
    results, timings = run_mutants(build, mutants, runner=runner, timeout=300, log_dir=tmp_path, check_baseline=False, progress=lambda line: None)
    outcomes = {r.key: (r.outcome, r.killed_by) for r in results}
    assert outcomes[KILLED[0]] == ("killed", ["LIST-CONTEXT"]), (tmp_path / f"{KILLED[0]}.log").read_text()[-3000:]
    if EQUIVALENT in cases:
        assert outcomes[EQUIVALENT[0]] == ("survived", []), (tmp_path / f"{EQUIVALENT[0]}.log").read_text()[-3000:]
    assert PROVIDER.source.read_text().count("KIMI_DEFAULT_CONTEXT_WINDOW = 8192") == 1, "the benchmark must never touch the kit's own source"
