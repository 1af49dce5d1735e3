"""The conformance summary in Markdown, made from the JSON report (for a PR comment or a CI job summary).

Written next to the JSON report (``reports/conformance.json`` -> ``reports/conformance.md``):
a one-line badge with the verdict, a table (behaviour, level, verdict), the failing
tests of each red behaviour, and the INFO findings.

``python -m kimi_conformance.summary_md REPORT.json`` writes it for an existing report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kimi_conformance.exitcodes import EXIT_USAGE
from kimi_conformance.redact import redact

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "upstream-unavailable": "🌐", "not-applicable": "➖"}
BADGES = {
    "conformant": "✅ conformant",
    "conformant-with-warnings": "⚠️ conformant with warnings",
    "non-conformant": "❌ non-conformant",
    "no-kimi-provider": "⛔ no Kimi provider",
    "upstream-unavailable": "🌐 upstream unavailable (live API)",
    "untested": "➖ untested (no behaviour was checked)",
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
    else:
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
        lines += ["", "### Tests that failed", ""]
        for bid, nodeids in failed.items():
            kind = behaviors.get(bid, "")
            lines += [f"- **{bid}** ({kind}):", *(f"  - {_code(n)}" for n in nodeids)]
    findings = report.get("findings", {})
    if findings:
        lines += ["", "### INFO findings", ""]
        lines += [f"- **{bid}**: {_cell(item)}" for bid, items in findings.items() for item in items]
    kit = report.get("kit", {})
    lines += ["", f"<sub>{kit.get('name', 'kimi-conformance')} {kit.get('version', '')}</sub>", ""]
    return redact("\n".join(lines))  # no secret leaves the process


def path_for(json_report: Path) -> Path:
    return json_report.with_suffix(".md")


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
