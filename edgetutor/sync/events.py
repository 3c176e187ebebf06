"""The payload of a result event: what a coordinator's hub stores and reports from.

Built from what the database already holds for a finished attempt (its row, the trainee, the
stored score) plus three facts about the case that only the case file knows (title, specialty,
competencies). Everything here is pure: the store seals the event in the transaction that stores the
score (`Store.finish_attempt`).

Only finished attempts WITH a score become events: an attempt ended without scoring has nothing
a coordinator could report, so nothing is sent for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ..cases.loader import load_case
from ..errors import EdgeTutorError
from ..packs.install import PackStore


def case_info(case: Any) -> dict[str, Any]:
    """The case facts a payload needs from a `cases.schema.Case` (what `finish_attempt` takes)."""
    return {"title": case.title, "specialty": case.specialty, "competencies": list(case.competencies)}


# The hub refuses an event over 64 kB (hub.ingest.MAX_EVENT_BYTES); these caps keep every event a
# device seals far below that, whatever a case or a trainee's name holds, so none is ever stuck.
_TEXT = 500
_ITEMS = 100


def _clip(value: Any, limit: int = _TEXT) -> Any:
    return value[:limit] if isinstance(value, str) else value


def build_payload(
    attempt: Mapping[str, Any],
    trainee: Mapping[str, Any],
    score: Mapping[str, Any],
    info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The event payload of a finished, scored attempt (keys documented in docs/sync.md).

    `attempt` is its database row, `trainee` {"id", "name"}, `score` a stored Score.as_dict(),
    `info` {"title", "specialty", "competencies"} or None when the case is no longer installed
    (then the title is the case id, the specialty null and the competencies empty). Competencies
    are the case's controlled ones (cases/competencies.yaml), never its free-text tags.
    """
    info = info or {}
    specialty = _clip(info.get("specialty"), 100)
    competencies = [_clip(c, 100) for c in info.get("competencies", ()) if c][:_ITEMS]
    started = dt.datetime.fromisoformat(attempt["started"])
    ended = dt.datetime.fromisoformat(attempt["ended"]) if attempt["ended"] else started
    return {
        "attempt_id": attempt["id"],
        "trainee": {"id": trainee["id"], "name": _clip(trainee["name"], 200)},
        "pack": {
            "id": attempt["pack_id"],
            "version": attempt["pack_version"],
            "digest": attempt["pack_digest"],
        },
        "case": {
            "id": attempt["case_id"],
            "version": attempt["case_version"],
            "title": _clip(info.get("title") or attempt["case_id"]),
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
            "domains": dict(list(score["domains"].items())[:_ITEMS]),
            "scorer_version": score["scorer_version"],
        },
        "debrief": {
            "missed": [
                {"id": i["id"], "description": _clip(i["description"]), "domain": i["domain"]}
                for i in score.get("items", ())
                if not i["done"]
            ][:_ITEMS],
            "critical": [
                {"id": c["id"], "description": _clip(c["description"])} for c in score.get("critical", ())
            ][:_ITEMS],
            "stewardship": [_clip(x) for x in score.get("stewardship", ())][:_ITEMS],
        },
    }


def installed_case_info(case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Case facts for the ids that are installed (unreadable or missing cases are left out):
    used when results finished before events existed are sealed after an upgrade."""
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
