"""The scorer against an examiner: trainee phrasings across the demo cases, with the credit and
critical errors an examiner would give (tests/data/scorer_phrasings.yaml).

Run as a script (`python -m tests.test_scorer_phrasings`) to print the precision and recall of
crediting and every disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from edgetutor.cases import load_case
from edgetutor.cases.schema import Case
from edgetutor.scoring.checklist import Score, Transcript, score

from .conftest import DEMO_SRC

PHRASINGS = Path(__file__).parent / "data" / "scorer_phrasings.yaml"
LEVELS = ("none", "partial", "full")


@cache
def demo_case(case_id: str) -> Case:
    return load_case(DEMO_SRC / "cases" / f"{case_id}.yaml")


def entries() -> list[dict[str, Any]]:
    return list(YAML(typ="safe").load(PHRASINGS.read_text(encoding="utf-8")))


def level(credit: float) -> str:
    return "full" if credit >= 1 else "partial" if credit > 0 else "none"


def run(entry: dict[str, Any]) -> Score:
    """Everything but the field under test is done, so only that field decides."""
    case = demo_case(entry["case"])
    facts = [f.id for f in case.facts]
    exams = ["vitals", *(e.code for e in case.examination)]
    tests = [t.code for t in case.investigations if t.code not in {s.test for s in case.rubric.stewardship}]
    dx = entry["text"] if entry["field"] == "diagnosis" else None
    plan = entry["text"] if entry["field"] == "plan" else None
    return score(case, Transcript(facts, exams, tests, dx, plan))


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    exact: int = 0
    items: int = 0
    ce_tp: int = 0
    ce_fp: int = 0
    ce_fn: int = 0

    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def ce_precision(self) -> float:
        return self.ce_tp / (self.ce_tp + self.ce_fp) if self.ce_tp + self.ce_fp else 1.0

    def ce_recall(self) -> float:
        return self.ce_tp / (self.ce_tp + self.ce_fn) if self.ce_tp + self.ce_fn else 1.0


def evaluate() -> tuple[Tally, list[str]]:
    """Compare every phrasing's result with the examiner's expectation."""
    tally, problems = Tally(), []
    for entry in entries():
        result = run(entry)
        by_id = {i.id: i for i in result.items}
        for item, want in (entry.get("expect") or {}).items():
            got = level(by_id[item].credit)
            tally.items += 1
            tally.exact += got == want
            credited, should = got != "none", want != "none"
            tally.tp += credited and should
            tally.fp += credited and not should
            tally.fn += should and not credited
            tally.tn += not credited and not should
            if got != want:
                problems.append(
                    f"{entry['case']} {entry['field']} {entry['text']!r}: {item} {got} "
                    f"(expected {want}): {by_id[item].note}"
                )
        if entry["field"] == "plan":
            case = demo_case(entry["case"])
            judged = {ce.id for ce in case.rubric.critical_errors if ce.kind != "missed_item"}
            raised = {c.id for c in result.critical if c.id in judged}
            wanted = set(entry.get("critical") or [])
            tally.ce_tp += len(raised & wanted)
            tally.ce_fp += len(raised - wanted)
            tally.ce_fn += len(wanted - raised)
            if raised != wanted:
                evidence = "; ".join(f"{c.id}: {c.evidence}" for c in result.critical if c.id in raised)
                problems.append(
                    f"{entry['case']} plan {entry['text']!r}: critical {sorted(raised)} "
                    f"(expected {sorted(wanted)}) {evidence}"
                )
    return tally, problems


def report(tally: Tally, n: int) -> str:
    return (
        f"{n} phrasings, {tally.items} item judgements: crediting precision {tally.precision():.3f}, "
        f"recall {tally.recall():.3f} (tp {tally.tp}, fp {tally.fp}, fn {tally.fn}, tn {tally.tn}); "
        f"exact level (full/partial/none) {tally.exact}/{tally.items}; critical errors precision "
        f"{tally.ce_precision():.3f}, recall {tally.ce_recall():.3f}"
    )


def test_the_phrasing_set_is_broad() -> None:
    found = entries()
    assert len(found) >= 150
    cases = {e["case"] for e in found}
    assert len(cases) == 13, cases
    for e in found:
        assert e["field"] in ("diagnosis", "plan"), e
        assert all(v in LEVELS for v in (e.get("expect") or {}).values()), e
        assert e.get("expect") or e.get("critical"), e
    # traps are there: near misses, negated or past drugs, name-only and wrong doses
    assert sum(1 for e in found if e["field"] == "diagnosis" and e["expect"].get("d-primary") == "none") >= 40
    assert sum(1 for e in found if "partial" in (e.get("expect") or {}).values()) >= 20
    assert sum(1 for e in found if e.get("critical")) >= 20


def test_the_scorer_agrees_with_the_examiner(capsys: Any) -> None:
    tally, problems = evaluate()
    with capsys.disabled():
        print("\n" + report(tally, len(entries())))
    assert problems == []
    assert tally.precision() == 1.0 and tally.recall() == 1.0


if __name__ == "__main__":
    t, found = evaluate()
    print(report(t, len(entries())))
    print("\n".join(found))
