"""Mutation benchmark: the share of cosmic-ray's mutants of the reference Kimi code that the suites kill.

    python3 bench/mutation.py [--module provider|client|both] [--sample N] [--seed S] [--only KEY]
                              [--jobs N] [--runner fork|subprocess] [--timeout SECONDS]
                              [--build reference-<v> [--build reference-<v>]] [--out DIR]

A second measure beside the defect matrix, not a gate. The mutants are cosmic-ray's
(installed on first use into ``.builds/tools/cosmic-ray``, a virtualenv of its own;
``bench/mutation_cosmic_ray.py`` runs there): every operator that needs no
configuration, applied at each position of the reference provider
(``fixtures/builds/reference/kimi.py``) and client (``kimi_client.py``).

Each worker (``bench/mutation_workers.py``) makes one scratch copy of the build's
overlay and, per mutant, rewrites the one mutated file in it, then runs the suites
against it with the build's Python: ``pytest suites -x -q -p no:warnings --strict
--conformance-report ...`` (``--strict`` so a SHOULD failure kills too, ``-x`` to stop
there). A mutant is *killed* when a behaviour turns red (or the build loses its Kimi
provider, or the mutated module does not import), *survived* when the suites stay
green, a *timeout* past the per-mutant limit (default: five times the unmutated run,
at least 60 s), an *error* when the run failed without a verdict. The ``fork`` runner
(default) imports Letta once per worker and forks a child per mutant that reloads only
the mutated module (``kimi_conformance.forkserver``, shared with the verdict matrix); ``subprocess`` starts a fresh
interpreter per mutant (slower, nothing shared: it cross-checks the fork runner).
With several ``--build``, the survivors of one build are run against the next (code
only one Letta layout reaches, such as 0.16's encrypted keys, is judged there).

Prints mutants, killed, survived, timeouts, errors and the score per module
(score = (killed + timeouts) / (mutants - errors)) after each build, the wall time,
and each survivor as key, file:line, operator and the changed line. Writes
``DIR/score.json``, one log per mutant under ``DIR/logs/<build>/``, and cosmic-ray's
session ``DIR/session.sqlite`` with the outcomes
(``.builds/tools/cosmic-ray/bin/cr-report DIR/session.sqlite``). Exit 0 after a
measurement, 2 when it could not measure (a setup error, or suites that are not green
on the unmutated build). Standard library only, like the launcher.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from kimi_conformance import builds  # noqa: E402
from mutation_mutants import TARGETS, BenchError, Mutant, Result, Target, format_report, mutants_from_cosmic_ray, sample, summarize  # noqa: E402
from mutation_workers import RUNNERS, SUITE_ARGS, run_mutants  # noqa: E402
import mutation_judgements  # noqa: E402

DEFAULT_OUT = ROOT / "reports" / "mutation"
TOOL_REQUIREMENT = "cosmic-ray==8.7.0"


# --------------------------------------------------------------------------------------
# cosmic-ray in its own environment


def tool_dir() -> Path:
    return builds.build_root() / "tools" / "cosmic-ray"


def ensure_tool() -> Path:
    """cosmic-ray's interpreter, installing it (uv, pinned) into .builds/tools/cosmic-ray if missing."""
    target = tool_dir()
    python = target / "bin" / "python"
    marker = target / ".kit-tool.json"
    if builds._read_marker(marker, "requirement") == TOOL_REQUIREMENT and python.exists():
        return python
    with builds._locked("tool-cosmic-ray"):
        if builds._read_marker(marker, "requirement") == TOOL_REQUIREMENT and python.exists():
            return python
        builds.log(f"installing {TOOL_REQUIREMENT} into {target}")
        if target.exists():
            shutil.rmtree(target)
        uv = builds.uv_executable()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            builds._run([uv, "venv", "--quiet", "--python", sys.executable, target], env=env)
            builds._run([uv, "pip", "install", "--quiet", "--python", python, TOOL_REQUIREMENT], env=env)
        except builds.BuildError as e:
            shutil.rmtree(target, ignore_errors=True)
            raise BenchError(f"could not install {TOOL_REQUIREMENT}: {e}") from e
        marker.write_text(json.dumps({"requirement": TOOL_REQUIREMENT}))
    return python


def cosmic_ray(tool_python: Path, *args: str) -> None:
    done = subprocess.run([str(tool_python), str(BENCH / "mutation_cosmic_ray.py"), *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"bench/mutation_cosmic_ray.py {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def make_mutants(tool_python: Path, targets: list[Target], session: Path, work: Path) -> list[Mutant]:
    listing = work / "mutants.json"
    session.unlink(missing_ok=True)
    cosmic_ray(tool_python, "mutants", str(session), str(listing), *(str(t.source.relative_to(ROOT)) for t in targets))
    entries = json.loads(listing.read_text(encoding="utf-8"))
    for entry in entries:
        entry["file"] = str((ROOT / entry["file"]).resolve())
    return mutants_from_cosmic_ray(entries, targets)


def record_in_session(tool_python: Path, session: Path, results: list[Result], mutants: list[Mutant], work: Path) -> None:
    """Store the outcomes in cosmic-ray's session (cr-report, cr-html read it)."""
    by_key = {m.key: m for m in mutants}
    rows = []
    for r in results:
        m = by_key[r.key]
        original = TARGETS[m.target].source.read_text(encoding="utf-8")
        diff = "\n".join(difflib.unified_diff(original.splitlines(), m.source.splitlines(), f"a/{m.file}", f"b/{m.file}", lineterm=""))
        rows.append({"job_id": r.job_id, "outcome": r.outcome, "diff": diff, "output": f"{r.outcome} {', '.join(r.killed_by)} (log: {r.log})"})
    path = work / "results.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    cosmic_ray(tool_python, "record", str(session), str(path))


# --------------------------------------------------------------------------------------
# outputs


def write_outputs(out: Path, results: list[Result], stages: list[dict], wall: float, meta: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    data = {**meta, "wall_seconds": round(wall, 1), "modules": stages[-1]["modules"] if stages else {}, "stages": stages,
            "survivors": [asdict(r) for r in results if r.outcome == "survived"],
            "timeouts": [asdict(r) for r in results if r.outcome == "timeout"],
            "errors": [asdict(r) for r in results if r.outcome == "error"],
            "mutants": [asdict(r) for r in results]}
    path = out / "score.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 bench/mutation.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", choices=["provider", "client", "both"], default="both", help="which reference module to mutate (default: both)")
    parser.add_argument("--sample", type=int, metavar="N", help="run a random subset of N mutants (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default: 0)")
    parser.add_argument("--only", action="append", metavar="KEY", help="run only this mutant (a key such as provider-012 from score.json; repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="workers running mutants side by side (default: 1)")
    parser.add_argument("--runner", choices=sorted(RUNNERS), default="fork", help="fork (Letta imported once per worker; default) or subprocess")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="per-mutant limit (default: 5x the unmutated run, at least 60 s)")
    references = [f"reference-{v}" for v in builds.letta_versions()]
    parser.add_argument("--build", action="append", choices=references, metavar="BUILD",
                        help=f"a reference build to run the suites against, repeatable: the survivors of one build are run "
                             f"against the next (default: {' then '.join(references)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where score.json, logs/ and session.sqlite go (default: reports/mutation)")
    args = parser.parse_args(argv)
    args.build = list(dict.fromkeys(args.build or references))
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1 (got {args.jobs})")
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample must be at least 1 (got {args.sample})")
    if args.timeout is not None and args.timeout <= 0:
        parser.error(f"--timeout must be positive (got {args.timeout})")
    return args


def select_mutants(everything: list[Mutant], only: list[str] | None, size: int | None, seed: int) -> list[Mutant]:
    if only:
        keys = {m.key for m in everything}
        unknown = sorted(set(only) - keys)
        if unknown:
            raise BenchError(f"--only: no mutant {', '.join(unknown)} (keys run from {everything[0].key} to {everything[-1].key}; see score.json)")
        everything = [m for m in everything if m.key in set(only)]
    return sample(everything, size, seed)


def run_stages(build_names: list[str], mutants: list[Mutant], args: argparse.Namespace, log_dir: Path,
               judgements: list[mutation_judgements.Judgement]) -> tuple[list[Result], list[dict]]:
    """Run the mutants against each build in turn; only a build's survivors go on to the next.

    After each build the survivors judged equivalent are marked, and the stage's
    summary counts what was killed on that build or an earlier one.
    """
    final: dict[str, Result] = {}
    stages: list[dict] = []
    pending = list(mutants)
    for name in build_names:
        build = builds.ensure_build(name)
        print(f"{len(pending)} mutant(s) against {build.name} ({args.runner} runner, {args.jobs} job(s))", flush=True)
        results, timings = run_mutants(build, pending, runner=args.runner, jobs=args.jobs, timeout=args.timeout,
                                       log_dir=log_dir / build.name, progress=lambda s: print(s, flush=True))
        for r in results:
            r.build = build.name
            final[r.key] = r
        ordered = [final[m.key] for m in mutants if m.key in final]
        mutation_judgements.apply(ordered, judgements)
        stages.append({"build": build.name, "ran": len(pending), **timings, "modules": summarize(ordered)})
        pending = [m for m in pending if final[m.key].outcome == "survived"]
        if not pending:
            break
    return [final[m.key] for m in mutants if m.key in final], stages


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    targets = [TARGETS[n] for n in (["provider", "client"] if args.module == "both" else [args.module])]
    wall_start = time.perf_counter()
    out = args.out.resolve()
    session = out / "session.sqlite"
    with tempfile.TemporaryDirectory(prefix="kimi-mutation-work-") as work_dir:
        work = Path(work_dir)
        try:
            tool_python = ensure_tool()
            out.mkdir(parents=True, exist_ok=True)
            everything = make_mutants(tool_python, targets, session, work)
            chosen = select_mutants(everything, args.only, args.sample, args.seed)
            log_dir = out / "logs"
            shutil.rmtree(log_dir, ignore_errors=True)
            print(f"{len(chosen)} of {len(everything)} mutants ({TOOL_REQUIREMENT})", flush=True)
            judgements = mutation_judgements.load()
            results, stages = run_stages(args.build, chosen, args, log_dir, judgements)
            record_in_session(tool_python, session, results, chosen, work)
        except (BenchError, builds.BuildError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    wall = time.perf_counter() - wall_start
    problems = mutation_judgements.apply(results, judgements)
    if len(chosen) == len(everything):  # every mutant ran: a judgement that matched none is stale
        problems += mutation_judgements.unmatched(results, judgements, {m.file for m in everything})
    meta = {"tool": TOOL_REQUIREMENT, "builds": args.build, "runner": args.runner, "jobs": args.jobs, "sample": args.sample,
            "seed": args.seed, "only": args.only, "mutants_total": len(everything), "suite_args": SUITE_ARGS,
            "judgement_problems": problems}
    path = write_outputs(out, results, stages, wall, meta)
    for line in format_report(results, stages, wall, f"mutation benchmark: {TOOL_REQUIREMENT} mutants, {args.runner} runner, {args.jobs} job(s)"):
        print(line)
    if problems:
        print("stale judgements in bench/mutation_equivalent.toml (fix or remove them):")
        for problem in problems:
            print(f"  {problem}")
    print(f"score: {path}; cosmic-ray session: {session}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
