"""The conformance summary in Markdown, made from the JSON report (for a PR comment or a CI job summary).

Written next to the JSON report (``reports/conformance.json`` -> ``reports/conformance.md``):
a one-line badge with the verdict, a table (behaviour, level, verdict), per red behaviour
the promise (linked to the kit's CONTRACT.md, or the URL in KIMI_CONFORMANCE_CONTRACT_URL),
the failing cases and the fix hint (the "If this fails:" of the failing test's docstring),
and the INFO findings.

``python -m kimi_conformance.summary_md REPORT.json`` writes it for an existing report.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from kimi_conformance import builds, guide_links
from kimi_conformance.contract import BEHAVIORS
from kimi_conformance.exitcodes import EXIT_USAGE
from kimi_conformance.inputs import summary_path_for
from kimi_conformance.redact import redact

KIT_ROOT = builds.KIT_ROOT  # where the suites' node ids are relative to (the checkout or the installed tree)
MAX_CASES = 10  # failing cases shown per red behaviour (the rest counted)
MAX_HINTS = 3  # distinct fix hints shown per red behaviour

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "upstream-unavailable": "🌐", "not-applicable": "➖"}
BADGES = {
    "conformant": "✅ conformant",
    "conformant-with-warnings": "⚠️ conformant with warnings",
    "non-conformant": "❌ non-conformant",
    "no-kimi-provider": "⛔ no Kimi provider",
    "upstream-unavailable": "🌐 upstream unavailable (live API)",
    "untested": "➖ untested (no behaviour was checked)",
    "partial": "◐ partial (some MUST behaviours were not checked)",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: object) -> str:
    return f"`{str(text).replace('`', '')}`"


def render(report: dict) -> str:
    """The Markdown summary of one JSON report (as written by :mod:`kimi_conformance.report`)."""
    behaviors: dict[str, str] = report.get("behaviors", {})
    levels: dict[str, str] = report.get("levels", {})
    verdict = report.get("verdict", "unknown")
    build = report.get("build", {})
    red = [bid for bid, v in behaviors.items() if v == "fail"]
    tested = [bid for bid, v in behaviors.items() if v != "not-applicable"]

    lines = [f"## Kimi provider conformance: {BADGES.get(verdict, _cell(verdict))}", ""]
    if report.get("no_kimi_provider"):
        lines += [f"> {_cell(report['no_kimi_provider'])}", ""]
    elif red:
        lines += [f"**Red:** {', '.join(f'**{bid}**' for bid in red)} ({len(red)} of {len(tested)} tested behaviours)", ""]
    if report.get("not_checked"):
        lines += [f"**Not checked** (a partial run): {', '.join(report['not_checked'])}", ""]
    elif not red and not report.get("no_kimi_provider"):
        lines += [f"{len(tested)} of {len(behaviors)} behaviours tested, none red.", ""]
    binding = build.get("binding", {}).get("source", "default")
    lines += [
        f"Build: letta {_code(build.get('letta_version'))} at {_code(build.get('letta_path'))}; "
        f"python {_code(build.get('python'))}; binding {_code(binding)}; strict: {'yes' if report.get('strict') else 'no'}",
        "",
        "| behaviour | level | verdict |",
        "|---|---|---|",
    ]
    for bid, v in behaviors.items():
        lines.append(f"| {_cell(bid)} | {_cell(levels.get(bid, ''))} | {ICONS.get(v, '❔')} {_cell(v)} |")
    failed = report.get("failed_tests", {})
    if failed:
        lines += ["", "### What broke and how to fix it", ""]
        for bid, nodeids in failed.items():
            lines += red_entry(bid, behaviors.get(bid, ""), levels.get(bid, ""), nodeids)
    findings = report.get("findings", {})
    if findings:
        lines += ["", "### INFO findings", ""]
        lines += [f"- **{bid}**: {_cell(item)}" for bid, items in findings.items() for item in items]
    kit = report.get("kit", {})
    lines += ["", f"<sub>{kit.get('name', 'kimi-conformance')} {kit.get('version', '')}</sub>", ""]
    return redact("\n".join(lines))  # no secret leaves the process


def red_entry(bid: str, verdict: str, level: str, nodeids: list[str]) -> list[str]:
    """One red (or warned) behaviour: its promise with the contract's link, the failing cases, the fix."""
    behavior = BEHAVIORS.get(bid)
    name, url = guide_links.contract_link(bid)
    promise = behavior.summary if behavior else "(an ID this kit does not know)"
    lines = [f"#### {ICONS.get(verdict, '❔')} {bid} ({_cell(level)}, {_cell(verdict)})", "",
             f"- **Promise:** {_cell(promise)} ([{name}]({url}){'; guide ' + behavior.guide if behavior else ''})"]
    shown = nodeids[:MAX_CASES]
    more = f" and {len(nodeids) - len(shown)} more" if len(nodeids) > len(shown) else ""
    lines.append(f"- **Failing case{'s' if len(nodeids) > 1 else ''}:** " + ", ".join(_code(n) for n in shown) + more)
    hints = []
    for nodeid in nodeids:
        hint = fix_hint(nodeid)
        if hint and hint not in hints:
            hints.append(hint)
    if hints:
        lines.append(f"- **Fix:** {_cell(hints[0])}")
        lines += [f"  - also: {_cell(h)}" for h in hints[1:MAX_HINTS]]
    return [*lines, ""]


def fix_hint(nodeid: str, root: Path = KIT_ROOT) -> str | None:
    """The "If this fails:" paragraph of the test a node id names (None if it has none)."""
    parts = nodeid.split("::")
    if len(parts) < 2:
        return None
    names = [re.sub(r"\[.*$", "", p) for p in parts[1:]]
    return _hints_in(str(root / parts[0])).get(".".join(names))


@lru_cache(maxsize=64)
def _hints_in(path: str) -> dict[str, str]:
    """Qualified test name -> its fix hint, for one test file (read once)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    hints: dict[str, str] = {}

    def visit(body, prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                match = re.search(r"If this fails:\s*(.+?)(?:\n\s*\n|$)", doc, re.S)
                if match:
                    hints[prefix + node.name] = " ".join(match.group(1).split())

    visit(tree.body, "")
    return hints


def path_for(json_report: Path) -> Path:
    return summary_path_for(json_report)


def write_next_to(json_report: Path) -> Path:
    """Read the JSON report and write its Markdown summary beside it (atomically); its path."""
    report = json.loads(json_report.read_text(encoding="utf-8"))
    target = path_for(json_report)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    tmp.write_text(render(report), encoding="utf-8")
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m kimi_conformance.summary_md REPORT.json", file=sys.stderr)
        return EXIT_USAGE
    source = Path(argv[0])
    try:
        print(write_next_to(source))
    except (OSError, ValueError) as e:
        print(f"error: {source}: cannot make a summary ({type(e).__name__}: {e})", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
