"""Progress across attempts: domains, competencies, and which case to practise next.

Competencies are what a case trains, from the controlled list in cases/competencies.yaml (e.g.
"Child health (IMCI)"): never its free-text tags, which often name the diagnosis. Domains are the rubric's five (history ... management). A trainee's level in
either is the mean of their latest score on each case that has it.

Recommendation order (documented choice):
1. failed cases that are due again: spaced repetition at 1, 3, 7, 14 days after the n-th failure;
2. cases never attempted, those whose competencies and domains are weakest first (a topic never
   practised counts as 0.5, between weak and strong);
3. passed cases, oldest attempt first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cases.loader import load_case
from ..cases.schema import competency_labels
from ..packs.install import PackStore
from ..scoring.outcome import domain_lines, outcome, percent, plural

if TYPE_CHECKING:
    from ..store.db import Store, Trainee

REPEAT_AFTER_DAYS = (1, 3, 7, 14)
UNKNOWN_LEVEL = 0.5


@dataclass(frozen=True)
class CaseInfo:
    id: str
    title: str
    competencies: tuple[str, ...]


@dataclass(frozen=True)
class ScoredAttempt:
    case_id: str
    ended: dt.datetime
    total: float
    passed: bool
    domains: dict[str, float]


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def progress(
    attempts: Sequence[ScoredAttempt], cases: Sequence[CaseInfo], now: dt.datetime, limit: int = 5
) -> dict[str, Any]:
    """Summarise scored attempts and recommend cases. Pure: the same input gives the same output."""
    history = sorted(attempts, key=lambda a: a.ended)
    latest: dict[str, ScoredAttempt] = {}
    failures: dict[str, int] = defaultdict(int)
    for a in history:
        latest[a.case_id] = a
        failures[a.case_id] = 0 if a.passed else failures[a.case_id] + 1
    info = {c.id: c for c in cases}

    domain_scores: dict[str, list[float]] = defaultdict(list)
    competency_scores: dict[str, list[float]] = defaultdict(list)
    for case_id, a in latest.items():
        for domain, value in a.domains.items():
            domain_scores[domain].append(value)
        for comp in info[case_id].competencies if case_id in info else ():
            competency_scores[comp].append(a.total)
    domains = {d: _mean(v) for d, v in sorted(domain_scores.items())}
    competencies = {c: _mean(v) for c, v in sorted(competency_scores.items())}

    def weakness(case: CaseInfo) -> float:
        levels = [competencies.get(c, UNKNOWN_LEVEL) for c in case.competencies] or [UNKNOWN_LEVEL]
        return sum(levels) / len(levels)

    due, unseen, passed = [], [], []
    for case in cases:
        last = latest.get(case.id)
        if last is None:
            unseen.append((weakness(case), case.id, "not attempted yet"))
        elif not last.passed:
            wait = REPEAT_AFTER_DAYS[min(failures[case.id], len(REPEAT_AFTER_DAYS)) - 1]
            due_at = last.ended + dt.timedelta(days=wait)
            if due_at <= now:
                due.append(
                    (
                        due_at,
                        case.id,
                        f"not passed yet ({percent(last.total)}); due again after {plural(wait, 'day')}",
                    )
                )
        else:
            passed.append((last.ended, case.id, f"passed with {percent(last.total)}; revision"))
    ranked = [*sorted(due), *sorted(unseen), *sorted(passed)]
    recommended = [
        {"case": case_id, "title": info[case_id].title, "why": why} for _, case_id, why in ranked[:limit]
    ]
    return {
        "attempts": [
            {
                "case": a.case_id,
                "title": info[a.case_id].title if a.case_id in info else "a case no longer installed",
                "ended": a.ended.isoformat(),
                "score": a.total,
                "passed": a.passed,
            }
            for a in history
        ],
        "cases_attempted": len(latest),
        "cases_passed": sum(a.passed for a in latest.values()),
        "domains": domains,
        "competencies": competencies,
        "strengths": [c for c, v in competencies.items() if v >= 0.75],
        "gaps": [c for c, v in sorted(competencies.items(), key=lambda kv: kv[1]) if v < 0.6],
        "recommended": recommended,
    }


def progress_for(store: Store, trainee: Trainee | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """`progress()` for one trainee (or everyone) over the installed cases: what the CLI and the
    app both show. Raises EdgeTutorError (unreadable pack or case)."""
    cases = []
    for entry in PackStore().cases():
        case = load_case(entry.file)
        labels = competency_labels()
        cases.append(CaseInfo(case.id, case.title, tuple(labels.get(c, c) for c in case.competencies)))
    attempts = [
        ScoredAttempt(a.case_id, a.ended or a.started, s["total"], s["passed"], s["domains"])
        for a, s in store.scored(trainee)
    ]
    return progress(attempts, cases, now or dt.datetime.now(dt.UTC))


def format_progress(doc: dict[str, Any]) -> str:
    """Progress as text, the same in the app and from `edgetutor progress`: titles, never case ids
    (an id often names the diagnosis), whole percentages, one wording for outcomes."""
    lines = [
        f"{plural(len(doc['attempts']), 'finished attempt')}, {plural(doc['cases_attempted'], 'case')} "
        f"tried, {doc['cases_passed']} passed",
        "",
        "By domain:",
        domain_lines(doc["domains"]) if doc["domains"] else "  (no finished attempts yet)",
    ]
    if doc["competencies"]:
        # Weakest first, at most eight: the chart is for deciding what to practise.
        weakest = dict(sorted(doc["competencies"].items(), key=lambda kv: (kv[1], kv[0]))[:8])
        lines += ["", "By competency (weakest first):", domain_lines({k[:15]: v for k, v in weakest.items()})]
    if doc["gaps"]:
        lines.append("Gaps: " + ", ".join(doc["gaps"]))
    if doc["strengths"]:
        lines.append("Strengths: " + ", ".join(doc["strengths"]))
    if doc["attempts"]:
        lines += ["", "Latest attempts:"]
        for a in doc["attempts"][-5:]:
            when = dt.datetime.fromisoformat(a["ended"]).astimezone().strftime("%Y-%m-%d %H:%M")
            lines.append(f"  {when}  {a['title'][:40]:40} {percent(a['score']):>4}  {outcome(a['passed'])}")
    lines += ["", "Next:"]
    lines += [f"  {r['title']}: {r['why']}" for r in doc["recommended"]]
    return "\n".join(lines)
