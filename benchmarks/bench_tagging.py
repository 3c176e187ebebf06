"""How well an importer's automatic topic tags agree with an author's (patient/topics.tag_fact).

An imported fact has no hand-written topics: the importer tags it from its own answer. The demo
cases' facts were tagged by hand, so each of them is tagged again from its answer and category
alone (no hand keywords, as an imported fact would be) and compared with the author's topics:
- "hit": at least one of the tags is one the author gave (the fact answers that topic's
  questions);
- precision and recall over all tags.

Both ways of tagging are measured in the same run: by words only, and with the sentence encoder
(what `pack import-agentclinic` uses when the encoder is installed). The thresholds in
topics.py were chosen on the cases in TUNED_ON; the other cases are reported apart.

Usage: python benchmarks/bench_tagging.py [--json] [--failures]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_retrieval import CASES, TUNED_ON  # noqa: E402


def evaluate(encoder: Any) -> dict[str, Any]:
    from edgetutor.cases import load_case
    from edgetutor.patient.topics import tag_fact

    out: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    for split in ("tuned", "held-out"):
        facts = hits = right = tagged = wanted = 0
        for path in sorted(CASES.glob("*.yaml")):
            if (path.stem in TUNED_ON) != (split == "tuned"):
                continue
            case = load_case(path)
            adult = case.patient.age_years >= 16
            for fact in case.facts:
                gold = set(fact.topics)
                if not gold:
                    continue
                got = tag_fact(fact.category, fact.answer, [], [], adult, encoder)
                facts += 1
                hits += bool(gold & set(got))
                right += len(gold & set(got))
                tagged += len(got)
                wanted += len(gold)
                if not gold & set(got):
                    failures.append({"case": case.id, "fact": fact.id, "author": sorted(gold), "tagged": got})
        out[split] = {
            "facts": facts,
            "hit": round(hits / facts, 3),
            "precision": round(right / tagged, 3) if tagged else 0.0,
            "recall": round(right / wanted, 3),
        }
    out["failures"] = failures
    return out


def main() -> int:
    from edgetutor.patient.embed import load_encoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--failures", action="store_true", help="list the facts no right tag was found for")
    args = parser.parse_args()
    encoder = load_encoder()
    results = {"words only": evaluate(None)}
    if encoder is not None:
        results["with encoder"] = evaluate(encoder)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for way, res in results.items():
        for split in ("tuned", "held-out"):
            r = res[split]
            print(
                f"{way:13} {split:9} {r['facts']:4} facts: hit {r['hit']:.0%}, "
                f"precision {r['precision']:.2f}, recall {r['recall']:.2f}"
            )
        if args.failures:
            for f in res["failures"]:
                print(f"    {f['case']} {f['fact']}: author {f['author']}, tagged {f['tagged']}")
    if encoder is None:
        print("the sentence encoder is not installed: only tagging by words was measured")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
