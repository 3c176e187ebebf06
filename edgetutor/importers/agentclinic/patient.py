"""The patient: age and sex from the demographics, who speaks (the patient or a parent), name,
occupation, persona."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .diagnosis import DxNames
from .report import CaseImport
from .speech import PARENT_WORDS
from .tables import PATIENT
from .text import clean, flat_text, lower_first
from .voice import CHILD_AGE, Demographics, Voice

_FEMALE_NAMES = PATIENT.female_names
_MALE_NAMES = PATIENT.male_names
_SURNAMES = PATIENT.surnames


# The record says she is pregnant now ("at 32 weeks' gestation", "pregnant", "third trimester"),
# and nothing says otherwise ("not pregnant", "denies pregnancy", "3 days postpartum").
_PREGNANT = re.compile(
    r"\b(pregnant|\d+ weeks?(?:'|’)? (?:of )?(?:gestation|pregnancy|pregnant)|at \d+ weeks|"
    r"(?:first|second|third) trimester)\b",
    re.IGNORECASE,
)
_NOT_PREGNANT = re.compile(
    r"\b(not|denies|deny|no|negative|never)\b[^.]{0,30}\bpregnan|\bpregnan\w*[^.]{0,20}\bnegative\b|"
    r"post-?partum|after (?:giving birth|delivery|her delivery)|delivered\b|miscarr|abortion",
    re.IGNORECASE,
)


def _pick(names: Sequence[str], seed: int) -> str:
    return names[(seed * 7 + 3) % len(names)]


def sex_noun(demo: Demographics) -> str:
    female = demo.sex == "female"
    if demo.label == "newborn" or demo.label.endswith(("day-old", "week-old")):
        return "newborn girl" if female else "newborn boy"
    if demo.age_years < 2:
        return "baby girl" if female else "baby boy"
    if demo.age_years < 18:
        return "girl" if female else "boy"
    return "woman" if female else "man"


def patient_section(
    demo: Demographics,
    v: Voice,
    number: int,
    actor: dict[str, Any],
    primary: str,
    dx: DxNames,
    info: CaseImport,
) -> dict[str, Any]:
    first = _pick(_FEMALE_NAMES if demo.sex == "female" else _MALE_NAMES, number)
    surname = _pick(_SURNAMES, number * 3 + 1)
    social = flat_text(actor.get("Social_History"))
    occupation = _occupation(social, actor["Demographics"], demo)
    patient: dict[str, Any] = {"name": f"{first} {surname}", "age_years": demo.age_years}
    if demo.age_months is not None and (demo.age_years < 5):
        patient["age_months"] = demo.age_months
    patient["sex"] = demo.sex
    told = f"{actor['Demographics']} {flat_text(actor.get('History'))}"
    if (
        demo.sex == "female"
        and demo.age_years >= 10
        and _PREGNANT.search(told)
        and not _NOT_PREGNANT.search(told)
    ):
        # "Are you pregnant?" must not get the default "No" from a woman at 32 weeks.
        patient["pregnant"] = True
    patient["occupation"] = occupation
    if v.child:
        parent_first = _pick(_FEMALE_NAMES if v.parent == "mother" else _MALE_NAMES, number + 11)
        if parent_first == first:
            parent_first = _pick(_FEMALE_NAMES if v.parent == "mother" else _MALE_NAMES, number + 12)
        patient["informant"] = {"name": f"{parent_first} {surname}", "relation": v.parent}
        info.guesses.append(f"the {v.parent} answers for the child (informant)")
    patient["opening_statement"] = opening_statement(primary, v, dx)
    patient["unknown_answer"] = (
        f"I'm not sure. I haven't noticed anything like that in {v.him}."
        if v.child
        else "I'm not sure. I haven't noticed anything like that."
    )
    if v.child:
        persona = {
            "personality": f"a caring {v.parent}, cooperative and observant",
            "speech_style": "clear, plain sentences; answers what is asked and does not guess",
            "literacy": "high",
            "emotional_state": f"worried about {v.his} child but calm",
            "ideas": "is not sure what is causing this",
            "concerns": f"wants to know what is wrong with {v.his} child and whether it is serious",
            "expectations": "expects the child to be examined and tested, and to be told what is going on",
        }
    else:
        persona = {
            "personality": "cooperative and matter-of-fact",
            "speech_style": "clear, plain sentences; answers what is asked and does not guess",
            "literacy": "high",
            "emotional_state": "concerned but calm",
            "ideas": "has no firm idea what is causing this",
            "concerns": "wants to know what is wrong and whether it is serious",
            "expectations": "expects to be examined and tested, and to be told what is going on",
        }
    patient["persona"] = persona
    return patient


_JOBS = PATIENT.jobs_pattern


def _occupation(social: str, demographics: str, demo: Demographics) -> str:
    if demo.age_years == 0:
        return "infant"
    if demo.age_years < 5:
        return "young child (not at school)"
    s = clean(social)
    for rx in (
        r"\bworks as (?:an? )?([^.,;]+)",
        r"\b(?:works (?:at|in) (?:an? |the )?)([^.,;]+)",
        r"([A-Za-z ]+?) by profession",
        r"\b((?:retired )?(?:elementary |high |primary )?school teacher)\b",
        r"\b(retired (?:\w+ )?(?:" + _JOBS + r"))\b",
        rf"\b((?:\w+ )?(?:{_JOBS}))\b",
        r"\b((?:college|high school|university) student)\b",
        r"\b(student)\b",
    ):
        if m := re.search(rx, s, re.I):
            job = m.group(1).strip().lower()
            if rx.startswith(r"\b(?:works (?:at|in)"):
                job = f"works at {job}"
            return job
    if m := re.search(rf"\b((?:college |high school )?student|{_JOBS})\b", demographics, re.I):
        return m.group(1).lower()
    if demo.age_years < 18:
        if demo.age_years >= CHILD_AGE:
            return "student"
        return "school pupil" if re.search(r"school|grade|class", s, re.I) else "child"
    return "not stated"


def opening_statement(primary: str, v: Voice, dx: DxNames) -> str:
    t = clean(primary).rstrip(".")
    t = re.sub(r"^(?:the )?presence of ", "", t, flags=re.I)
    t = re.sub(r"^episode of ", "an episode of ", t, flags=re.I)
    who = f"I've brought {v.noun} in" if v.child else "I've come in"
    if m := re.match(rf"^{PARENT_WORDS}\s+reports?\s+(.*)$", t, re.I):
        who_worries = "mother" if "mother" in t.lower() else "parent"
        text = f"Hello, doctor. My {who_worries} is worried about {m.group(1)}."
    elif re.search(r"murmur|pressure|reflex", t, re.I):
        asked = f"I was asked to bring {v.noun} in" if v.child else "I was asked to come in"
        text = f"Hello, doctor. {asked} because of {lower_first(t)}."
    else:
        text = f"Hello, doctor. {who} because of {lower_first(t)}."
    if dx.named_in(text):
        text = (
            f"Hello, doctor. {who} to get checked." if not v.child else f"Hello, doctor. {who} to be checked."
        )
    return text
