"""What guarding adds to a turn: the sentence-level guard timed on realistic drafts, no model.

Each draft is replayed through the real encounter with a scripted backend (which takes no time
of its own), so what is timed is everything the guard does in a turn: splitting the stream into
sentences, checking each one (with the all-MiniLM-L6-v2 encoder when installed), the repetition
and length checks after every piece, and the whole-draft check. The figure is the turn's
`guard_ms` timing; the target is <= 15 ms per turn (the README, section Models).

Drafts come from a qualification record (`--record FILE`: the model's real drafts) or, by
default, are made from the fidelity suite: per question, the authored answer of the retrieved
facts (a copy), its first sentence only, and the authored answer followed by an invented sentence
(which the guard must reject).

Usage: python benchmarks/bench_guard.py [--record FILE] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as edgetutor's CLI does
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 15.0


def drafts_from_suite(limit: int | None) -> list[tuple[str, str, str]]:
    from edgetutor.patient.retrieval import FactIndex
    from edgetutor.patient.sentences import split_sentences
    from edgetutor.service.qualify import demo_cases, load_suite

    _, items = load_suite()
    items = tuple(i for i in items if i.set == "questions")[:limit]
    cases = demo_cases(i.case for i in items)
    indexes = {c: FactIndex(case) for c, case in cases.items()}
    out = []
    for item in items:
        found = indexes[item.case].search(item.q).matches
        if not found:
            continue
        authored = " ".join(m.fact.answer for m in found)
        out.append((item.case, item.q, authored))
        out.append((item.case, item.q, split_sentences(authored)[0]))
        out.append((item.case, item.q, authored + " I have lost weight recently."))
    return out


def drafts_from_record(path: Path, limit: int | None) -> list[tuple[str, str, str]]:
    record = json.loads(path.read_text(encoding="utf-8"))
    turns = [t for t in record["turns"] if t.get("draft")][:limit]
    return [(t["case"], t["q"], t["draft"]) for t in turns]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="a qualification record whose drafts to replay")
    parser.add_argument("--limit", type=int, default=None, help="at most this many suite items/drafts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.encounter import Encounter
    from edgetutor.patient.llm import ScriptedBackend
    from edgetutor.service.qualify import demo_cases

    drafts = drafts_from_record(args.record, args.limit) if args.record else drafts_from_suite(args.limit)
    cases = demo_cases(c for c, _, _ in drafts)
    encoder = load_encoder()
    backend = ScriptedBackend()
    encounters = {c: Encounter(case, backend, encoder) for c, case in cases.items()}
    per_turn: list[float] = []
    accepted = 0
    start = time.perf_counter()
    for case_id, question, draft in drafts:
        backend.enqueue(draft)
        reply = encounters[case_id].act(question)
        if "guard_ms" in reply.timings:
            per_turn.append(float(reply.timings["guard_ms"]))
            accepted += reply.source == "model"
    wall = time.perf_counter() - start
    per_turn.sort()
    result = {
        "turns": len(per_turn),
        "accepted": accepted,
        "encoder": encoder is not None,
        "guard_ms_median": round(statistics.median(per_turn), 2),
        "guard_ms_p95": round(per_turn[int(0.95 * (len(per_turn) - 1))], 2),
        "guard_ms_max": round(per_turn[-1], 2),
        "wall_s": round(wall, 2),
        "target_ms": TARGET_MS,
    }
    if args.json:
        print(json.dumps(result))
    else:
        source = args.record.name if args.record else "drafts made from the fidelity suite"
        print(f"{result['turns']} turns ({source}), encoder {'on' if result['encoder'] else 'off'}")
        print(
            f"guard time per turn: median {result['guard_ms_median']} ms, p95 {result['guard_ms_p95']} ms,"
            f" max {result['guard_ms_max']} ms   target <= {TARGET_MS:g} ms"
        )
    return result


if __name__ == "__main__":
    main()
