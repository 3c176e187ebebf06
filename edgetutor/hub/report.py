"""Reports over every device's results: per trainee, case, competency, site or device.

Choices (documented in docs/hub.md):
- A trainee on the hub is (the device's site, the trainee's name). Device-local trainee ids mean
  nothing across devices, and the same person often practises on several laptops of one clinic;
  two people of the same name at one site are counted as one.
- One attempt is one event; an attempt id sent twice by a device counts once (the later event).
- A level (a trainee's mean, a competency's level) is the mean total of the *latest* attempt per
  (trainee, case), as `edgetutor progress` computes it on a device; counts and pass rates cover
  every attempt. Competencies are the case's specialty and tags.
- Aggregation is done here, in Python, over plain SELECTs: it runs the same on any SQL engine.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..cases.schema import competency_labels
from ..scoring.outcome import percent
from ..textsafe import one_line
from .accounts import Scope
from .db import HubDB, now

AXES = ("trainee", "case", "competency", "site", "device")
BINS = 10

COLUMNS: dict[str, tuple[str, ...]] = {
    "trainee": (
        "site",
        "trainee",
        "devices",
        "attempts",
        "cases",
        "passed",
        "pass_rate",
        "mean_score",
        "weakest",
        "last_attempt",
    ),
    "case": (
        "case_id",
        "title",
        "specialty",
        "attempts",
        "trainees",
        "pass_rate",
        "mean_score",
        "min",
        "median",
        "max",
        "histogram",
    ),
    "competency": ("competency", "level", "trainees", "cases", "attempts", "pass_rate"),
    "site": ("site", "devices", "trainees", "attempts", "pass_rate", "mean_score", "last_sync"),
    "device": (
        "device_id",
        "site",
        "label",
        "enrolled",
        "last_sync",
        "acked_seq",
        "attempts",
        "anomalies",
        "revoked",
    ),
}


@dataclass(frozen=True)
class Attempt:
    device_id: str
    site: str
    trainee: str
    case_id: str
    title: str
    specialty: str
    competencies: tuple[str, ...]
    score: float
    passed: bool
    ended: str
    event_id: str = ""  # the result's event: the attempt page's address


@dataclass(frozen=True)
class Filters:
    """What a coordinator narrowed the dashboard to (all None: everything)."""

    site: str | None = None
    case: str | None = None
    competency: str | None = None
    since: str | None = None  # YYYY-MM-DD, inclusive (UTC dates)
    until: str | None = None  # YYYY-MM-DD, inclusive

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        """From a query string. Raises ValueError (one line) for a malformed date or range."""
        values: dict[str, str | None] = {}
        for key in ("site", "case", "competency", "since", "until"):
            value = (params.get(key) or "").strip()
            values[key] = value[:200] or None
        for key in ("since", "until"):
            day = values[key]
            if day is not None:
                try:
                    dt.date.fromisoformat(day)
                except ValueError:
                    raise ValueError(f"{key} must be a date like 2026-12-31 (got {day[:40]!r})") from None
        if values["since"] and values["until"] and values["since"] > values["until"]:
            raise ValueError("the start date is after the end date")
        return cls(**values)

    def keep(self, a: Attempt) -> bool:
        day = a.ended[:10]
        return (
            (self.site is None or a.site == self.site)
            and (self.case is None or a.case_id == self.case)
            and (self.competency is None or self.competency in a.competencies)
            and (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
        )

    def query(self, **changes: str | None) -> dict[str, str]:
        """These filters (with `changes`) as query parameters, empty ones left out."""
        values = {
            **{k: getattr(self, k) for k in ("site", "case", "competency", "since", "until")},
            **changes,
        }
        return {k: v for k, v in values.items() if v}


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else None


def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def attempts(db: HubDB, scope: Scope) -> list[Attempt]:
    """Every scored attempt at the sites `scope` allows, one per (device, attempt id), oldest
    first; practice results (from demo packs) are left out."""
    by_attempt: dict[tuple[str, str], Attempt] = {}
    labels = competency_labels()
    for r in db.scored_events(scope.listed()):
        if r["score"] is None or r["case_id"] is None:
            continue  # an event without a score or a case cannot be reported on
        if r.get("practice"):
            continue  # a demo pack: anyone can sign one, so its scores are not cohort results
        try:
            # Controlled ids shown by their labels (cases/competencies.yaml); anything else as sent.
            comps = tuple(
                labels.get(c, c) for c in json.loads(r["competencies"] or "[]") if isinstance(c, str)
            )
        except ValueError:
            comps = ()
        name = r["trainee_name"] or f"(trainee #{r['trainee_ref'] or '?'})"
        attempt = Attempt(
            device_id=r["device_id"],
            site=r["site"],
            trainee=name,
            case_id=r["case_id"],
            title=r["case_title"] or r["case_id"],
            specialty=r["specialty"] or "",
            competencies=comps,
            score=min(max(float(r["score"]), 0.0), 1.0),
            passed=bool(r["passed"]),
            ended=r["ended"] or r["created"],
            event_id=r["event_id"],
        )
        by_attempt[(r["device_id"], r["attempt_id"] or r["event_id"])] = attempt
    return sorted(by_attempt.values(), key=lambda a: a.ended)


def _latest(items: list[Attempt]) -> dict[tuple[str, str, str], Attempt]:
    """The latest attempt per (site, trainee, case): `items` is oldest first."""
    latest: dict[tuple[str, str, str], Attempt] = {}
    for a in items:
        latest[(a.site, a.trainee, a.case_id)] = a
    return latest


def histogram(scores: list[float], bins: int = BINS) -> list[int]:
    """Counts of scores in [0, 0.1), [0.1, 0.2) ... [0.9, 1.0]."""
    counts = [0] * bins
    for s in scores:
        counts[min(int(s * bins), bins - 1)] += 1
    return counts


def competency_levels(items: list[Attempt]) -> dict[str, dict[str, Any]]:
    latest = _latest(items)
    levels: dict[str, list[float]] = defaultdict(list)
    trainees: dict[str, set[tuple[str, str]]] = defaultdict(set)
    cases: dict[str, set[str]] = defaultdict(set)
    for a in latest.values():
        for c in a.competencies:
            levels[c].append(a.score)
            trainees[c].add((a.site, a.trainee))
            cases[c].add(a.case_id)
    counts: dict[str, list[bool]] = defaultdict(list)
    for a in items:
        for c in a.competencies:
            counts[c].append(a.passed)
    return {
        c: {
            "competency": c,
            "level": _mean(levels[c]),
            "trainees": len(trainees[c]),
            "cases": len(cases[c]),
            "attempts": len(counts[c]),
            "pass_rate": _rate(counts[c]),
        }
        for c in levels
    }


def _sites(items: list[Attempt]) -> list[dict[str, Any]]:
    groups: dict[str, list[Attempt]] = defaultdict(list)
    for a in items:
        groups[a.site].append(a)
    return [
        {
            "site": site,
            "trainees": len({a.trainee for a in group}),
            "attempts": len(group),
            "pass_rate": _rate([a.passed for a in group]),
            "mean_score": _mean(a.score for a in _latest(group).values()),
        }
        for site, group in sorted(groups.items())
    ]


def _by_trainee(items: list[Attempt]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    for a in items:
        groups[(a.site, a.trainee)].append(a)
    rows = []
    for (site, trainee), group in sorted(groups.items()):
        latest = _latest(group)
        levels = competency_levels(group)
        weakest = min(levels.values(), key=lambda v: (v["level"], v["competency"]), default=None)
        rows.append(
            {
                "site": site,
                "trainee": trainee,
                "devices": len({a.device_id for a in group}),
                "attempts": len(group),
                "cases": len(latest),
                "passed": sum(a.passed for a in group),
                "pass_rate": _rate([a.passed for a in group]),
                "mean_score": _mean(a.score for a in latest.values()),
                "weakest": f"{weakest['competency']} ({percent(weakest['level'])})" if weakest else "",
                "last_attempt": group[-1].ended,
            }
        )
    return rows


def _by_case(items: list[Attempt]) -> list[dict[str, Any]]:
    groups: dict[str, list[Attempt]] = defaultdict(list)
    for a in items:
        groups[a.case_id].append(a)
    rows = []
    for case_id, group in sorted(groups.items()):
        scores = [a.score for a in group]
        rows.append(
            {
                "case_id": case_id,
                "title": group[-1].title,
                "specialty": group[-1].specialty,
                "attempts": len(group),
                "trainees": len({(a.site, a.trainee) for a in group}),
                "pass_rate": _rate([a.passed for a in group]),
                "mean_score": _mean(scores),
                "min": round(min(scores), 3),
                "median": round(statistics.median(scores), 3),
                "max": round(max(scores), 3),
                "histogram": histogram(scores),
            }
        )
    return rows


def _by_site(db: HubDB, items: list[Attempt], scope: Scope) -> list[dict[str, Any]]:
    devices = db.devices(scope.listed())
    sites = sorted({d.site for d in devices} | {a.site for a in items})
    rows = []
    for site in sites:
        group = [a for a in items if a.site == site]
        syncs = [d.last_sync for d in devices if d.site == site and d.last_sync]
        rows.append(
            {
                "site": site,
                "devices": sum(d.site == site for d in devices),
                "trainees": len({a.trainee for a in group}),
                "attempts": len(group),
                "pass_rate": _rate([a.passed for a in group]),
                "mean_score": _mean(a.score for a in _latest(group).values()),
                "last_sync": max(syncs) if syncs else None,
            }
        )
    return rows


def _by_device(db: HubDB, items: list[Attempt], scope: Scope) -> list[dict[str, Any]]:
    counts = db.anomaly_counts()
    per_device: dict[str, int] = defaultdict(int)
    for a in items:
        per_device[a.device_id] += 1
    return [
        {
            "device_id": d.id,
            "site": d.site,
            "label": d.label,
            "enrolled": d.enrolled,
            "last_sync": d.last_sync,
            "acked_seq": d.acked_seq,
            "attempts": per_device[d.id],
            "anomalies": counts.get(d.id, 0),
            "revoked": d.revoked,
        }
        for d in db.devices(scope.listed())
    ]


def build_report(db: HubDB, by: str, scope: Scope) -> dict[str, Any]:
    """The report by one axis over the sites `scope` allows: {"by", "generated", "columns",
    "rows"}. Raises ValueError for an unknown axis."""
    if by not in AXES:
        raise ValueError(f"unknown report axis {by!r}")
    with db.snapshot():
        items = attempts(db, scope)
        if by == "trainee":
            rows = _by_trainee(items)
        elif by == "case":
            rows = _by_case(items)
        elif by == "competency":
            rows = sorted(competency_levels(items).values(), key=lambda r: (r["level"], r["competency"]))
        elif by == "site":
            rows = _by_site(db, items, scope)
        else:
            rows = _by_device(db, items, scope)
    return {"by": by, "generated": now(), "columns": list(COLUMNS[by]), "rows": rows}


def overview(db: HubDB, filters: Filters | None, scope: Scope) -> dict[str, Any]:
    """Everything the dashboard shows, read in one snapshot: the sites `scope` allows, and of
    their attempts only those `filters` keep."""
    sites = scope.listed()
    with db.snapshot():
        every = attempts(db, scope)
        items = [a for a in every if filters is None or filters.keep(a)]
        tokens = db.open_tokens(sites)
        devices = _by_device(db, items, scope)
        anomalies = db.anomalies(50, sites)
        practice = db.practice_count(sites)
    return {
        "items": items,
        # what the filter form offers: every site, case and competency, whatever is chosen now
        "choices": {
            "sites": sorted({a.site for a in every}),
            "cases": sorted({(a.case_id, a.title) for a in every}, key=lambda c: c[1]),
            "competencies": sorted({c for a in every for c in a.competencies}),
        },
        "open_tokens": int(tokens),
        "by_site": _sites(items),
        "practice": practice,
        "trainees": len({(a.site, a.trainee) for a in items}),
        "attempts": len(items),
        "pass_rate": _rate([a.passed for a in items]),
        "by_trainee": _by_trainee(items),
        "by_case": _by_case(items),
        "competencies": sorted(
            competency_levels(items).values(), key=lambda r: (r["level"], r["competency"])
        ),
        "devices": devices,
        "anomalies": anomalies,
    }


# A spreadsheet runs a cell that starts with one of these as a formula; names come from devices.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any, for_csv: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, str) and for_csv and value.startswith(_FORMULA_START):
        return "'" + value
    return str(value)


def format_report(report: dict[str, Any], fmt: str) -> str:
    """The report as `table` (aligned text), `csv` or `json`."""
    columns: list[str] = report["columns"]
    if fmt == "json":
        return json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in report["rows"]:
            writer.writerow([_cell(row.get(c), for_csv=True) for c in columns])
        return out.getvalue()
    if not report["rows"]:
        return f"No results yet (report by {report['by']}).\n"
    # A terminal table: names from devices lose control characters (escape sequences, newlines).
    cells = [[c.upper() for c in columns]] + [
        [one_line(_cell(r.get(c)), 200) for c in columns] for r in report["rows"]
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in cells
    )
