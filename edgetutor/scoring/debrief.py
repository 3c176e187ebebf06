"""The itemised debrief: what was done, what was missed and why it matters. Never generated."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..cases.codes import TEST_CODES
from ..cases.schema import Case
from .checklist import Score, Transcript
from .outcome import headline, percent, points

# What a trainee could have said, for a communication skill they did not show.
SKILL_HINTS = {
    "introduction": "Hello, I am <your name>, the clinical officer. I will be seeing you today.",
    "identity": "Can you tell me your name and your age?",
    "open_question": "What brings you here today?",
    "consent": "Is it all right if I ask you some questions and then examine you?",
    "ice": "What do you think is causing this? What worries you most?",
    "empathy": "I am sorry you have been feeling so unwell.",
    "summary": "So you have had ... for ... days; have I got that right?",
    "understanding": "Do you have any questions for me?",
    "plain_plan": "I will give you medicine to take twice a day for three days (plain words, no abbreviations).",
}


def transcript_from_turns(turns: Iterable[Mapping[str, Any]], seconds: float = 0.0) -> Transcript:
    """Build the scoring input from recorded turns (dicts with kind, utterance, matched)."""
    asked: list[str] = []
    examined: list[str] = []
    ordered: list[str] = []
    diagnosis: str | None = None
    plans: list[str] = []
    topics: list[str] = []
    dialogue: list[dict[str, Any]] = []
    n = 0
    for turn in turns:
        kind, matched = turn["kind"], list(turn.get("matched") or [])
        if kind == "opening":
            continue
        n += 1
        record = turn.get("guard") or {}
        if kind == "question" and isinstance(record, Mapping):
            topics += [t for t in record.get("topics") or [] if t not in topics]
            if record.get("acts"):
                dialogue.append(
                    {
                        "utterance": turn["utterance"],
                        "acts": list(record["acts"]),
                        "open": bool(record.get("open")),
                        "plain": bool(record.get("plain", True)),
                    }
                )
        target = {"question": asked, "examine": examined, "order": ordered}.get(kind)
        if target is not None:
            target += [m for m in matched if m not in target]
        elif kind == "diagnose":
            diagnosis = turn["utterance"]
        elif kind == "plan":
            plans.append(turn["utterance"])
    return Transcript(
        asked, examined, ordered, diagnosis, "; ".join(plans) or None, n, seconds, topics, dialogue
    )


def debrief(case: Case, result: Score) -> dict[str, Any]:
    """The debrief as data: checklist, critical errors, pathway, teaching points, sources."""
    facts = {f.id: f for f in case.facts}
    # Tests in words ("Full blood count"), never the code ("haem.fbc").
    test_names = {code: name for code, (name, _) in TEST_CODES.items()}
    test_names |= {i.code: i.name for i in case.investigations}
    checklist = []
    for item in result.items:
        entry: dict[str, Any] = {
            "item": item.description, "domain": item.domain, "weight": item.weight, "done": item.done,
            "credit": item.credit, "note": item.note,
        }  # fmt: skip
        kind, ref = item.target.split(":", 1)
        if item.evidence:
            entry["evidence"] = item.evidence
        if not item.done and kind == "communication":
            entry["ask"] = SKILL_HINTS.get(ref, "")
        if not item.done and kind == "fact" and ref in facts:
            fact = facts[ref]
            entry["ask"] = (
                fact.questions[0] if fact.questions else f"Ask about: {', '.join(fact.keywords[:3])}"
            )
        checklist.append(entry)
    return {
        "score": result.total,
        "passed": result.passed,
        "pass_mark": result.pass_mark,
        "domains": result.domains,
        "checklist": checklist,
        "critical_errors": [
            {"error": c.description, "evidence": c.evidence, "cap": c.cap} for c in result.critical
        ],
        "stewardship": [{**s, "name": test_names.get(s["test"], s["test"])} for s in result.stewardship],
        "expected_pathway": {
            "diagnosis": case.diagnosis.primary.name,
            "differentials": [d.name for d in case.diagnosis.differentials],
            "management": [a.action for a in case.management] or [case.management_note or ""],
        },
        "teaching_points": list(case.teaching_points),
        "sources": [f"{s.title} ({s.publisher}, {s.year})" for s in case.sources],
    }


def format_debrief(doc: Mapping[str, Any]) -> str:
    """Plain-text debrief for the terminal."""
    lines = [
        headline(doc),
        "By domain: " + ", ".join(f"{d} {percent(v)}" for d, v in doc["domains"].items()),
        "Checklist:",
    ]
    for entry in doc["checklist"]:
        credit = entry.get("credit", 1.0 if entry["done"] else 0.0)
        mark = "x" if entry["done"] else "~" if credit > 0 else " "
        ask = f'  (try: "{entry["ask"]}")' if entry.get("ask") else ""
        if entry.get("evidence"):
            ask = f'  (you said: "{entry["evidence"]}")'
        # A partial or refused plan or diagnosis item says why, so the trainee sees the evidence.
        kind_says = entry.get("note") and entry["domain"] in ("management", "diagnosis") and not entry["done"]
        why = f"  [{percent(credit)}: {entry['note']}]" if kind_says and credit > 0 else ""
        why = why or (f"  [{entry['note']}]" if kind_says else "")
        lines.append(f"  [{mark}] {entry['item']}{ask}{why}")
    for c in doc["critical_errors"]:
        limit = "the attempt fails" if c["cap"] == 0 else f"score capped at {percent(c['cap'])}"
        lines.append(f"Critical error: {c['error']} ({c['evidence']}; {limit})")
    for s in doc["stewardship"]:
        name = s.get("name") or s["test"]
        lines.append(f"Test not needed here: {name} (minus {points(s['penalty'])}): {s['reason']}")
    p = doc["expected_pathway"]
    lines.append(
        f"Expected: {p['diagnosis']}; consider {', '.join(p['differentials']) or 'no listed differentials'}"
    )
    lines += [f"  - {m}" for m in p["management"]]
    lines.append("Teaching points:")
    lines += [f"  - {t}" for t in doc["teaching_points"]]
    lines.append("Sources: " + "; ".join(doc["sources"]))
    return "\n".join(lines)
