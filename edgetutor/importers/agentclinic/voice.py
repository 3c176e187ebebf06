"""Who the patient is and who speaks: age and sex from the demographics, and the voice (the
patient, or a parent for a child) the facts are written in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import clean

CHILD_AGE = 12  # below this a parent answers for the patient


@dataclass(frozen=True)
class Demographics:
    age_years: int
    age_months: int | None
    sex: str
    label: str  # "35-year-old", "8-month-old", "2-day-old", "newborn"
    sex_stated: bool


# Ages as writers of case records put them: "35-year-old", "68 y/o", "68yo", "72 yrs", "aged 40",
# "age: 40", "40 M", "18-month-old", "18 months old", "6 mo", "3 weeks old", "10-day-old".
_AGE_DAYS = re.compile(r"\b(\d+)\s*[- ]?\s*(days?|weeks?|wks?)[- ]?old\b")
_AGE_MONTHS = re.compile(r"\b(\d+)\s*[- ]?\s*(?:months?|mos?|m/o)\b(?:[- ]?old)?")
_AGE_YEARS = re.compile(r"\b(\d+)\s*[- ]?\s*(?:years?|yrs?|yo|y/o|y\.o\.?|y)\b(?:[- ]?old)?")
_AGE_AGED = re.compile(r"\bage[d:]?\s*:?\s*(\d+)\b")
_AGE_BARE = re.compile(r"^\s*(?:a |an )?(\d{1,3})\s*(?:,|-)?\s*(?:[mf]\b|male|female|man|woman)")
_AGE_AFTER_SEX = re.compile(r"^\s*(?:[mf]|male|female|man|woman)\s*,?\s*(\d{1,3})\b")
# "68 y/o M", "40M", "F, 34": a sex given as one letter beside the age.
_SEX_LETTER_F = re.compile(r"(?:\d\s*(?:y/o|yo|yrs?|years?( old)?|y)?\s*,?\s*f\b|^f\s*,?\s*\d)")
_SEX_LETTER_M = re.compile(r"(?:\d\s*(?:y/o|yo|yrs?|years?( old)?|y)?\s*,?\s*m\b|^m\s*,?\s*\d)")


def parse_demographics(text: str, context: str) -> Demographics:
    """Age and sex from `Demographics` ("35-year-old female", "Newborn, female", "3-year-old child").

    Sex not in the demographics is read from the pronouns of the history (`context`).
    """
    t = clean(text).lower()
    years, months, label = 0, None, "newborn"
    if m := _AGE_DAYS.search(t):
        unit = "week" if m.group(2).startswith("w") else "day"
        years, months, label = 0, 0, f"{m.group(1)}-{unit}-old"
    elif m := _AGE_MONTHS.search(t):
        total = int(m.group(1))
        years, months, label = total // 12, total % 12, f"{total}-month-old"
    elif m := (
        _AGE_YEARS.search(t) or _AGE_AGED.search(t) or _AGE_BARE.search(t) or _AGE_AFTER_SEX.search(t)
    ):
        years, label = int(m.group(1)), f"{m.group(1)}-year-old"
    elif "newborn" in t or "neonate" in t or "infant" in t:
        years, months, label = 0, 0, "newborn"
    sex, stated = "", True
    if re.search(r"\b(female|woman|girl|lady|gravida|pregnant)\b", t) or _SEX_LETTER_F.search(t):
        sex = "female"
    elif re.search(r"\b(male|man|boy|gentleman)\b", t) or _SEX_LETTER_M.search(t):
        sex = "male"
    else:
        stated = False
        c = f" {clean(context).lower()} "
        c = re.sub(r"\b(mother|wife|sister|daughter)\b[^.]*", " ", c)  # their pronouns are not the patient's
        she = len(re.findall(r"\b(she|her|herself|daughter|girl)\b", c))
        he = len(re.findall(r"\b(he|his|him|himself|son|boy)\b", c))
        sex = "female" if she > he else "male" if he > she else ""
    return Demographics(years, months, sex, label, stated)


@dataclass(frozen=True)
class Voice:
    """Who is speaking and how they refer to the patient."""

    sex: str  # the patient's
    child: bool  # a parent speaks
    parent: str  # "mother" or "father"
    noun: str  # how the parent names the child: "my son", "my daughter", "my baby"
    he: str
    his: str
    him: str

    @property
    def subj(self) -> str:
        """Subject of a negative answer: "I haven't had" / "he hasn't had"."""
        return self.he if self.child else "I"


def make_voice(demo: Demographics, history: str) -> Voice:
    female = demo.sex == "female"
    child = demo.age_years < CHILD_AGE
    h = history.lower()
    # The parent who reports in the source answers; the mother unless only a father reports.
    reports = r"(?:reports?|notes?|mentions?|says|describes?|recalls?|has noticed|noticed)"
    parent = (
        "father"
        if (re.search(rf"\bfather {reports}", h) and not re.search(rf"\bmother {reports}", h))
        else "mother"
    )
    if demo.age_years == 0 and (demo.age_months or 0) < 12:
        noun = "my baby"
    else:
        noun = "my daughter" if female else "my son"
    return Voice(
        sex=demo.sex,
        child=child,
        parent=parent,
        noun=noun,
        he="she" if female else "he",
        his="her" if female else "his",
        him="her" if female else "him",
    )
