"""Deterministic OSCE checklist scoring from a case's rubric.

The same transcript always gives the same score: the input is what the encounter recorded
(questions and the facts they retrieved, examinations, tests, the diagnosis and plan text),
nothing is generated. Every item gets a credit from 0 to 1 and a note naming its evidence:
- a fact item is done when a trainee's QUESTION retrieved it (the opening statement does not count);
- an exam item when that code (or `vitals`) was examined; a test item when it was ordered;
- `diagnosis: primary` when the primary part of the diagnosis line names the primary diagnosis
  exactly or with a typo, never across a negation or a qualifier that changes the condition, and
  not when it also names a near miss (see `diagnosis.py`); `diagnosis: differentials` when at
  least one expected differential is named anywhere (diagnosis line or plan);
- a management item when the plan names one of its phrasings and plans it (not negated, not
  history: see `plan.py`); when the action has a `dose`, full credit needs the dose, frequency
  and duration in the case's range (`doses.py`): the drug alone gets partial credit ("dose not
  stated"), a wrong dose none;
- a `dangerous_action` critical error when the plan plans one of its phrasings; a `missed_item`
  error when its item is not fully done; a `wrong_dose` error when a dose names it and is out of
  range. Each caps the score at its `cap`; a cap of 0 fails the attempt;
- `stewardship` penalties are subtracted for each listed test that was ordered.
Score = (sum of weight x credit - penalties) / all weights, in 0..1, then capped.
Each item kind is one small function in `ITEM_RULES`, so a new kind is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cases.schema import Action, Case, Domain, RubricItem
from ..language.doses import parse
from .communication import skills_shown
from .diagnosis import DiagnosisMatcher, case_matcher, diagnosis_matches, split_diagnosis
from .doses import Verdict, check
from .plan import PlanReading, near_any, plan_words, read_plan

SCORER_VERSION = "2.0"
__all__ = [
    "SCORER_VERSION", "CriticalResult", "ItemResult", "Score", "Transcript", "diagnosis_matches",
    "mentions", "score", "split_diagnosis",
]  # fmt: skip


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
    done: bool  # full credit (what the store, hub and screens read)
    target: str
    credit: float = 0.0  # 0..1: the share of the weight earned
    note: str = ""  # the evidence for the credit, or why it is partial or absent
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


def mentions(text: str | None, phrases: list[str], allow_negated: bool = True) -> str | None:
    """The first phrase found in text (None if none). With allow_negated=False, a phrase the text
    negates or puts in the past ("avoid X", "X already failed") does not count."""
    # read as things that can be refused, so a cue reaches over a list ("avoid X, Y and Z")
    reading = read_plan(text, {"error:x": list(phrases)})
    found = reading.found("error:x") if allow_negated else reading.planned("error:x")
    return min(found, key=lambda m: m.start).phrase if found else None


@dataclass
class Context:
    """What every item rule may read: the case, the transcript, and the diagnosis and plan as read."""

    case: Case
    t: Transcript
    primary_text: str
    differentials_text: str
    dx: DiagnosisMatcher
    plan: PlanReading
    dose_verdicts: dict[str, tuple[Verdict, str]] = field(
        default_factory=dict
    )  # action id -> (verdict, drug)
    shown: dict[str, str] = field(default_factory=dict)  # communication skill -> the trainee's words


Credit = tuple[float, str]
ItemRule = Callable[[Context, RubricItem, str], Credit]


def _fact(ctx: Context, item: RubricItem, ref: str) -> Credit:
    return (1.0, "asked") if ref in ctx.t.asked_facts else (0.0, "not asked")


def _topic(ctx: Context, item: RubricItem, ref: str) -> Credit:
    return (1.0, "asked") if ref in ctx.t.asked_topics else (0.0, "not asked")


def _communication(ctx: Context, item: RubricItem, ref: str) -> Credit:
    said = ctx.shown.get(ref)
    return (1.0, f"you said: {said}") if said else (0.0, "not shown")


def _exam(ctx: Context, item: RubricItem, ref: str) -> Credit:
    return (1.0, "examined") if ref in ctx.t.examined else (0.0, "not examined")


def _test(ctx: Context, item: RubricItem, ref: str) -> Credit:
    return (1.0, "ordered") if ref in ctx.t.ordered else (0.0, "not ordered")


def _diagnosis(ctx: Context, item: RubricItem, ref: str) -> Credit:
    if ref == "primary":
        verdict = ctx.dx.primary(ctx.primary_text)
        return (1.0 if verdict.credited else 0.0), verdict.evidence
    pool = [ctx.t.diagnosis or "", ctx.t.plan or ""]  # naming one anywhere is considering it
    named = ctx.dx.differentials_named([p for p in pool if p], ctx.case.diagnosis.differentials)
    if named:
        return 1.0, "named " + ", ".join(named)
    return 0.0, "no expected differential named"


def _management(ctx: Context, item: RubricItem, ref: str) -> Credit:
    action = next(a for a in ctx.case.management if a.id == ref)
    planned = ctx.plan.planned(f"action:{ref}")
    for k, group in enumerate(action.phrasings_near):
        planned += [m for m in ctx.plan.planned(f"near:{ref}:{k}") if near_any(ctx.plan, m, group.near)]
    if not planned:
        scoped = ctx.plan.found(f"action:{ref}")
        if scoped:
            return 0.0, f"{scoped[0].written!r} is not planned: {scoped[0].scope}"
        return 0.0, "not in the plan"
    if not action.dose:
        return 1.0, f"plan says {planned[0].written!r}"
    verdict, drug = _dose_verdict(ctx, action)
    if verdict.credit >= 1:
        return 1.0, f"{drug}: {verdict.note}"
    return verdict.credit, f"{drug}: {verdict.note}"


ITEM_RULES: dict[str, ItemRule] = {
    "fact": _fact,
    "topic": _topic,
    "communication": _communication,
    "exam": _exam,
    "test": _test,
    "diagnosis": _diagnosis,
    "management": _management,
}


def _dose_verdict(ctx: Context, action: Action) -> tuple[Verdict, str]:
    """The best dose verdict over the action's planned mentions; with several drugs, the
    weakest drug named decides (each drug named must be right)."""
    if action.id in ctx.dose_verdicts:
        return ctx.dose_verdicts[action.id]
    weight = ctx.case.vitals.weight_kg
    per_drug: dict[str, Verdict] = {}
    for m in ctx.plan.planned(f"action:{action.id}"):
        block = _block_for(action, m.phrase)
        if block is None:
            continue
        unit = next(u for u in ctx.plan.units if u.start <= m.start and m.end <= u.end)
        before, after = ctx.plan.stretch(unit)
        own = ctx.plan.toks[ctx.plan.widx[unit.start] : ctx.plan.widx[unit.end - 1] + 1]
        toks = [*before, *own, *after]
        said = [w for w in toks if w.isalnum() or "'" in w]
        v = check(block, parse(toks), weight, said, m.phrase)
        shown = " ".join(toks).strip()
        v = Verdict(v.credit, f"{v.note} ({shown!r})", v.wrong)
        old = per_drug.get(block.drug)
        if old is None or (v.credit, not v.wrong) > (old.credit, not old.wrong):
            per_drug[block.drug] = v
    if not per_drug:
        partial = min(b.partial_credit for b in action.dose)
        result = (Verdict(partial, "drug and dose not stated"), action.dose[0].drug)
    else:
        drug = min(per_drug, key=lambda d: (per_drug[d].credit, not per_drug[d].wrong))
        result = (per_drug[drug], drug)
    ctx.dose_verdicts[action.id] = result
    return result


def _block_for(action: Action, phrase: str) -> Any:
    for block in action.dose:
        if phrase in block.names or phrase in block.named_regimens:
            return block
    if len(action.dose) == 1 and not action.dose[0].names:
        return action.dose[0]
    return None


def _plan_owners(case: Case) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for a in case.management:
        owners[f"action:{a.id}"] = [*a.phrasings, *(n for d in a.dose for n in (*d.names, *d.named_regimens))]
        for k, group in enumerate(a.phrasings_near):
            owners[f"near:{a.id}:{k}"] = list(group.phrasings)
    for ce in case.rubric.critical_errors:
        if ce.kind == "dangerous_action":
            owners[f"error:{ce.id}"] = list(ce.phrasings)
    return owners


def _critical(ctx: Context, items: dict[str, ItemResult]) -> list[CriticalResult]:
    out: list[CriticalResult] = []
    wrong_dose: dict[str, str] = {}
    for a in ctx.case.management:
        for block in a.dose:
            if block.wrong_dose_error and ctx.plan.planned(f"action:{a.id}"):
                verdict, drug = _dose_verdict(ctx, a)
                if verdict.wrong and drug == block.drug:
                    wrong_dose[block.wrong_dose_error] = f"{drug}: {verdict.note}"
    for ce in ctx.case.rubric.critical_errors:
        if ce.kind == "dangerous_action":
            hits = [
                m for m in ctx.plan.planned(f"error:{ce.id}") if not near_any(ctx.plan, m, ce.unless_near)
            ]
            if hits:
                out.append(
                    CriticalResult(ce.id, ce.description, ce.cap, f"plan mentions {hits[0].written!r}")
                )
        elif ce.kind == "wrong_dose":
            if ce.id in wrong_dose:
                out.append(CriticalResult(ce.id, ce.description, ce.cap, wrong_dose[ce.id]))
        elif ce.item and not items[ce.item].done:
            out.append(CriticalResult(ce.id, ce.description, ce.cap, f"missed: {items[ce.item].description}"))
    return out


def score(case: Case, t: Transcript, pack: dict[str, Any] | None = None) -> Score:
    """Score a transcript against the case rubric. Pure: the same input gives the same Score."""
    dx = case_matcher(case)
    primary_text, differentials_text = dx.split(t.diagnosis)
    protected = {w for a in case.management for d in a.dose for w in plan_words(d.drug)}
    ctx = Context(
        case, t, primary_text, differentials_text, dx, read_plan(t.plan, _plan_owners(case), protected)
    )
    ctx.shown = skills_shown(t.dialogue)
    items: list[ItemResult] = []
    for item in case.rubric.items:
        kind, ref = item.target
        credit, note = ITEM_RULES[kind](ctx, item, ref)
        credit = max(0.0, min(1.0, credit))
        evidence = ctx.shown.get(ref, "") if kind == "communication" else ""
        items.append(
            ItemResult(item.id, item.description, item.domain.value, item.weight, credit >= 1.0,
                       f"{kind}:{ref}", round(credit, 3), note, evidence)
        )  # fmt: skip

    total_weight = sum(i.weight for i in items)
    earned = sum(i.weight * i.credit for i in items)
    penalised = [s for s in case.rubric.stewardship if s.test in t.ordered]
    steward: list[dict[str, Any]] = [
        {"test": s.test, "penalty": s.penalty, "reason": s.reason} for s in penalised
    ]
    raw = max(0.0, (earned - sum(s.penalty for s in penalised)) / total_weight)
    critical = _critical(ctx, {i.id: i for i in items})
    total = min([raw, *(c.cap for c in critical)])
    domains = {}
    for domain in Domain:
        mine = [i for i in items if i.domain == domain.value]
        if mine:
            domains[domain.value] = round(
                sum(i.weight * i.credit for i in mine) / sum(i.weight for i in mine), 3
            )
    passed = total >= case.rubric.pass_mark and not any(c.cap == 0 for c in critical)
    return Score(
        case.id, SCORER_VERSION, round(total, 3), round(raw, 3), passed, case.rubric.pass_mark, domains,
        items, critical, steward, t.turns, round(t.seconds, 1), pack or {},
    )  # fmt: skip
