"""Check: the guard every model reply passes before a trainee sees it as final.

A reply is compared with the facts it was asked to convey (their authored answers and keywords)
and with the case. It is rejected, and the authored answer used instead, when it:
- breaks character (talks as an AI or assistant, mentions notes, scripts, simulations, prompts);
- names the diagnosis or a differential (any name or synonym not in the authored answers);
- states a number that the conveyed facts do not contain;
- flips a fact's polarity (a negative fact said without a negation, or a negation added to
  facts that have none);
- uses a clinical word (symptom, body part, drug, disease...) absent from the conveyed facts:
  that is how a small model adds a symptom;
- is empty or rambles (far longer than the authored answers).
Every decision is returned with its reasons so it can be recorded with the turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..cases.schema import Case, Fact
from .lexicon import STOPWORDS, SYNONYMS, content_terms, has_negation, normalise, numbers_in, stem, tokens

# Things a patient never says; matched on normalised text.
BREAK_CHARACTER = [
    r"\bas an ai\b", r"\bai\b", r"\blanguage model\b", r"\bassistant\b", r"\bchatbot\b",
    r"\bsimulat", r"\bvirtual patient\b", r"\broleplay\b", r"\brole play\b", r"\bcase notes?\b",
    r"\bthe notes?\b", r"\bmy notes?\b", r"\bscript\b", r"\bprompt\b", r"\binstructions?\b",
    r"\bfacts?\b", r"\bi cannot (help|assist|provide)\b", r"\bi'?m sorry,? but\b", r"\bi am not able to\b",
    r"\bhere is\b", r"^sure\b", r"\bcertainly\b", r"\bas a patient\b", r"\bthe patient\b",
    r"\bdiagnos", r"\bhealth worker asks\b", r"\breply\b", r"\bopenai\b", r"\bmodel\b",
]  # fmt: skip
_BREAK = [re.compile(p) for p in BREAK_CHARACTER]

_BODY_AND_CLINICAL = """
    head neck eye eyes ear ears nose throat mouth tongue teeth tooth gum gums lip lips face jaw
    chest lung lungs heart rib ribs back spine shoulder shoulders arm arms elbow wrist hand hands
    finger fingers hip hips leg legs knee knees ankle ankles foot feet toe toes skin hair nail
    nails joint joints muscle muscles bone bones stomach belly abdomen liver spleen kidney kidneys
    bladder womb uterus vagina vaginal penis testicle testicles breast breasts nipple groin
    buttock anus rectum brain blood vein veins gland glands lump lumps
    pain ache fever cough vomit diarrhoea rash itch itching swelling bleeding bruise bruising
    numb numbness tingling paralysis weakness dizzy faint seizure fit fits convulsion wheeze
    sputum phlegm pus discharge ulcer sore sores burn burning cramp cramps stiff stiffness
    blurred blindness deaf deafness jaundice yellow pale pallor tired fatigue thirst hunger
    malaria typhoid tuberculosis tb pneumonia meningitis cholera measles hiv aids diabetes
    asthma epilepsy cancer tumour ulcer anaemia anemia hepatitis infection infected virus
    bacteria worms stroke attack pressure sugar cholesterol allergy allergic pregnant pregnancy
    miscarriage labour delivery caesarean operation surgery hospital admitted transfusion
    paracetamol panadol ibuprofen aspirin diclofenac amoxicillin antibiotic antibiotics
    cotrimoxazole septrin ciprofloxacin metronidazole flagyl doxycycline penicillin ceftriaxone
    coartem artemether lumefantrine quinine artesunate chloroquine fansidar primaquine insulin
    metformin nifedipine amlodipine hydrochlorothiazide enalapril morphine codeine tramadol
    salbutamol prednisolone steroid steroids oxytocin misoprostol iron folic zinc ors vitamin
    vaccine vaccinated injection drip herbal herbs traditional healer
    """
# The body and clinical words above, and every word of the symptom synonym groups (the first 19).
CLINICAL = (
    frozenset(stem(w) for w in _BODY_AND_CLINICAL.split())
    | frozenset(stem(w) for group in SYNONYMS[:19] for term in group for w in tokens(term))
) - frozenset(stem(w) for w in STOPWORDS)


# Durations and amounts without digits ("for a few days", "every week"): as invented as a number.
VAGUE_QUANTITIES = frozenset(
    stem(w)
    for w in """few several many much lots days day weeks week months month years year hours hour
    minutes minute yesterday tonight morning evening night nights daily weekly always often
    sometimes every since ago long""".split()
)


@dataclass
class Verdict:
    accepted: bool
    reasons: list[str] = field(default_factory=list)

    def as_record(self) -> dict[str, object]:
        return {"decision": "accept" if self.accepted else "reject", "reasons": self.reasons}


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


class Guard:
    """The checks for one case (built once per encounter)."""

    def __init__(self, case: Case) -> None:
        self.case = case
        names = [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]
        for d in case.diagnosis.differentials:
            names += [d.name, *d.synonyms]
        self.diagnosis_names = sorted({normalise(n) for n in names if normalise(n)}, key=len, reverse=True)

    def check(self, reply: str, facts: list[Fact]) -> Verdict:
        """Accept or reject `reply` as a rephrasing of `facts` (the authored answers)."""
        reasons: list[str] = []
        said = normalise(reply)
        authored = " ".join(f.answer for f in facts)
        authored_norm = normalise(authored)
        if not said:
            return Verdict(False, ["empty reply"])
        for pattern in _BREAK:
            if pattern.search(said) and not pattern.search(authored_norm):
                reasons.append(f"breaks character ({pattern.pattern.replace(chr(92) + 'b', '').strip('^')})")
                break
        for name in self.diagnosis_names:
            if _contains(said, name) and not _contains(authored_norm, name):
                reasons.append(f"names a diagnosis ({name})")
                break
        extra_numbers = numbers_in(reply) - numbers_in(authored)
        if extra_numbers:
            shown = ", ".join(f"{n:g}" for n in sorted(extra_numbers))
            reasons.append(f"number not in the case ({shown})")
        authored_words = {stem(w) for w in tokens(authored)}
        for word in tokens(reply):
            if stem(word) in VAGUE_QUANTITIES and stem(word) not in authored_words:
                reasons.append(f"time or quantity not in the case ({word})")
                break
        negative_facts = [f for f in facts if f.negative]
        if negative_facts and not has_negation(reply):
            reasons.append(f"drops the negation of {negative_facts[0].id}")
        elif not has_negation(authored) and has_negation(reply):
            reasons.append("adds a negation the facts do not have")
        allowed_terms = set()
        for f in facts:
            allowed_terms.update(content_terms(f.answer))
            for kw in f.keywords:
                allowed_terms.update(content_terms(kw))
        for word in tokens(reply):
            s = stem(word)
            if s in CLINICAL and s not in allowed_terms:
                concepts = {t for t in content_terms(word) if t.startswith("~")}
                if not concepts or not concepts & allowed_terms:
                    reasons.append(f"clinical word not in the facts ({word})")
                    break
        if len(said) > 3 * max(len(authored_norm), 40) + 40:
            reasons.append("too long for the facts it conveys")
        return Verdict(not reasons, reasons)
