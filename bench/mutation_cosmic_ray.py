"""The cosmic-ray side of the mutation benchmark: make the mutants, record the outcomes.

    <tools python> bench/mutation_cosmic_ray.py mutants SESSION OUT.json FILE...
    <tools python> bench/mutation_cosmic_ray.py record SESSION RESULTS.json

Runs in the tools environment where bench/mutation.py installed cosmic-ray.

``mutants`` starts a cosmic-ray session (its ``init``: every operator that needs no
configuration, at every position in each FILE) and writes, for each work item, the
operator, occurrence, position and the mutated source (cosmic-ray's own
``mutate_code``) to OUT.json. The files themselves are never touched.

``record`` stores the benchmark's outcomes in the session (killed, survived, or a
timeout as cosmic-ray's "abnormal" worker outcome), so cosmic-ray's own tools read
it: ``cr-report SESSION --show-output``, ``cr-html SESSION``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cosmic_ray.commands
import cosmic_ray.plugins
from cosmic_ray.mutating import mutate_code
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult


def make_mutants(session: Path, files: list[Path]) -> list[dict]:
    with use_db(str(session), WorkDB.Mode.create) as db:
        cosmic_ray.commands.init(files, db, {})
        items = list(db.work_items)
    sources = {str(f): f.read_text(encoding="utf-8") for f in files}
    mutants = []
    for item in items:
        (spec,) = item.mutations
        operator = cosmic_ray.plugins.get_operator(spec.operator_name)()
        mutated = mutate_code(sources[str(spec.module_path)], operator, spec.occurrence)
        mutants.append(
            {
                "job_id": item.job_id,
                "file": str(spec.module_path),
                "operator": spec.operator_name,
                "occurrence": spec.occurrence,
                "start": list(spec.start_pos),
                "end": list(spec.end_pos),
                "definition": spec.definition_name,
                "source": mutated,
            }
        )
    return mutants


def record(session: Path, results: list[dict]) -> None:
    with use_db(str(session), WorkDB.Mode.open) as db:
        for r in results:
            if r["outcome"] == "timeout":
                result = WorkResult(worker_outcome=WorkerOutcome.ABNORMAL, output=r.get("output"), diff=r.get("diff"))
            elif r["outcome"] == "error":
                result = WorkResult(worker_outcome=WorkerOutcome.EXCEPTION, output=r.get("output"), diff=r.get("diff"))
            else:
                outcome = TestOutcome.SURVIVED if r["outcome"] == "survived" else TestOutcome.KILLED
                result = WorkResult(worker_outcome=WorkerOutcome.NORMAL, test_outcome=outcome, output=r.get("output"), diff=r.get("diff"))
            db.set_result(r["job_id"], result)


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "mutants":
        mutants = make_mutants(Path(argv[1]), [Path(f) for f in argv[3:]])
        Path(argv[2]).write_text(json.dumps(mutants), encoding="utf-8")
        return 0
    if len(argv) == 3 and argv[0] == "record":
        record(Path(argv[1]), json.loads(Path(argv[2]).read_text(encoding="utf-8")))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
