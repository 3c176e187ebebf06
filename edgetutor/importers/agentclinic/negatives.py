"""Denials ("Denies chest pain, palpitations, or fever"): one negative answer per item denied."""

from __future__ import annotations

import re

from .speech import patient_pronouns
from .tables import LANGUAGE
from .text import clean
from .voice import Voice

_DENIAL = re.compile(
    r"^(?:(?:the patient|patient|he|she|(?:his |her |the |my )?(?:patient's |child's )?(?:roommates|mother|"
    r"parents?|father|family))\s+(?:also\s+)?(?:(?:reports?|notes?|mentions?|says)\s+(?:that\s+)?(?=no\b))?)?"
    r"(?:also\s+)?(?:specifically,?\s+)?"
    r"(?:denies|denied|does not report|did not report|do not report|reports no|mentions no|notes no|"
    r"describes no|has no history of|"
    r"has not had|no history of|no reports? of|negative for|without|no)\b\s*(.*)$",
    re.I,
)
_PREPOSITIONS = LANGUAGE.prepositions


def denial_items(text: str) -> list[str] | None:
    """The things denied, one per item, or None if `text` is not a denial."""
    t = clean(text).rstrip(".")
    t = re.sub(r"^(?:on review|on questioning|upon further questioning),?\s*", "", t, flags=re.I)
    t = re.sub(r"^there(?:'s| is| are| were| has been| have been)\s+(?=no\b)", "", t, flags=re.I)
    m = _DENIAL.match(t)
    if not m:
        return None
    body = m.group(1)
    body = re.sub(r"\s*\([^)]*\)", "", body)
    body = re.sub(r"^(?:any |experiencing any |experiencing |having |a |an )", "", body, flags=re.I)
    body = re.sub(r"^(?:any )?history of ", "", body, flags=re.I)
    parts = [p.strip() for p in re.split(r",\s*", body) if p.strip()]
    items: list[str] = []
    for p in parts:
        p = re.sub(r"^(?:and|or|nor|no|any|a|an)\s+", "", p, flags=re.I)
        p = re.sub(r"^(?:no|any|a|an)\s+", "", p, flags=re.I)
        p = re.sub(r"\s+(?:reported|noted|mentioned|identified)$", "", p, flags=re.I)
        p = re.sub(
            r"\s+(?:were|was|have been|has been|is|are)\s+(?:noted|reported|observed|seen|identified)\b.*$",
            "",
            p,
            flags=re.I,
        )
        if re.search(r"\b(?:family|personal|prenatal|birth)\b.*\bhistory\b", p, re.I):
            items.append(p)
            continue
        if re.search(r"\s(?:or|and)\s", p):
            pieces = [re.sub(r"^(?:no|any)\s+", "", x, flags=re.I) for x in re.split(r"\s+(?:or|and)\s+", p)]
            if all(len(x.split()) <= 3 and not (set(x.lower().split()) & _PREPOSITIONS) for x in pieces):
                items += _share_words(pieces)
                continue
        if p:
            items.append(p)
    return items or None


_DEPENDENT = LANGUAGE.dependent_words
_MODIFIERS = LANGUAGE.modifiers


def _share_words(pieces: list[str]) -> list[str]:
    """ "skin or nipple changes" -> skin changes, nipple changes; "weight loss or gain" -> weight gain."""
    last = pieces[-1].split()
    first = pieces[0].split()
    out = []
    for i, piece in enumerate(pieces):
        words = piece.split()
        if i < len(pieces) - 1 and len(words) == 1 and len(last) > 1 and words[0].lower() in _MODIFIERS:
            out.append(f"{piece} {last[-1]}")
        elif i > 0 and len(words) == 1 and len(first) > 1 and words[0].lower() in _DEPENDENT:
            out.append(" ".join([*first[:-1], piece]))
        else:
            out.append(piece)
    return out


def negative_answer(item: str, v: Voice) -> str:
    """ "chest pain" -> "No, I haven't had any chest pain." """
    x = clean(item).rstrip(".")
    x = re.sub(r"^(?:any|a|an|history of|experiencing)\s+", "", x, flags=re.I)
    low = x.lower()
    subj, has, does = (v.he, "hasn't", "doesn't") if v.child else ("I", "haven't", "don't")
    if not v.child:
        x = patient_pronouns(x, v.sex)
        low = x.lower()
    adult = not v.child
    if re.search(r"\ballerg", low):
        return f"No, {subj} {does} have any allergies."
    if "in the family" in low or "family history" in low:
        return (
            f"No, there's no {x}." if low.startswith("family history") else f"No, there haven't been any {x}."
        )
    if "exposure" not in low and adult:
        if re.search(r"\b(smok|tobacco|cigar)", low) and not re.search(r"\b(alcohol|drug)", low):
            return "No, I don't smoke."
        if re.search(r"\b(alcohol|drinking)\b", low) and not re.search(r"\b(drug|smok)", low):
            return "No, I don't drink alcohol."
        if re.search(r"\b(marijuana|cannabis)\b", low):
            return "No, I don't use marijuana."
        if re.search(r"\b(drug|substance)s?\b", low) and "medication" not in low:
            return "No, I don't use drugs."
    if m := re.match(r"^(?:known )?((?:family|personal|family or personal) history of .*)$", low):
        return f"No, there's no {m.group(1)}."
    if re.search(r"\b(?:family|prenatal|birth)\b.*\bhistory\b", low):
        return f"No, nothing significant in the {re.sub(r'^(?:other )?(?:significant |notable )?', '', x)}."
    if re.search(r"\bmedical (?:or surgical )?history\b|\bmedical (?:problems|issues)\b", low):
        return "No, I've been healthy." if adult else f"No, {v.he} has been healthy."
    if re.search(r"\ballerg", low):
        return f"No, {subj} {does} have any allergies."
    if re.search(r"\btravel", low) and re.search(r"\bsick\b", low):
        return f"No, {subj} {has} travelled recently or been around anyone who is sick."
    if re.search(r"\btravel", low):
        return f"No, {subj} {has} travelled recently."
    if re.search(r"\bsick contacts?\b|contact with sick|sick individuals", low):
        return f"No, {subj} {has} been around anyone who is sick."
    if re.match(r"^(?:other|additional|further)\b", low):
        return "No, nothing else." if adult else f"No, nothing else that I've noticed in {v.him}."
    if re.match(r"^changes? in\b", low):
        return f"No, I haven't noticed any {x}."
    if re.match(r"^new medications?\b", low):
        return f"No, {subj} {has} started any {x}."
    if re.search(r"\bmedications?\b", low):
        return "No, I'm not taking any medications." if adult else f"No, {v.he} isn't taking any medications."
    return f"No, {subj} {has} had any {x}."
