"""The communication domain: how the trainee talked with the patient, from their turns' dialogue acts.

Each skill is credited from what the trainee said (the acts recorded with every turn, see
edgetutor/patient/acts.py), and the turn that earned it is kept as evidence for the debrief:
- introduction: introduced themself (name or role);
- identity: confirmed who the patient is (name or age);
- open_question: one of the first three questions to the patient was an open one
  ("what brings you here today?");
- consent: asked permission to ask questions or to examine;
- ice: asked about the patient's ideas, concerns or expectations;
- empathy: acknowledged feelings or reassured;
- summary: summarised back to the patient;
- understanding: checked understanding or invited questions;
- plain_plan: explained the plan to the patient without jargon (doses, abbreviations, medical terms).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SKILL_ACTS: dict[str, tuple[str, ...]] = {
    "introduction": ("introduction",),
    "identity": ("identity_name", "identity_age", "identity_relation"),
    "consent": ("consent", "consent_exam", "consent_generic"),
    "ice": ("ice",),
    "empathy": ("empathy", "reassurance"),
    "summary": ("summary",),
    "understanding": ("check_understanding",),
}
OPENING_QUESTIONS = 3  # how early the open question must come


def skills_shown(dialogue: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Skill -> the trainee's own words that showed it (first occurrence), from turn records
    with `utterance`, `acts`, `open` and `plain`."""
    shown: dict[str, str] = {}
    questions = 0
    for turn in dialogue:
        acts = list(turn.get("acts") or [])
        said = str(turn.get("utterance", ""))
        for skill, wanted in SKILL_ACTS.items():
            if skill not in shown and any(a in wanted for a in acts):
                shown[skill] = said
        if "plan_explanation" in acts and turn.get("plain", True) and "plain_plan" not in shown:
            shown["plain_plan"] = said
        asks = "history" in acts or "ice" in acts or any(a.startswith("identity") for a in acts)
        if asks:
            questions += 1
            if turn.get("open") and questions <= OPENING_QUESTIONS and "open_question" not in shown:
                shown["open_question"] = said
    return shown
