"""One wording for results, wherever they are shown: the terminal app, the CLI, the hub's reports
and dashboard. An attempt either passes ("Pass") or does not yet ("Not yet": never "fail", a
trainee is learning); a score is a whole percentage; counts agree with their nouns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PASS = "Pass"
NOT_YET = "Not yet"


def outcome(passed: bool) -> str:
    return PASS if passed else NOT_YET


def percent(value: float | None) -> str:
    """0.333 -> "33%"; None -> "-"."""
    return "-" if value is None else f"{value:.0%}"


def plural(n: int, noun: str, many: str | None = None) -> str:
    """plural(1, "attempt") -> "1 attempt"; plural(2, "case") -> "2 cases"."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


def points(value: float) -> str:
    """Checklist points, as a stewardship penalty is counted: "0.5 checklist points"."""
    return f"{value:g} checklist point{'' if value == 1 else 's'}"


def headline(doc: Mapping[str, Any]) -> str:
    """The result's first line, leading with why: a cap and its cause before anything else."""
    score, mark = percent(doc["score"]), percent(doc["pass_mark"])
    if doc["passed"]:
        return f"{PASS}: {score} (pass mark {mark})"
    caps = list(doc.get("critical_errors") or [])
    if caps:
        worst = min(caps, key=lambda c: c["cap"])
        limit = (
            "which fails the attempt"
            if worst["cap"] == 0
            else f"which caps the score at {percent(worst['cap'])}"
        )
        more = f" (and {plural(len(caps) - 1, 'other')})" if len(caps) > 1 else ""
        return (
            f"{NOT_YET}: {score}. Critical error{more}: {worst['error']} ({worst['evidence']}), "
            f"{limit}. Pass mark {mark}."
        )
    return f"{NOT_YET}: {score}, below the pass mark of {mark}."


BAR_WIDTH = 20


def bar(value: float, width: int = BAR_WIDTH) -> str:
    """A text bar: "#####..............." for 25%."""
    filled = round(max(0.0, min(1.0, value)) * width)
    return "#" * filled + "." * (width - filled)


def domain_lines(domains: Mapping[str, float]) -> str:
    """One line per domain: name, bar, percentage."""
    return "\n".join(f"{d:<15} {bar(v)} {percent(v):>4}" for d, v in domains.items())
