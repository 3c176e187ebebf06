"""Source sentences: what kind each is (a fact, a placeholder, an examiner's observation), its
clauses, and the keywords a trainee's question is matched on."""

from __future__ import annotations

import itertools
import re

from .diagnosis import DxNames
from .speech import PARENT_WORDS, PATIENT_SUBJECT, REPORT_VERBS
from .tables import LANGUAGE
from .text import clean

_PLACEHOLDER = re.compile(
    r"(\bnot provided\b|\binformation not\b|\bnot specified\b|\bdoes not specify\b|\bnot applicable\b|"
    r"^n/?a\b|\bno mention\b|\b(?:was|were|has been|is|are) (?:not )?mentioned\b|\bmentioned$|"
    r"\bdata not\b|\bunable to provide\b|\bdidn't provide\b|\bdid not provide\b|\bdue to the age\b|"
    r"\b(?:history|information|details?|data|habits?)\b[^.]*\bprovided$|"
    r"\bno (?:additional |other |relevant |specific |detailed |pertinent |notable )?"
    r"(?:information|details?)\b|\bno pertinent\b|\bno relevant social\b|\bno significant social\b|"
    r"\bno detailed\b)",
    re.I,
)
# Signs only an examination finds ("decreased bowel sounds"): a patient cannot report them.
EXAMINER_TERMS = (
    r"bowel sounds|crackles|rales|rhonchi|(?:hepato)?splenomegaly|hepatomegaly|capillary refill"
    r"|jugular venous|rebound tenderness|guarding"
)
_EXAMINER_ONLY = re.compile(rf"\b(?:{EXAMINER_TERMS})\b", re.I)
# What only an examiner can say: never a fact, whoever speaks.
_OBSERVATION = re.compile(
    r"(\bphysical examination\b|\bon examination\b|\bis noted to be\b|"
    r"\bexhibits\b|\boriented to\b|\bvital signs\b|"
    r"\bpulse (?:is|of)\b|\btemperature of\b|\brespirations (?:are|of)\b|\bhealthy appearance\b|"
    r"\bavoids questions\b|\bthe rest of the examination\b|\bduring the physical exam\b|"
    r"\bimproves with oxygen\b|\bfontanelle\b|\bpupils\b|\bheard at\b|\bclear to auscultation\b|"
    r"\b(?:is|are) noted\b|\bno abnormalities noted\b|\bduring (?:the )?(?:history taking|interview|exam)\b)",
    re.I,
)
_GENERAL_NEGATIVE = re.compile(
    r"^(?:all (?:other )?systems|all systems review|no (?:additional|other|further) (?:systemic )?"
    r"(?:symptoms|complaints)|no significant findings|no other abnormalities|unremarkable except|"
    r"(?:the )?(?:patient|he|she) (?:did not|does not|didn't) report any other|"
    r"(?:the patient |patient |he |she )?denies any other|"
    r"no other (?:similar|systemic)|no additional symptoms)",
    re.I,
)
NO_HISTORY = re.compile(
    r"^(?:the patient's |patient's )?"
    r"(?:no|unremarkable|otherwise healthy|previously healthy|generally healthy)"
    r"\s*(?:significant |notable |other significant )?(?:past )?(?:medical|psychiatric)?\s*"
    r"(?:or (?:surgical|psychiatric) )?"
    r"(?:history)?(?: provided| reported)?\.?$",
    re.I,
)

NO_HISTORY_ANY = re.compile(
    r"\bno (?:significant |notable |other significant |prior |known )?(?:past )?(?:medical|psychiatric)"
    r"(?: or (?:surgical|psychiatric))? history\b|\bno significant (?:past )?medical (?:issues|problems)\b|"
    r"\bno significant (?:previous )?medical history\b|\bunremarkable past medical history\b|"
    r"\bno (?:significant )?(?:previous|past) medical history\b",
    re.I,
)
_OBSERVING_REPORT = re.compile(
    rf"^(?:{PATIENT_SUBJECT}\s+)?(?:also\s+)?(?:{REPORT_VERBS}|complains)\b|"
    r"^(?:the |his |her )?(?:patient's )?"
    rf"(?:{PARENT_WORDS}|wife|husband|family|roommates|daughter|son)\b",
    re.I,
)


# What a parent can also see ("she appears more tired"), but an adult does not say of himself.
_LOOKS = re.compile(
    r"\bappears?\b|\bpresents as\b|\bshows? signs\b|\bshowing signs\b|^shows\b|^alert\b|\bis somnolent\b",
    re.I,
)


def classify(sentence: str, parent_speaks: bool = False) -> str:
    """ "fact", "placeholder", "observation" or "general_negative"."""
    s = clean(sentence)
    if _GENERAL_NEGATIVE.match(s):
        return "general_negative"
    if _PLACEHOLDER.search(s.rstrip(".")):
        return "placeholder"
    if _EXAMINER_ONLY.search(s):
        return "observation"  # even when reported: "she mentions a decrease in bowel sounds"
    if _OBSERVING_REPORT.match(s):
        return "fact"
    if _OBSERVATION.search(s) or (_LOOKS.search(s) and not parent_speaks):
        return "observation"
    return "fact"


_CLAUSE_BREAK = re.compile(
    r"\s*;\s*"
    r"|,?\s+but\s+(?=(?:denies|reports|notes|mentions|says|no|not)\b)"
    r"|,?\s+and\s+(?=(?:reports|mentions|notes|denies|admits|does not|doesn't|has not|is not)\b)"
    r"|,\s+and\s+(?=(?:the|his|her|my|she|he|it|there)\s)"
    r"|,?\s+and\s+(?=(?:enjoys|drinks|smokes|works|lives|uses|takes|attends|plays)\b)"
    r"|,\s+(?=no (?:history of|known)\b)"
    r"|,\s+(?=(?:(?:frequently|occasionally|regularly|rarely|often|currently|also|now)\s+)?"
    r"(?:denies|reports|drinks|smokes|works|lives|uses|takes|enjoys|attends|consumes|plays|admits|"
    r"has recently|is a|retired|married)\b)",
    re.I,
)


def clauses(sentence: str) -> list[str]:
    """One sentence -> the clauses that each carry one fact ("Non-smoker, drinks wine occasionally")."""
    s = clean(sentence).rstrip(".")
    s = re.sub(r"^((?:a )?non-?smoker|smoker)\s*(?:,|\band\b)\s*", r"\1; ", s, flags=re.I)
    s = re.sub(
        r",?\s+and\s+(she|he|the patient)\s+(mentions|reports|notes|states|says)\b", r"; \1 \2", s, flags=re.I
    )
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK.split(s)]
    return [p for p in parts if p]


# ---------------------------------------------------------------------------------------------
# Keywords
# ---------------------------------------------------------------------------------------------

_STOP = LANGUAGE.stop_words
_LAY = LANGUAGE.lay_terms


def keywords_for(text: str, dx: DxNames, extra: list[str] | None = None, limit: int = 12) -> list[str]:
    """Content words and bigrams of `text` (source words, lay terms), never a diagnosis word."""
    words = re.findall(r"[a-z][a-z0-9'-]*", clean(text).lower())
    runs: list[list[str]] = [[]]
    for w in words:
        w = re.sub(r"'s$", "", w.strip("'-"))
        if not w or w in _STOP or len(w) < 3 or w.isdigit():
            runs.append([])
        else:
            runs[-1].append(w)
    out: list[str] = []

    def add(k: str) -> None:
        k = k.strip()
        if k and k not in out and not dx.in_keyword(k) and not dx.named_in(k) and len(k) <= 60:
            out.append(k)

    for phrase in extra or []:
        add(phrase.lower())
    for run in runs:
        for a, b in itertools.pairwise(run):
            add(f"{a} {b}")
    for run in runs:
        for w in run:
            add(w)
    lay: list[str] = []
    joined = " ".join(words)
    for term, alts in _LAY.items():
        if re.search(rf"\b{re.escape(term)}\b", joined):
            lay += alts
    for k in lay:
        add(k)
    return out[:limit]
