"""Mutation benchmark: surviving mutants judged equivalent, read from ``bench/mutation_equivalent.toml``.

An equivalent mutant changes the code without changing anything the contract can
observe; no test can kill it, so the benchmark reports it apart and gives the score
both with it and without it. A judgement names the mutant by what it changes (file,
cosmic-ray operator, the line before and after, optionally the function), not by its
line number or key, so it survives edits elsewhere in the file. A judged mutant that
the suites kill, and a judgement that no mutant matches any more, are reported: the
judgement is stale. Standard library only.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mutation_mutants import BenchError, Result

DEFAULT_FILE = Path(__file__).resolve().parent / "mutation_equivalent.toml"
REQUIRED = ("file", "operator", "before", "after", "why")
OPTIONAL = ("definition",)


@dataclass(frozen=True)
class Judgement:
    file: str
    operator: str
    before: str
    after: str
    why: str
    definition: str | None = None

    def matches(self, result: Result) -> bool:
        return (result.file, result.operator, result.before, result.after) == (self.file, self.operator, self.before, self.after) and (
            self.definition is None or result.definition == self.definition
        )

    def describe(self) -> str:
        where = f"{self.file} [{self.definition}]" if self.definition else self.file
        return f"{where} {self.operator}: {self.before!r} -> {self.after!r}"


def load(path: Path = DEFAULT_FILE) -> list[Judgement]:
    """The judgements of ``path`` (none when it does not exist); a malformed file is a BenchError naming it."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BenchError(f"{path}: not a readable TOML file: {e}") from None
    unknown_top = sorted(set(data) - {"equivalent"})
    if unknown_top:
        raise BenchError(f"{path}: unknown key(s) {', '.join(unknown_top)} (expected [[equivalent]] tables)")
    judgements = []
    for index, entry in enumerate(data.get("equivalent", []), start=1):
        where = f"{path}: [[equivalent]] #{index}"
        if not isinstance(entry, dict):
            raise BenchError(f"{where}: not a table")
        missing = [k for k in REQUIRED if not isinstance(entry.get(k), str) or not entry[k].strip()]
        if missing:
            raise BenchError(f"{where}: missing or empty {', '.join(missing)}")
        unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise BenchError(f"{where}: unknown key(s) {', '.join(unknown)}")
        judgements.append(Judgement(**{k: entry[k] for k in (*REQUIRED, *OPTIONAL) if k in entry}))
    return judgements


def apply(results: list[Result], judgements: list[Judgement]) -> list[str]:
    """Mark the surviving mutants a judgement covers (``result.equivalent``); return the problems found.

    A problem is a judged mutant the suites killed (the judgement is wrong or stale).
    """
    problems = []
    for result in results:
        judged = next((j for j in judgements if j.matches(result)), None)
        result.equivalent = judged.why if judged and result.outcome == "survived" else None
        if judged and result.outcome == "killed":
            problems.append(f"judged equivalent but killed ({', '.join(result.killed_by)}): {result.key} {judged.describe()}")
    return problems


def unmatched(results: list[Result], judgements: list[Judgement], files: set[str]) -> list[str]:
    """Judgements of ``files`` (every mutant of which ran) that matched no mutant: stale."""
    return [f"matches no mutant any more: {j.describe()}" for j in judgements if j.file in files and not any(j.matches(r) for r in results)]
