"""Third person to first person: "The patient reports a 2-week history of X" becomes "For the past
2 weeks, I've had X", or the parent's "My son has..." for a child."""

from __future__ import annotations

import re

from .tables import LANGUAGE
from .text import cap, clean, full_stop, lower_first
from .voice import Voice

_BASE = LANGUAGE.base_verbs


def _third(verb: str) -> str:
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    return verb + "s"


_THIRD_TO_BASE = {_third(v): v for v in _BASE} | {
    "has": "have",
    "is": "am",
    "does": "do",
    "doesn't": "don't",
    "hasn't": "haven't",
    "isn't": "am not",
    "was": "was",
}
_ADVERBS = sorted(LANGUAGE.adverbs)
_ADV = "|".join(_ADVERBS)

_OBJECT_FOLLOWERS = LANGUAGE.object_followers


def _conjugate_after_i(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        verb = m.group(2)
        base = _THIRD_TO_BASE.get(verb.lower())
        return f"I{m.group(1)} {base}" if base else m.group(0)

    return re.sub(rf"\bI((?:\s+(?:{_ADV}))*)\s+([A-Za-z']+)", fix, text)


def _contract(text: str) -> str:
    for a, b in (
        (r"\bI am not\b", "I'm not"),
        (r"\bI am\b", "I'm"),
        (r"\bI have (been|had)\b", r"I've \1"),
        (r"\bI do not\b", "I don't"),
        (r"\bI have not\b", "I haven't"),
        (r"\bI did not\b", "I didn't"),
        (r"\bI was not\b", "I wasn't"),
        (r"\bI and my (\w+)", r"my \1 and I"),
        (r"\bmy I\b", "I"),
    ):
        text = re.sub(a, b, text)
    return text


def _swap_her(text: str) -> str:
    """ "her" -> "my" before a noun ("her hair"), "me" as an object ("wakes her up")."""

    def fix(m: re.Match[str]) -> str:
        pron, space, nxt = m.group(1), m.group(2), m.group(3)
        word = "me" if (not nxt or nxt.lower() in _OBJECT_FOLLOWERS) else "my"
        return (cap(word) if pron[0] == "H" else word) + space + nxt

    return re.sub(r"\b([Hh]er)\b(\s*)([A-Za-z0-9]*)", fix, text)


def patient_pronouns(text: str, sex: str) -> str:
    """The patient's own he/she/his/her -> I/my/me."""
    if sex == "female":
        text = re.sub(r"\b([Ss])he's been\b", "I've been", text)
        text = re.sub(r"\b([Ss])he's\b", "I'm", text)
        text = re.sub(r"\bherself\b", "myself", text)
        text = re.sub(r"\bhers\b", "mine", text)
        text = _swap_her(text)
        text = re.sub(r"\b[Ss]he\b", "I", text)
    else:
        text = re.sub(r"\b([Hh])e's been\b", "I've been", text)
        text = re.sub(r"\b([Hh])e's\b", "I'm", text)
        text = re.sub(r"\bhimself\b", "myself", text)
        text = re.sub(r"\b[Hh]is\b", lambda m: "My" if m.group(0)[0] == "H" else "my", text)
        text = re.sub(r"\bhim\b", "me", text)
        text = re.sub(r"\b[Hh]e\b", "I", text)
    return text


_OTHER_PEOPLE = LANGUAGE.other_people
_SUBJECT_OTHER = re.compile(
    r"^(?:the patient's |patient's |his |her |the |my )?(?:\w+ )?(" + "|".join(_OTHER_PEOPLE) + r")\b",
    re.I,
)

REPORT_VERBS = (
    r"reports|reported|notes|noted|mentions|mentioned|states|stated|says|said|reveals|revealed|adds|added|"
    r"endorses|indicates|confirms|explains|recalls|recounts|remembers|admits(?: to)?|complains of|"
    r"complained of|describes|described|cites|expresses|acknowledges"
)
PATIENT_SUBJECT = r"(?:the patient|patient|he|she)"
_REPORT = re.compile(rf"^(?:{PATIENT_SUBJECT}\s+)?(?:(?:{_ADV})\s+)*({REPORT_VERBS})\s+(that\s+)?(.*)$", re.I)
_FINITE = LANGUAGE.finite_verbs


def is_clause(text: str) -> bool:
    """Does `text` read as a clause ("these symptoms tend to worsen") rather than a noun phrase?"""
    main = re.split(
        r",|\b(?:which|that|who|where|when|while|and|since|after|before|until|because|with|for)\b",
        text.lower(),
        maxsplit=1,
    )[0]
    words = re.findall(r"[A-Za-z']+", main)[:12]
    if words and words[0] in ("she", "he", "they", "it", "there", "i", "we"):
        return True
    return any(w in _FINITE for w in words[1:])


def _duration_phrase(n: str, unit: str) -> str:
    if n in ("1", "one", "a"):
        return f"a {unit}" if unit != "1" else unit
    return f"{n} {unit}s"


_ING_ADJECTIVES = LANGUAGE.ing_adjectives


def _reported(verb: str, rest: str, that: bool = False) -> tuple[str, bool]:
    """`<patient> <verb> [that] <rest>` in the first person. Returns (text, negative)."""
    v = verb.lower()
    rest = rest.strip()
    low = rest.lower()
    if that and v not in ("recalls", "recounts", "remembers", "admits", "admits to", "cites"):
        return rest, False
    if low.startswith("recent return from "):
        return f"I recently returned from {rest[len('recent return from ') :]}", False
    described = re.match(r"(the|his|her|my) ([\w-]+(?: [\w-]+)?) as (.*)$", rest, re.I)
    if v.startswith("describ") and described:
        det = "the" if described.group(1).lower() == "the" else "my"
        return f"{det} {described.group(2)} is {described.group(3)}", False
    if v.startswith("complain"):
        return f"I've been having {rest}", False
    if v in ("recalls", "recounts", "remembers"):
        return f"I remember {rest}", False
    if v.startswith("admits"):
        if low.startswith("being "):
            return f"I'm {rest[6:]}", False
        return f"I admit to {rest}" if v == "admits to" else f"I admit {rest}", False
    if v == "cites":
        if m := re.match(r"(.*) as (?:a |the )?(?:possible |likely )?cause$", rest, re.I):
            return f"I think {m.group(1)} might be the cause", False
        return f"I'd mention {rest}", False
    # reports / notes / mentions / states ...: the content carries the meaning.
    if low.startswith("no "):
        return f"I have {rest}", True
    if m := re.match(
        r"an? (?:(\d+|one|two|three|four|five|six|several)[- ](day|week|month|year)|"
        r"(year|month|week)[- ]long)"
        r"[- ]history of (?:experiencing |having )?(.*)$",
        rest,
        re.I,
    ):
        if m.group(3):
            dur = f"a {m.group(3).lower()}"
        else:
            dur = _duration_phrase(m.group(1).lower(), m.group(2).lower())
        what = m.group(4)
        verb = "been" if re.match(r"\w+ing\b", what) and what.split()[0] not in _ING_ADJECTIVES else "had"
        return f"For the past {dur.removeprefix('a ')}, I've {verb} {what}", False
    if re.match(r"(a )?history of ", low):
        return f"I have {'a ' if not low.startswith('a ') else ''}{rest}", False
    if m := re.match(r"(\w+ing)\b\s*(.*)$", rest):
        ing, tail = m.group(1).lower(), m.group(2)
        if ing == "having":
            tail = re.sub(r"^had\s+", "", tail)
            return f"I've had {tail}", tail.lower().startswith("no ")
        if ing == "noticing":
            return f"I noticed {tail}", False
        if ing == "being":
            return (f"I was {tail}" if " ago" in low else f"I'm {tail}"), False
        if ing not in _ING_ADJECTIVES:
            return (f"I was {rest}" if " ago" in low else f"I've been {rest}"), False
    if is_clause(rest):
        return rest, False
    if eaten := re.match(r"the (?:consumption|ingestion|intake) of (.*)$", rest, re.I):
        return f"I had {eaten.group(1)}", False
    if re.search(r"\bago\b", low):
        return f"I had {rest}", False
    if low.startswith("the "):
        return f"I've noticed {rest}", False  # "reports the recent formation of red bumps"
    return f"I have {rest}", False


def _patient_subject_to_i(text: str) -> str:
    text = re.sub(r"^(?:the patient|patient)\b(?!')", "I", text, flags=re.I)
    text = re.sub(r"^(?:he|she)\b", "I", text, flags=re.I)
    text = re.sub(
        r"^I((?:\s+(?:" + _ADV + r"))*)\s+presents? to (the [\w ]+?) with\b", r"I\1 came to \2 with", text
    )
    text = re.sub(r"^I((?:\s+(?:" + _ADV + r"))*)\s+presents? (with|for)\b", r"I've\1 come in \2", text)
    text = re.sub(r"^I((?:\s+(?:" + _ADV + r"))*)\s+is here\b", r"I'm\1 here", text)
    return text


# Coordinated verbs share the subject: "I take no medications and does not smoke". Only when "I"
# leads the clause: in "the pain worsens when I hold him and is eased", "is" belongs to the pain.
_COORDINATED = re.compile(
    r"((?:^|\bthat\s+|^[^,]*,\s*)I(?:'ve|'m)?\b"
    r"(?:(?!\b(?:which|who|whom|where|when|while|because|although|though)\b)[^;])*?"
    r"\b(?:and|but|or)\s+(?:(?:" + _ADV + r")\s+)*)"
    r"(has|is|does|doesn't|hasn't|takes|drinks|smokes|uses|works|lives|denies|reports|notes|seeks|"
    r"experiences|feels|plays|enjoys|attends|consumes|describes|mentions|admits)\b"
)


def _coordinate(text: str) -> str:
    for _ in range(3):
        text = _COORDINATED.sub(lambda m: m.group(1) + _THIRD_TO_BASE[m.group(2).lower()], text)
    return text


def _first_person_adult(text: str, v: Voice) -> tuple[str, bool]:
    """An adult patient's own sentence in the first person. Returns (answer, negative)."""
    negative = False
    other = _SUBJECT_OTHER.match(text)
    swap = True
    if other and not re.match(r"^(?:the patient|patient|he|she)\b(?!')", text, re.I):
        who = other.group(1).lower()
        # "The patient's mother says she had..." (a woman patient): her she/her are not ours.
        swap = _OTHER_PEOPLE.get(who, "") != v.sex
        text = re.sub(rf"^(?:the patient's |patient's |the )({who})\b", r"my \1", text, flags=re.I)
        text = re.sub(r"^(\w+ \w+|\w+) (reports|notes|mentions|states|adds) that\b", r"\1 says that", text)
        if who in ("mother", "father", "parents"):
            text = re.sub(r"\b(?:her|his|their) (?:daughter|son|child)'s\b", "my", text, flags=re.I)
            text = re.sub(
                r"\b(?:her|his|their) (?:daughter|son|child)\b(?=\s+(?:has|is|was|had|does|seems)\b)",
                "I",
                text,
                flags=re.I,
            )
            text = re.sub(r"\b(?:her|his|their) (?:daughter|son|child)\b", "me", text, flags=re.I)
    elif m := _REPORT.match(text):
        text, negative = _reported(m.group(1), m.group(3), bool(m.group(2)))
    else:
        text = _patient_subject_to_i(text)
    text = re.sub(r"\b(?:the )?patient's\b", "my", text, flags=re.I)
    text = re.sub(rf"({_SUBJECT_SLOT})(?:the )?patient\b(?!')", r"\1I", text, flags=re.I)
    text = re.sub(r"\bthe patient\b", "me", text, flags=re.I)
    text = re.sub(r"\bthe (husband|wife|partner|boyfriend|girlfriend)\b", r"my \1", text, flags=re.I)
    text = re.sub(
        r"\b(towards|to|with|from|by|and) (mother|father|wife|husband|parents)\b", r"\1 my \2", text
    )
    if swap:
        text = patient_pronouns(text, v.sex)
    text = _conjugate_after_i(text)
    return _contract(_coordinate(text)), negative


PARENT_WORDS = r"(?:mother|mom|parents?|father|caregiver)"
# Where a noun is the subject of its clause ("..., though the mother missed..." -> "I missed").
_SUBJECT_SLOT = (
    r"^|,\s+|\b(?:that|and|but|when|because|after|before|until|while|if|though|although|so|since|as|where|"
    r"indicated|showed|shows|found|believes|thinks|knows)\s+"
)
_CHILD_WORDS = r"(?:patient|child|infant|baby|newborn|neonate|boy|girl|toddler)"
_PARENT_REPORT = re.compile(
    rf"^(?:the |his |her )?(?:{_CHILD_WORDS}'s )?({PARENT_WORDS})\s+(?:also\s+)?"
    r"(reports?|notes?|mentions?|says|states?|describes?|recalls?|adds?|explains?)\s+(?:that\s+)?(.*)$",
    re.I,
)


def _first_person_parent(text: str, v: Voice) -> tuple[str, bool]:
    """A sentence about a child, as the parent would say it ("My son has been very fussy")."""
    negative = False
    mother_subject = bool(
        re.match(rf"^(?:the |his |her )?(?:{_CHILD_WORDS}'s )?{PARENT_WORDS}\b", text, re.I)
    )
    # A clause split off "...but notes that he is helpful": the parent is still the one speaking.
    text = re.sub(
        r"^(?:also\s+)?(?:reports?|notes?|mentions?|says|adds)\s+(?:that\s+)?", "", text, flags=re.I
    )
    if m := _PARENT_REPORT.match(text):
        plural = m.group(1).lower().startswith("parent")
        rest = m.group(3)
        if d := re.match(r"(?:him|her) as (.*)$", rest, re.I):
            rest = f"{v.he} is {d.group(1)}"
        if ing := re.match(r"(having|noticing|seeing)\s+(.*)$", rest, re.I):
            lead = {"having": "had", "noticing": "noticed", "seeing": "seen"}[ing.group(1).lower()]
            tail = re.sub(r"^had\s+", "", ing.group(2))
            rest = f"{'we' if plural else 'I'} {'have ' if lead != 'noticed' else ''}{lead} {tail}"
        text = rest
    # The parent: "the mother" -> I / me / my, "the parents" -> we / us / our.
    owner = rf"(?:(?:the|his|her)\s+)?(?:{_CHILD_WORDS}'s\s+)?"
    text = re.sub(rf"\b{owner}(?:mother|mom)'s\b", "my", text, flags=re.I)
    text = re.sub(rf"\b{owner}parents'\s", "our ", text, flags=re.I)
    text = re.sub(rf"({_SUBJECT_SLOT}){owner}(?:mother|mom|parent)\b(?!')", r"\1I", text, flags=re.I)
    text = re.sub(
        rf"({_SUBJECT_SLOT})(?:(?:the|his|her)\s+)(?:{_CHILD_WORDS}'s\s+)?parents\b",
        r"\1we",
        text,
        flags=re.I,
    )
    text = re.sub(r"^parents\b", "we", text, flags=re.I)
    text = re.sub(r"\bto an? [\w\s-]*?\bmother\b", "to me", text, flags=re.I)
    text = re.sub(rf"\b{owner}(?:mother|mom|parent)\b(?!'s)", "me", text, flags=re.I)
    text = re.sub(r"\bwith (?:(?:his|her|the) )?parents\b", "with us", text, flags=re.I)
    text = re.sub(r"\b(?:the|his|her) parents\b", "us", text, flags=re.I)
    # The child: "the patient" / "the infant" -> "my son".
    text = re.sub(rf"\b(?:the|her|his)\s+{_CHILD_WORDS}'s\b", f"{v.noun}'s", text, flags=re.I)
    text = re.sub(rf"\b(?:the|her)\s+{_CHILD_WORDS}\b", v.noun, text, flags=re.I)
    text = re.sub(r"^patient's\b", cap(v.his), text, flags=re.I)
    text = re.sub(r"\bpatient's\b", v.his, text, flags=re.I)
    text = re.sub(r"^patient\b", cap(v.noun), text, flags=re.I)
    text = re.sub(r"\bher (child|son|daughter|baby|infant|newborn)\b", r"my \1", text, flags=re.I)
    # "she"/"her" is the mother when the patient is a boy, or when the mother is the subject.
    if v.parent == "mother" and (v.sex == "male" or mother_subject):
        text = _swap_her(text)
        text = re.sub(r"\b[Ss]he\b", "I", text)
    text = re.sub(
        rf"^{v.noun} (?:is|was|has been) (?:presented|brought)(?: in)? by (me|us)\b"
        r"(?: (?:due to|because of))?",
        lambda m: (
            f"{'I' if m.group(1) == 'me' else 'We'}'ve brought {v.noun} in"
            + (" because of" if len(m.group(0).split()) > 6 else "")
        ),
        text,
        flags=re.I,
    )
    text = re.sub(
        rf"^{v.noun} (?:is|was|has been) brought(?: in)?(?: to the [\w ]+?)? (?:due to|because of)\b",
        f"I've brought {v.noun} in because of",
        text,
        flags=re.I,
    )
    text = re.sub(r"\bbut (?:notes|mentions|says|reports|adds) that\b", "but", text)
    text = re.sub(r"^They\b", "We", text)
    if v.parent == "mother":
        text = re.sub(
            r"(?<!\bhis )(?<!\bher )(?<!\bmy )(?<!\ba )(?<!')\b(?:the )?father\b", f"{v.his} father", text
        )
    text = _conjugate_after_i(text)
    text = re.sub(r"\b[Ww]e (reports|notes|mentions|says)\b", lambda m: f"we {m.group(1)[:-1]}", text)
    if re.match(r"^\s*no\b", text, re.I):
        negative = True
    return _contract(_coordinate(text)), negative


_PAST_VERBS = LANGUAGE.past_verbs


def telegraphic(text: str, v: Voice) -> str | None:
    """A subject-less fragment starting with a verb ("Drinks wine occasionally") -> with a subject."""
    m = re.match(rf"^((?:(?:{_ADV})\s+)*)([A-Za-z']+)\b(.*)$", text, re.I)
    if not m:
        return None
    verb = m.group(2).lower()
    if verb not in _THIRD_TO_BASE and verb not in _PAST_VERBS:
        return None
    if v.child:
        return f"{cap(v.he)} {m.group(1).lower()}{m.group(2).lower()}{m.group(3)}"
    return f"I {m.group(1).lower()}{m.group(2).lower()}{m.group(3)}"


_STATUS_START = re.compile(
    r"^(sexually active|married|single|divorced|widowed|retired|unemployed|up[- ]to[- ]date|allergic|"
    r"otherwise healthy|generally healthy|healthy|a (?:college|high school|university) student|"
    r"(?:college|high school|university) student|student)\b",
    re.I,
)


_DURATION = re.compile(
    r"^(?:I(?:'ve come in with| have| had|'ve had| came in with|'ve been having)|(?:my \w+|he|she) "
    r"(?:has|had|presents with)) "
    r"an? (?:(\d+|one|two|three|four|five|six|several)[- ](day|week|month|year)|(year|month|week)[- ]long)"
    r"[- ]history of (?:experiencing |having )?(.*)$",
    re.I,
)


def _durations(text: str, v: Voice) -> str:
    """ "I have a 3-week history of fatigue" -> "For the past 3 weeks, I've had fatigue"."""
    m = _DURATION.match(text)
    if not m:
        return text
    dur = (
        f"a {m.group(3).lower()}" if m.group(3) else _duration_phrase(m.group(1).lower(), m.group(2).lower())
    )
    who = "I've" if text.startswith("I") else f"{cap(v.he)}'s"
    what = m.group(4)
    verb = "been" if re.match(r"\w+ing\b", what) and what.split()[0] not in _ING_ADJECTIVES else "had"
    return f"For the past {dur.removeprefix('a ')}, {who} {verb} {what}"


def first_person(sentence: str, v: Voice) -> tuple[str, bool]:
    """Best-effort first-person version of one source clause. Returns (answer, negative)."""
    answer, negative = _first_person(sentence, v)
    # Patients do not say "indicative of vertigo": that is the examiner's voice.
    answer = re.sub(r",?\s*(?:indicative of|suggestive of|consistent with|suggesting)\s+[^,.;]*", "", answer)
    return full_stop(cap(_durations(answer.rstrip("."), v))), negative


def _first_person(sentence: str, v: Voice) -> tuple[str, bool]:
    text = clean(sentence).rstrip(".")
    if not text:
        return "", False
    if re.match(r"^(?:the patient is )?(?:a )?non-?smoker\b", text, re.I):
        who = f"{cap(v.he)} doesn't" if v.child else "I don't"
        return full_stop(f"{who} smoke"), True
    if m := re.match(r"^(only |otherwise |previously )?significant for (.*)$", text, re.I):
        subj = f"{cap(v.he)} has" if v.child else "I have"
        text = f"{subj} {(m.group(1) or '').strip().lower()} {m.group(2)}".replace("  ", " ")
        return full_stop(text), False
    if m := re.match(r"^(?:a )?history of (.*)$", text, re.I):
        subj = f"{cap(v.he)} has" if v.child else "I have"
        return full_stop(f"{subj} a history of {m.group(1)}"), False
    if _STATUS_START.match(text) and not v.child:
        lead = "I was" if text.lower().startswith("previously") else "I'm"
        if re.match(r"^(?:retired|(?:college |high school |university )?student)\b", text, re.I):
            lead += " a"
        return full_stop(
            _contract(_conjugate_after_i(patient_pronouns(f"{lead} {lower_first(text)}", v.sex)))
        ), False
    if not _REPORT.match(text):
        tele = telegraphic(text, v)
        if tele is not None:
            text = tele
    if v.child:
        out, neg = _first_person_parent(text, v)
    else:
        out, neg = _first_person_adult(text, v)
    return full_stop(cap(out.strip())), neg
