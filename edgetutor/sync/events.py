"""The payload of a result event: what a coordinator's hub stores and reports from.

Built from what the database already holds for a finished attempt (its row, the trainee, the
stored score) plus three facts about the case that only the case file knows (title, specialty,
tags). Everything here is pure: the store seals the event in the transaction that stores the
score (`Store.finish_attempt`).

Only finished attempts WITH a score become events: an attempt ended without scoring has nothing
a coordinator could report, so nothing is sent for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any


def case_info(case: Any) -> dict[str, Any]:
    """The case facts a payload needs from a `cases.schema.Case` (what `finish_attempt` takes)."""
    return {"title": case.title, "specialty": case.specialty, "tags": list(case.tags)}


def build_payload(
    attempt: Mapping[str, Any],
    trainee: Mapping[str, Any],
    score: Mapping[str, Any],
    info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The event payload of a finished, scored attempt (keys documented in docs/sync.md).

    `attempt` is its database row, `trainee` {"id", "name"}, `score` a stored Score.as_dict(),
    `info` {"title", "specialty", "tags"} or None when the case is no longer installed (then the
    title is the case id, the specialty null and the competencies empty).
    """
    info = info or {}
    specialty = info.get("specialty")
    competencies = [c for c in (specialty, *info.get("tags", ())) if c]
    started = dt.datetime.fromisoformat(attempt["started"])
    ended = dt.datetime.fromisoformat(attempt["ended"]) if attempt["ended"] else started
    return {
        "attempt_id": attempt["id"],
        "trainee": {"id": trainee["id"], "name": trainee["name"]},
        "pack": {
            "id": attempt["pack_id"],
            "version": attempt["pack_version"],
            "digest": attempt["pack_digest"],
        },
        "case": {
            "id": attempt["case_id"],
            "version": attempt["case_version"],
            "title": info.get("title") or attempt["case_id"],
            "specialty": specialty,
            "competencies": competencies,
        },
        "model": attempt["model"],
        "started": started.isoformat(),
        "ended": ended.isoformat(),
        "seconds": float(score.get("seconds") or (ended - started).total_seconds()),
        "turns": int(score.get("turns") or 0),
        "score": {
            "total": score["total"],
            "raw": score["raw"],
            "passed": bool(score["passed"]),
            "pass_mark": score["pass_mark"],
            "domains": dict(score["domains"]),
            "scorer_version": score["scorer_version"],
        },
        "debrief": {
            "missed": [
                {"id": i["id"], "description": i["description"], "domain": i["domain"]}
                for i in score.get("items", ())
                if not i["done"]
            ],
            "critical": [{"id": c["id"], "description": c["description"]} for c in score.get("critical", ())],
            "stewardship": list(score.get("stewardship", ())),
        },
    }


def installed_case_info(case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Case facts for the ids that are installed (unreadable or missing cases are left out):
    used when results finished before events existed are sealed after an upgrade."""
    from ..cases.loader import load_case
    from ..errors import EdgeTutorError
    from ..packs.install import PackStore

    wanted = set(case_ids)
    found: dict[str, dict[str, Any]] = {}
    try:
        entries = PackStore().cases()
    except EdgeTutorError:
        return found
    for entry in entries:
        if entry.id in wanted and entry.id not in found:
            try:
                found[entry.id] = case_info(load_case(entry.file))
            except EdgeTutorError:
                continue
    return found
