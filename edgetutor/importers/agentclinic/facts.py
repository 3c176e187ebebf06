"""Facts: the categories of the case format, and the builder that turns source sentences and
symptoms into first-person facts, dropping (and reporting) what must not be said."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...cases.lint import norm
from ...cases.schema import slug
from .diagnosis import DxNames
from .negatives import denial_items, negative_answer
from .report import CaseImport
from .sentences import EXAMINER_TERMS, NO_HISTORY, NO_HISTORY_ANY, classify, clauses, keywords_for
from .speech import PARENT_WORDS, first_person, is_clause, patient_pronouns, telegraphic
from .tables import FACTS
from .text import cap, clean, full_stop, lower_first
from .voice import Voice

_CATEGORY_PREFIX = FACTS.category_prefix

_CATEGORY_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "family",
        re.compile(
            r"\bfamily history\b|\bin the family\b|"
            r"\b(?:mother|father|brother|sister|uncle|aunt|grandmother|grandfather|sibling)(?:'s)?\b"
            r"[^.]*\b(?:history of|died|death|diagnosed|similar (?:problems|issues|illness|symptoms)|"
            r"suicide|heart condition|disease|arthritis|psoriasis|cancer|stenosis|chickenpox)\b",
            re.I,
        ),
    ),
    ("allergies", re.compile(r"\ballerg", re.I)),
    ("immunisation", re.compile(r"\bimmuni[sz]|\bvaccin", re.I)),
    ("developmental", re.compile(r"\bmilestones?\b", re.I)),
    (
        "obstetric",
        re.compile(
            r"\bgravida\b|\bpregnan|\bgestation\b.*\b(?:weeks?)\b|\bcesarean\b|\bpostpartum\b|"
            r"\bmenarche\b|\bmenses\b|\bchildbirth\b|\bconceive\b",
            re.I,
        ),
    ),
    (
        "medication",
        re.compile(
            r"\bmedications?\b|\bregimen\b|\btakes\b|\btaking\b|\bprescribed\b|\bcurrently on\b|"
            r"\binhaler\b|\bstarted on\b|\binsulin\b",
            re.I,
        ),
    ),
    (
        "social",
        re.compile(
            r"\bsmok|\bcigarette|\btobacco\b|\bdrug use\b|\bmarijuana\b|\bpack[- ]years?\b|"
            r"\bsexually active\b|\bcondoms?\b|\bworks as\b|"
            r"\blives (?:with|alone)\b|\billicit\b|\bcocaine\b|\balcohol\b|\bbeers?\b|\bwine\b|"
            r"\bincarcerat|\bprison\b|\boccupation\b|\bstudent\b",
            re.I,
        ),
    ),
    (
        "past_history",
        re.compile(
            r"\bhistory of\b|\bdiagnosed\b|\bmedical history\b|\bsurgery\b|\bunderwent\b|"
            r"\bhospitali[sz]",
            re.I,
        ),
    ),
]

_RECATEGORISE = FACTS.recategorise


def category_for(section_category: str, text: str, v: Voice) -> str:
    if section_category not in _RECATEGORISE:
        return section_category
    for cat, rx in _CATEGORY_RULES:
        if rx.search(text):
            if cat == "obstetric" and (v.sex != "female" or v.child):
                continue  # a child's birth history is past history
            if cat == section_category:
                return cat
            if section_category == "social" and cat in ("past_history", "medication"):
                continue
            if (
                section_category == "hpi"
                and cat == "social"
                and not re.search(
                    r"\bsmok|\bcigarette|\bpack[- ]years?\b|\bsexually\b|\bcondoms?\b|\bworks as\b|"
                    r"\blives\b|\billicit\b|\bdrinks?\b|\bdrinking\b|"
                    r"\bcocaine\b|\bincarcerat|\bprison\b|\bdrinks\b",
                    text,
                    re.I,
                )
            ):
                continue
            if section_category == "past_history" and cat == "social" and "," in text:
                continue  # "Obesity, type II diabetes, smoking history": a list of conditions
            if (
                section_category == "hpi"
                and cat in ("medication", "obstetric")
                and not re.search(
                    r"\bmedications?\b|\bregimen\b|\bgravida\b|\btakes\b|\bcurrently (?:on|taking)\b|"
                    r"\bhas been on\b",
                    text,
                    re.I,
                )
            ):
                continue
            if (
                section_category in ("hpi", "systems_review")
                and cat == "past_history"
                and not re.search(
                    r"\bmedical history\b|\bdiagnosed\b|\bsurgery\b|\bunderwent\b|\bhospitali|"
                    r"\b(?:has|had|have) an? (?:significant |long |known )?history of\b",
                    text,
                    re.I,
                )
            ):
                continue
            return cat
    return section_category


@dataclass
class DraftFact:
    category: str
    answer: str
    source: str
    keywords: list[str]
    negative: bool = False
    volunteered: bool = False
    critical: bool = False
    section: str = ""
    # What the leak check reads: the denied item itself, not the whole "denies X, Y or Z" clause.
    checked: str = ""


_SIGN = re.compile(
    r"\b(reflex(?:es)?|murmur|conjunctiva|icterus|hypotension|tachypnea|tachycardia|fasciculations?|rigidity|"
    r"blunted affect|affect\b|palpation|retractions|nasal flaring|grunting|upon examination|during exam|"
    r"noticed upon|screening tests?|umbilication|violaceous|vesiculopustular|maculopapular|mucositis|"
    rf"asterixis|{EXAMINER_TERMS}|"
    r"not oriented|psychomotor|disorganized speech|delusions?|perceptual|excoriations|sparing of|"
    r"hypopigmented macules|apathy|pedal edema|tortuous veins|extended .* resting position|"
    r"flexed, adducted|hand grip|ability to move)\b",
    re.I,
)
_GERUNDS = FACTS.gerunds
# The examiner's framing ("Upon further questioning, the mother recalls that..."): not said.
_ASKED = re.compile(
    r"^\s*(?:upon|on|when|after)\s+(?:further |direct |specific |more |detailed )?"
    r"(?:questioning|inquiry|enquiry|asked|being asked|review|prompting)(?: of systems)?\s*,\s*",
    re.I,
)
# How many secondary symptoms a patient offers to "anything else?" before "that's all".
OFFERED_SYMPTOMS = 2
_SIGN_PRIMARY = re.compile(r"\b(murmur|blood pressure|reflex|papules|maculopapular|umbilication)\b", re.I)


class FactBuilder:
    """Collects facts for one case, dropping and reporting what must not be said."""

    def __init__(self, dx: DxNames, v: Voice, info: CaseImport) -> None:
        self.dx = dx
        self.v = v
        self.info = info
        self.facts: list[DraftFact] = []
        self._answers: set[str] = set()
        self._general_negative = False
        self._offered = 0  # secondary symptoms the patient offers when invited ("anything else?")

    def _leak(self, *texts: str) -> str | None:
        for t in texts:
            if hit := self.dx.named_in(t):
                return hit
        return None

    def add(self, draft: DraftFact) -> bool:
        """Keep `draft` unless it is empty, names the diagnosis or repeats a fact: True if kept."""
        if not draft.answer:
            return False
        if hit := self._leak(draft.checked or draft.source, draft.answer):
            self.info.dropped_diagnosis.append(f"{draft.source!r} (mentions {hit!r})")
            return False
        key = norm(draft.answer)
        if key in self._answers:
            return False
        if not draft.keywords:
            draft.keywords = keywords_for(draft.category.replace("_", " "), self.dx) or ["anything else"]
        self._answers.add(key)
        self.facts.append(draft)
        return True

    def general_negative(self, source: str, section: str) -> None:
        if self._general_negative:
            return
        self._general_negative = True
        answer = (
            "No, nothing else has been bothering me."
            if not self.v.child
            else (f"No, nothing else that I've noticed in {self.v.him}.")
        )
        kws = ["anything else", "other symptoms", "any other problems", "everything else", "other complaints"]
        self.add(DraftFact("systems_review", answer, source, kws, negative=True, section=section))

    def sentence(self, sentence: str, section_category: str, section: str) -> None:
        sentence = _ASKED.sub("", sentence)
        if (
            section_category == "past_history"
            and NO_HISTORY_ANY.search(sentence)
            and not re.search(r"\b(?:except|other than|apart from|aside from|but)\b", sentence, re.I)
        ):
            self._no_history(sentence, section)  # "No significant past medical history provided."
            return
        kind = classify(sentence, self.v.child)
        if kind == "placeholder":
            self.info.dropped_placeholder.append(f"{section}: {sentence!r}")
            return
        if kind == "observation":
            self.info.dropped_observation.append(f"{section}: {sentence!r}")
            return
        if kind == "general_negative":
            self.general_negative(sentence, section)
            return
        if section_category == "past_history" and NO_HISTORY.match(clean(sentence)):
            self._no_history(sentence, section)
            return
        for clause in clauses(sentence):
            self.clause(clause, sentence, section_category, section)

    def _no_history(self, source: str, section: str) -> None:
        if self.v.child:
            answer = f"No, {self.v.he} has been healthy. Nothing serious before this."
        else:
            answer = "No, I've been healthy. I don't have any medical problems."
        kws = [
            "medical history",
            "past illnesses",
            "medical problems",
            "chronic illness",
            "hospital",
            "operations",
            "surgery",
            "health problems",
        ]
        self.add(DraftFact("past_history", answer, source, kws, negative=True, section=section))

    def clause(self, clause: str, source: str, section_category: str, section: str) -> None:
        kind = classify(clause, self.v.child)
        if kind == "placeholder":
            self.info.dropped_placeholder.append(f"{section}: {clause!r}")
            return
        if kind == "general_negative" or re.search(
            r"\bany other (?:\w+ )?(?:symptoms|complaints)\b", clause, re.I
        ):
            self.general_negative(clause, section)
            return
        if NO_HISTORY_ANY.search(clause) and not re.search(
            r"\b(?:except|other than|apart from|aside from|but)\b", clause, re.I
        ):
            self._no_history(clause, section)
            return
        cat = category_for(section_category, clause, self.v)
        # "No recent antibiotics apart from levofloxacin, no vomiting": the exception is a positive
        # fact ("Only levofloxacin"); the other items stay denials.
        ex = re.match(
            r"^(.*?),?\s+(?:apart from|except for|except|other than|aside from)\s+([^,]*)(?:,\s*(.*))?$",
            clause,
            re.I,
        )
        if ex and denial_items(ex.group(1)) is not None:
            kept = re.sub(r"^(?:noted|known|the)\s+", "", ex.group(2)).strip()
            if not self.v.child:
                kept = patient_pronouns(kept, self.v.sex)
            before = denial_items(ex.group(1)) or []
            if not NO_HISTORY_ANY.search(ex.group(1)) and len(before) > 1:
                self.clause(", ".join(["No " + before[0], *before[1:-1]]), source, section_category, section)
            self.add(
                DraftFact(
                    category_for(section_category, kept, self.v),
                    full_stop(f"Only {kept}"),
                    clause,
                    keywords_for(f"{before[-1] if before else ''} {kept}", self.dx),
                    section=section,
                    checked=kept,
                )
            )
            if ex.group(3):
                self.clause(f"No {ex.group(3)}", source, section_category, section)
            return
        items = denial_items(clause)
        if items is not None and not re.match(r"^no\s+(?:longer|change)\b", clause, re.I):
            for item in items:
                if re.match(
                    r"^(?:other|additional|further)\s+(?:\w+\s+)?(?:symptoms|complaints|problems|issues)\b",
                    item,
                    re.I,
                ):
                    self.general_negative(clause, section)
                    continue
                if re.search(
                    r"^(?:normal|regular|good|otherwise|healthy)\b|\bup[- ]to[- ]date\b|\bappropriate\b",
                    item,
                    re.I,
                ):
                    answer, _ = first_person(item, self.v)  # "no known allergies, normal birth history"
                    self.add(
                        DraftFact(
                            category_for(section_category, item, self.v),
                            answer,
                            clause,
                            keywords_for(item, self.dx),
                            section=section,
                        )
                    )
                    continue
                answer = negative_answer(item, self.v)
                cat_item = category_for(section_category, item, self.v)
                kws = keywords_for(item, self.dx)
                self.add(
                    DraftFact(cat_item, answer, clause, kws, negative=True, section=section, checked=item)
                )
            return
        answer, negative = first_person(clause, self.v)
        kws = keywords_for(clause, self.dx)
        self.add(DraftFact(cat, answer, clause, kws, negative=negative, section=section))

    def medications(self, items: list[str], section: str) -> None:
        names = [lower_first(clean(str(x))) for x in items if clean(str(x))]
        if not names:
            return
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        subj = f"{cap(self.v.he)} takes" if self.v.child else "I take"
        answer = f"{subj} {listed}."
        kws = ["medications", "medicines", "tablets", "drugs", "pills", *[n.lower() for n in names]]
        self.add(
            DraftFact(
                "medication", answer, "; ".join(names), keywords_for("", self.dx, kws, 16), section=section
            )
        )

    def symptom(self, text: str, primary: bool) -> None:
        t = clean(text).rstrip(".")
        if not t:
            return
        v = self.v
        section = "Primary_Symptom" if primary else "Secondary_Symptoms"
        if primary:
            if _SIGN_PRIMARY.search(t):
                told = re.search(r"murmur|pressure|reflex", t, re.I)
                answer = (
                    f"The doctors told me about {lower_first(t)}." if told else f"I noticed {lower_first(t)}."
                )
            elif m := re.match(rf"^({PARENT_WORDS})\s+reports?\s+(.*)$", t, re.I):
                answer = f"My {m.group(1).lower()} is worried about {m.group(2)}."
            else:
                answer = (
                    f"My main problem is {lower_first(t)}."
                    if not v.child
                    else f"My main worry is {lower_first(t)}."
                )
            kws = keywords_for(t, self.dx)
            self.add(
                DraftFact(
                    "presenting_complaint", answer, t, kws, volunteered=True, critical=True, section=section
                )
            )
            return
        if _SIGN.search(t):
            self.info.dropped_signs.append(repr(t))
            return
        low = t.lower()
        if re.fullmatch(r"(?:sudden|acute|gradual|insidious)(?:[- ]onset)?|onset", low):
            self.info.dropped_placeholder.append(f"{section}: {t!r} (describes the onset only)")
            return
        if m := re.match(r"^not (\w+)$", low):
            answer = f"No, it isn't {m.group(1)}."
            self.add(DraftFact("hpi", answer, t, keywords_for(t, self.dx), negative=True, section=section))
            return
        if items := (denial_items(t) if re.match(r"^(no|without|denies)\b", low) else None):
            for item in items:
                self.add(
                    DraftFact(
                        category_for("hpi", item, v),
                        negative_answer(item, v),
                        t,
                        keywords_for(item, self.dx),
                        negative=True,
                        section=section,
                    )
                )
            return
        cat = category_for("hpi", t, v)
        if re.match(r"^(?:mother|father|brother|sister|uncle|aunt|sibling|grandmother|grandfather)\b", low):
            answer = f"{cap(v.his) if v.child else 'My'} {t[:1].lower()}{t[1:]}."
            cat = "family"
        elif telegraphic(t, v) is not None:
            answer = first_person(t, v)[0]
        elif m := re.match(r"^(unaware|aware|unable|unsure|worried|concerned)\b(.*)$", low):
            answer = f"{cap(v.he)} is {lower_first(t)}." if v.child else f"I'm {lower_first(t)}."
        elif re.match(r"^(?:exclusively )?(?:breast|bottle)[- ]?fed\b", low):
            answer = f"{cap(v.he)} is {lower_first(t)}."
        elif m := re.match(r"^(?:family|familial) history of (.*)$", t, re.I):
            answer = f"There is a family history of {m.group(1)}."
            cat = "family"
        elif re.match(r"^(?:worse|better)\b", low):
            answer = f"It's {lower_first(t)}."
        elif m := re.match(r"^history of (.*)$", t, re.I):
            answer = f"{cap(v.he)} has had {m.group(1)}." if v.child else f"I've had {m.group(1)}."
        elif is_clause(t) or re.match(r"^(?:mother|father|patient|parents?)\b", low):
            answer = first_person(t, v)[0]
        elif (m := re.match(r"^(\w+ing)\b", low)) and m.group(1) in _GERUNDS:
            answer = (
                f"{cap(v.he)} has also been {lower_first(t)}."
                if v.child
                else f"I've also been {lower_first(t)}."
            )
        else:
            answer = (
                f"{cap(v.he)} has also had {lower_first(t)}."
                if v.child
                else f"I've also had {lower_first(t)}."
            )
        # Asked "anything else?", the patient names the first secondary symptoms of the source
        # (an open invitation earns no history credit; a question about each still does).
        offered = cat == "hpi" and not primary and self._offered < OFFERED_SYMPTOMS
        if self.add(
            DraftFact(cat, answer, t, keywords_for(t, self.dx), volunteered=offered, section=section)
        ):
            self._offered += offered


def guess_section_category(key: str) -> str | None:
    k = key.lower()
    for word, cat in FACTS.section_category_guesses:
        if word in k:
            return cat
    return None


def finish_facts(drafts: list[DraftFact]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ids: set[str] = set()
    for d in drafts:
        base_words = d.keywords[0] if d.keywords else d.category
        base = f"{_CATEGORY_PREFIX[d.category]}-{slug(base_words)}"[:50].rstrip("-")
        fid, n = base, 2
        while fid in ids:
            fid, n = f"{base}-{n}", n + 1
        ids.add(fid)
        fact: dict[str, Any] = {
            "id": fid,
            "category": d.category,
            "answer": d.answer,
            "keywords": d.keywords,
            "disclosure": "volunteered" if d.volunteered else "on_question",
        }
        if d.critical:
            fact["critical"] = True
        if d.negative:
            fact["negative"] = True
        fact["_source"] = d.source  # removed below; used for rubric descriptions
        out.append(fact)
    return out
