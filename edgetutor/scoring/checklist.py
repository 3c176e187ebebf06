"""Deterministic OSCE checklist scoring from a case's rubric.

The same transcript always gives the same score: the input is what the encounter recorded
(questions and the facts they retrieved, examinations, tests, the diagnosis and plan text),
nothing is generated. Rules:
- a fact item is done when a trainee's QUESTION retrieved it (the opening statement does not count);
- an exam item when that code (or `vitals`) was examined; a test item when it was ordered;
- `diagnosis: primary` when the first diagnosis given matches the primary name or a synonym
  (typo-tolerant); `diagnosis: differentials` when at least one expected differential is named
  (in the diagnosis line after `;`, `ddx` or `differential`, or in the plan);
- a management item when the plan contains one of its phrasings (typo-tolerant, not negated);
- a `dangerous_action` critical error when the plan names it without a negation before it
  ("no chloroquine" and "avoid NSAIDs" are not errors); a `missed_item` error when its item is
  not done. Each caps the score at its `cap`; a cap of 0 fails the attempt;
- `stewardship` penalties are subtracted for each listed test that was ordered.
Score = (weights done - penalties) / all weights, in 0..1, then capped.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cases.schema import Case, Domain
from ..patient.lexicon import edit_distance, normalise
from .communication import skills_shown

SCORER_VERSION = "1.0"
NEGATION_WINDOW = 4  # words before a drug name that can negate it ("do not give any")
_NEGATORS = {
    "no",
    "not",
    "avoid",
    "avoiding",
    "never",
    "stop",
    "stopped",
    "without",
    "don't",
    "withhold",
    "contraindicated",
}


@dataclass
class Transcript:
    """What scoring needs from an encounter (built from its turns)."""

    asked_facts: list[str]
    examined: list[str]
    ordered: list[str]
    diagnosis: str | None
    plan: str | None
    turns: int = 0
    seconds: float = 0.0
    # Standard history topics the trainee asked about, and each question turn's dialogue acts
    # ({utterance, acts, open, plain}) for the communication domain.
    asked_topics: list[str] = field(default_factory=list)
    dialogue: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ItemResult:
    id: str
    description: str
    domain: str
    weight: float
    done: bool
    target: str
    evidence: str = ""  # the trainee's own words that earned it, where one turn did


@dataclass
class CriticalResult:
    id: str
    description: str
    cap: float
    evidence: str


@dataclass
class Score:
    case_id: str
    scorer_version: str
    total: float
    raw: float
    passed: bool
    pass_mark: float
    domains: dict[str, float]
    items: list[ItemResult]
    critical: list[CriticalResult]
    stewardship: list[dict[str, Any]]
    turns: int
    seconds: float
    pack: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _phrase_in(text: str, phrase: str) -> int | None:
    """Word index where `phrase` occurs in `text` (both normalised), allowing one typo per
    word of 5+ letters; None if absent."""
    words, target = text.split(), phrase.split()
    if not target:
        return None
    for i in range(len(words) - len(target) + 1):
        ok = True
        for w, t in zip(words[i : i + len(target)], target, strict=True):
            if w == t:
                continue
            if len(t) >= 5 and edit_distance(w, t, 1) <= 1:
                continue
            ok = False
            break
        if ok:
            return i
    return None


def mentions(text: str | None, phrases: list[str], allow_negated: bool = True) -> str | None:
    """The first phrase found in text (None if none). With allow_negated=False, a phrase
    preceded by a negation within NEGATION_WINDOW words does not count."""
    if not text:
        return None
    norm = normalise(text)
    words = norm.split()
    for phrase in phrases:
        p = normalise(phrase)
        at = _phrase_in(norm, p)
        if at is None:
            continue
        if not allow_negated:
            before = words[max(0, at - NEGATION_WINDOW) : at]
            if any(w in _NEGATORS or w.endswith("n't") for w in before):
                continue
        return phrase
    return None


def split_diagnosis(text: str | None) -> tuple[str, str]:
    """(primary, differentials) from 'malaria; ddx typhoid, meningitis'."""
    if not text:
        return "", ""
    parts = re.split(r";|\bddx\b|\bdifferentials?\b|\bvs\.?\b|\bversus\b", text, maxsplit=1, flags=re.I)
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def _match_length(given: str, names: list[str]) -> int:
    """Words of the longest name that `given` matches (0: none): exactly, with a typo, or as a phrase."""
    g = normalise(given)
    best = 0
    if not g:
        return 0
    for name in names:
        n = normalise(name)
        if not n:
            continue
        if g == n or edit_distance(g, n, 2) <= (2 if len(n) >= 8 else 1) or _phrase_in(g, n) is not None:
            best = max(best, len(n.split()))
    return best


def diagnosis_matches(given: str, names: list[str], others: list[str] | None = None) -> bool:
    """Whether `given` names the diagnosis. When it matches one of `others` (the differentials)
    by a longer name, it is that differential: "severe malaria" is not "malaria"."""
    mine = _match_length(given, names)
    return mine > 0 and mine >= _match_length(given, others or [])


def score(case: Case, t: Transcript, pack: dict[str, Any] | None = None) -> Score:
    """Score a transcript against the case rubric. Pure: the same input gives the same Score."""
    primary, differentials = split_diagnosis(t.diagnosis)
    primary_names = [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]
    actions = {a.id: a for a in case.management}
    shown = skills_shown(t.dialogue)
    items: list[ItemResult] = []
    for item in case.rubric.items:
        kind, ref = item.target
        evidence = ""
        if kind == "topic":
            done = ref in t.asked_topics
        elif kind == "communication":
            done = ref in shown
            evidence = shown.get(ref, "")
        elif kind == "fact":
            done = ref in t.asked_facts
        elif kind == "exam":
            done = ref in t.examined
        elif kind == "test":
            done = ref in t.ordered
        elif kind == "diagnosis" and ref == "primary":
            others = [n for d in case.diagnosis.differentials for n in (d.name, *d.synonyms)]
            done = diagnosis_matches(primary, primary_names, others)
        elif kind == "diagnosis":
            pool = " ; ".join(x for x in (differentials, t.plan or "") if x)
            done = any(mentions(pool, [d.name, *d.synonyms]) for d in case.diagnosis.differentials)
        else:
            done = mentions(t.plan, actions[ref].phrasings, allow_negated=False) is not None
        items.append(
            ItemResult(
                item.id, item.description, item.domain.value, item.weight, done, f"{kind}:{ref}", evidence
            )
        )

    total_weight = sum(i.weight for i in items)
    done_weight = sum(i.weight for i in items if i.done)
    penalised = [s for s in case.rubric.stewardship if s.test in t.ordered]
    steward: list[dict[str, Any]] = [
        {"test": s.test, "penalty": s.penalty, "reason": s.reason} for s in penalised
    ]
    raw = max(0.0, (done_weight - sum(s.penalty for s in penalised)) / total_weight)
    by_id = {i.id: i for i in items}
    critical: list[CriticalResult] = []
    for ce in case.rubric.critical_errors:
        if ce.kind == "dangerous_action":
            hit = mentions(t.plan, ce.phrasings, allow_negated=False)
            if hit:
                critical.append(CriticalResult(ce.id, ce.description, ce.cap, f"plan mentions {hit!r}"))
        elif ce.item and not by_id[ce.item].done:
            critical.append(
                CriticalResult(ce.id, ce.description, ce.cap, f"missed: {by_id[ce.item].description}")
            )
    total = min([raw, *(c.cap for c in critical)])
    domains = {}
    for domain in Domain:
        mine = [i for i in items if i.domain == domain.value]
        if mine:
            domains[domain.value] = round(
                sum(i.weight for i in mine if i.done) / sum(i.weight for i in mine), 3
            )
    passed = total >= case.rubric.pass_mark and not any(c.cap == 0 for c in critical)
    return Score(
        case.id, SCORER_VERSION, round(total, 3), round(raw, 3), passed, case.rubric.pass_mark, domains,
        items, critical, steward, t.turns, round(t.seconds, 1), pack or {},
    )  # fmt: skip
