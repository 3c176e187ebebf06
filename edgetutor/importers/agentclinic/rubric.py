"""The rubric and the coded examination and test items of a converted case."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ...cases.codes import EXAM_CODES, TEST_CODES
from ...cases.lint import norm
from .diagnosis import DxNames
from .findings import Draft
from .investigations import test_cost, turnaround_minutes
from .tables import EXAMINATION, INVESTIGATIONS
from .text import clean, human, shorten

_VAGUE_ALIASES = EXAMINATION.vague_aliases


def exam_aliases(d: Draft) -> tuple[list[str], list[str]]:
    extra = list(EXAM_CODES.get(d.code, ("", ()))[1]) + list(EXAMINATION.local_exams.get(d.code, ("", ()))[1])
    return [*EXAMINATION.section_aliases.get(d.code, ()), *extra], d.aliases


def test_aliases(d: Draft) -> tuple[list[str], list[str]]:
    std = TEST_CODES.get(d.code) or INVESTIGATIONS.local_tests.get(d.code)
    extra = [std[0], *std[1]] if std else []
    return [*(label.lower() for label in d.labels), *extra], d.aliases


def coded_items(
    drafts: list[Draft], aliases_of: Callable[[Draft], tuple[list[str], list[str]]], kind: str
) -> list[dict[str, Any]]:
    """Findings or tests with aliases that name one code only (lint refuses shared aliases).

    Names are claimed first, then the catalogue's aliases, then sub-headings of the source: so a
    urinalysis's "Glucose" line never takes "glucose" from the blood glucose test.
    """
    owner: dict[str, str] = {}
    for d in drafts:
        owner.setdefault(norm(d.name), d.code)
    chosen: dict[str, list[str]] = {d.code: [] for d in drafts}
    for rank in (0, 1):
        for d in drafts:
            aliases = chosen[d.code]
            for a in aliases_of(d)[rank]:
                a = clean(a)
                key = norm(a)
                if not key or len(a) > 200 or key == norm(d.name) or a.lower() in _VAGUE_ALIASES:
                    continue
                if rank and len(key) < 3:
                    continue  # "k", "ap": too short to be a request on their own
                if owner.setdefault(key, d.code) != d.code or key in (norm(x) for x in aliases):
                    continue
                if len(aliases) < 12:
                    aliases.append(a.lower() if not re.search(r"[A-Z]{2}", a) else a)
    out = []
    for d in drafts:
        item: dict[str, Any] = {"code": d.code, "name": d.name, "aliases": chosen[d.code]}
        if kind == "exam":
            item["finding"] = d.text()
            item["abnormal"] = d.abnormal
        else:
            item["result"] = d.text()
            item["abnormal"] = d.abnormal
            item["available"] = True
            item["cost"] = test_cost(d.code, d.name)
            item["turnaround_minutes"] = turnaround_minutes(d.code, d.name)
        out.append(item)
    return out


def build_rubric(
    facts: list[dict[str, Any]], exams: list[Draft], tests: list[Draft], vitals: dict[str, Any], dx: DxNames
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for f in facts:
        source = f.pop("_source")
        # The presenting complaint and what the history of it says; the many pertinent negatives
        # are left out so that a denial list does not outweigh the story.
        if (
            f["category"] == "presenting_complaint"
            or f.get("critical")
            or (f["category"] == "hpi" and not f.get("negative"))
        ):
            weight = 2 if f["category"] == "presenting_complaint" else 1
            items.append(
                {
                    "id": f"h-{f['id']}"[:80],
                    "description": f"History: {shorten(source, 150)}{'...' if len(source) > 150 else ''}",
                    "domain": "history",
                    "weight": weight,
                    "fact": f["id"],
                }
            )
    if any(k != "note" for k in vitals):
        items.append(
            {
                "id": "e-vitals",
                "description": "Took the vital signs",
                "domain": "examination",
                "weight": 1,
                "exam": "vitals",
            }
        )
    # One item per abnormal finding; a section with nothing abnormal counts once, lightly.
    by_section: dict[str, list[Draft]] = {}
    for d in exams:
        by_section.setdefault(d.section, []).append(d)
    seen: set[str] = set()
    for section, drafts in by_section.items():
        abnormal = [d for d in drafts if d.abnormal]
        chosen = abnormal or drafts[:1]
        for d in chosen:
            if d.code in seen:
                continue
            seen.add(d.code)
            items.append(
                {
                    "id": f"e-{d.code.replace('.', '-')}"[:80],
                    "description": f"Examined: {d.name.lower()} ({human(section).lower()})"
                    + (" - abnormal" if d.abnormal else ""),
                    "domain": "examination",
                    "weight": 1 if d.abnormal else 0.5,
                    "exam": d.code,
                }
            )
    for t in tests:
        if t.lines and t.lines[0].startswith(("No result recorded", "Not indicated")):
            continue
        items.append(
            {
                "id": f"t-{t.code.replace('.', '-')}"[:80],
                "description": f"Ordered: {t.name}" + (" (abnormal result)" if t.abnormal else ""),
                "domain": "investigations",
                "weight": 1 if t.abnormal else 0.5,
                "test": t.code,
            }
        )
    items.append(
        {
            "id": "d-primary",
            "description": f"Diagnosed {dx.name}",
            "domain": "diagnosis",
            "weight": 3,
            "diagnosis": "primary",
        }
    )
    return {"pass_mark": 0.6, "items": items, "critical_errors": []}
