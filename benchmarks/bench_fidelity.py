"""The evaluation report: what each model's drafts become on the fixed fidelity suite.

For every model found (or those named with --model), plays the suite of `edgetutor models
qualify` (edgetutor/patient/fidelity_suite.yaml: the demo cases' evaluation questions, probes
and conversation utterances) through the real encounter and prints, per model and per split
(tuning cases, held-out cases, all):
- drafts (questions that reached the model), accepted, and rejected by reason;
- accepted replies that differ from the authored answer, and those that are not near-copies;
- violations in accepted replies, found by edgetutor/patient/fidelity_check.py, which shares no
  code with the guard (the target is 0, on the held-out cases above all);
- the guard's time per turn.
Nothing is written: `edgetutor models qualify` is what records a model's qualification.

Usage: python benchmarks/bench_fidelity.py [--model M]... [--case ID]... [--json] [--turns FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as edgetutor's CLI does
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="model path or name (repeatable)")
    parser.add_argument("--case", action="append", default=[], help="only this suite case (repeatable)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--turns", type=Path, help="write every played turn to this JSON file")
    args = parser.parse_args(argv)

    from edgetutor.errors import ModelError
    from edgetutor.patient.llm import LlamaBackend
    from edgetutor.patient.models import discover, select
    from edgetutor.patient.qualify import demo_cases, evaluate, format_report, load_suite
    from edgetutor.patient.session import load_encoder

    entries = [select(m) for m in args.model] or [e for e in discover() if e.error is None]
    _, items = load_suite()
    chosen = [i for i in items if not args.case or i.case in args.case]
    cases = demo_cases(i.case for i in chosen)
    encoder = load_encoder()
    out: dict[str, Any] = {}
    turns: dict[str, Any] = {}
    for entry in entries:
        try:
            backend = LlamaBackend(entry.path)
        except ModelError as err:
            print(f"{entry.name}: skipped: {err}")
            continue
        try:
            report = evaluate(backend, encoder, chosen, cases)
        finally:
            backend.close()
        turns[entry.name] = report.pop("turns")
        out[entry.name] = report
        if not args.json:
            for split in ("tuning", "held-out", "total"):
                if split in report:
                    print("\n".join(format_report(f"{entry.name} [{split}]", report[split])))
    if args.turns:
        args.turns.write_text(json.dumps(turns, indent=1, ensure_ascii=False), encoding="utf-8")
    if args.json:
        print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
