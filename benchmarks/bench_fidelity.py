"""The evaluation report: what each model's drafts become on the fixed fidelity suite.

For every model found (or those named with --model), plays the suite of `edgetutor models
qualify` (edgetutor/service/fidelity_suite.yaml: the demo cases' evaluation questions, probes
and conversation utterances) through the real encounter and prints, per model and per split
(tuning cases, held-out cases, all):
- drafts (questions that reached the model), accepted, and rejected by reason;
- accepted replies that differ from the authored answer, and those that are not near-copies;
- violations in accepted replies, found by edgetutor/patient/fidelity_check.py, which shares no
  code with the guard (the target is 0, on the held-out cases above all);
- the guard's time per turn.
Nothing is written: `edgetutor models qualify` is what records a model's qualification.

--unseen plays, instead of the suite, every evaluation question and probe of the held-out cases
that the suite does not hold: items that no one looked at while the guard was written, so the
cleanest test of "0 violations reach the trainee".

Usage: python benchmarks/bench_fidelity.py [--model M]... [--case ID]... [--unseen] [--json] [--turns FILE]
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


def unseen_items(suite: Any, item: Any) -> tuple[Any, ...]:
    """Every question with expected facts and every probe of the held-out cases, minus the suite's."""
    from ruamel.yaml import YAML

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_retrieval import TUNED_ON

    known = {(i.case, i.q) for i in suite}
    out = []
    for path in sorted((ROOT / "evals" / "retrieval").glob("*.yaml")):
        spec = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        case = spec["case"]
        if case in TUNED_ON:
            continue
        qs = [("questions", q["q"]) for q in spec["questions"] if q["expect"]]
        qs += [("probes", p["q"]) for p in spec.get("probes") or []]
        out += [item(case, "held-out", kind, q) for kind, q in qs if (case, q) not in known]
    return tuple(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="model path or name (repeatable)")
    parser.add_argument("--case", action="append", default=[], help="only this suite case (repeatable)")
    parser.add_argument("--unseen", action="store_true", help="held-out items outside the suite")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--turns", type=Path, help="write every played turn to this JSON file")
    args = parser.parse_args(argv)

    from edgetutor.errors import ModelError
    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.llm import LlamaBackend
    from edgetutor.patient.models import discover, select
    from edgetutor.service.qualify import Item, demo_cases, evaluate, format_report, load_suite

    entries = [select(m) for m in args.model] or [e for e in discover() if e.error is None]
    _, items = load_suite()
    if args.unseen:
        items = unseen_items(items, Item)
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
