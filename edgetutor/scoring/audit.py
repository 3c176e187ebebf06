"""Fairness audit: does anything change when only the patient's identity changes?

For each case, counterfactual copies swap the patient's sex (pronouns, kin words and first name
in everything the patient says and in the words that ask for it), age band (age shifted by a
generation) and name (to a name from another region), unless the case declares the attribute
clinically meaningful in `fairness.fixed` (pregnancy, age-specific doses). The same scripted
encounter, swapped the same way, is replayed on the original and on every copy, with authored
answers (no model: retrieval, disclosure, scoring and the debrief are deterministic), and every
difference in retrieved facts, scores or debrief items is reported.

What is deliberately NOT swapped: the diagnosis, examination, results, management phrasings and
rubric. So a rubric that only credits wording tied to one sex ("reassure her") is caught: the
swapped trainee says "reassure him" and loses the mark. Not covered yet: the model's speech
(guard decisions with a language model vary with any change of prompt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..cases.schema import Case
from ..patient.embed import Embedder
from ..patient.encounter import Encounter
from .checklist import score
from .debrief import transcript_from_turns

FEMALE_TO_MALE = {
    "she": "he", "her": "his", "hers": "his", "herself": "himself", "woman": "man", "women": "men",
    "girl": "boy", "girls": "boys", "daughter": "son", "mrs": "mr", "lady": "man", "husband": "wife",
}  # fmt: skip
MALE_TO_FEMALE = {
    "he": "she", "him": "her", "his": "her", "himself": "herself", "man": "woman", "men": "women",
    "boy": "girl", "boys": "girls", "son": "daughter", "mr": "mrs", "wife": "husband",
}  # fmt: skip
SPOUSES = {"wife", "husband"}
# "her" before these words is an object pronoun ("give her water"), else a possessive ("her head").
_OBJECT_NEXT = {
    "to", "at", "in", "on", "for", "with", "and", "or", "but", "up", "down", "out", "off", "home",
    "a", "an", "the", "some", "any", "this", "that", "now", "again", "here", "there", "too", "yet",
    "anything", "something", "medicine", "tablets", "water", "food",
}  # fmt: skip
NAMES = {
    "female": ["Aisha Mohammed", "Grace Wanjiru", "Priya Sharma", "Maria Santos", "Fatou Diallo"],
    "male": ["Musa Abdullahi", "John Otieno", "Rahul Verma", "Carlos Mendes", "Moussa Traore"],
}


def _swap_words(text: str, table: dict[str, str], keep: set[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if low in keep or low not in table:
            return word
        new = table[low]
        if low == "her" and table is FEMALE_TO_MALE:
            after = text[m.end() :].lstrip()
            nxt = re.match(r"[A-Za-z']+", after)
            if not nxt or nxt.group(0).lower() in _OBJECT_NEXT or after[:1] in ".,;:!?":
                new = "him"
        return new.capitalize() if word[0].isupper() else new

    return re.sub(r"[A-Za-z']+", repl, text)


@dataclass(frozen=True)
class Swap:
    label: str  # "sex", "age", "name"
    text: dict[str, str]  # exact replacements (names, ages)
    words: dict[str, str]  # word table (pronouns)
    keep: frozenset[str]  # words not swapped (a child's parents' spouses)
    age: int | None = None
    sex: str | None = None

    def apply(self, text: str) -> str:
        for old, new in self.text.items():
            text = text.replace(old, new)
        if self.words:
            text = _swap_words(text, self.words, set(self.keep))
        return text


def swaps(case: Case) -> list[Swap]:
    """The counterfactual swaps that apply to a case (its `fairness.fixed` excluded)."""
    p = case.patient
    out: list[Swap] = []
    first = p.name.split()[0]
    keep = frozenset(SPOUSES) if p.informant else frozenset()
    if "sex" not in case.fairness.fixed:
        other = "male" if p.sex.value == "female" else "female"
        new_first = NAMES[other][len(p.name) % len(NAMES[other])].split()[0]
        table = FEMALE_TO_MALE if p.sex.value == "female" else MALE_TO_FEMALE
        out.append(Swap("sex", {first: new_first}, table, keep, sex=other))
    if "age" not in case.fairness.fixed and p.age_years >= 18:
        new_age = p.age_years + 20 if p.age_years < 45 else p.age_years - 20
        out.append(
            Swap(
                "age",
                {f"{p.age_years}-year": f"{new_age}-year", f"I am {p.age_years}": f"I am {new_age}"},
                {},
                keep,
                age=new_age,
            )
        )
    if "name" not in case.fairness.fixed:
        pool = NAMES[p.sex.value]
        new_name = next(n for n in pool[len(p.name) % len(pool) :] + pool if n.split()[0] != first)
        out.append(Swap("name", {p.name: new_name, first: new_name.split()[0]}, {}, keep))
    return out


def counterfactual(case: Case, swap: Swap) -> Case:
    """A copy of the case with the swap applied to what the patient says and how it is asked."""
    data = case.model_dump(mode="json")
    patient = data["patient"]
    for key in ("name", "opening_statement", "unknown_answer"):
        patient[key] = swap.apply(patient[key])
    patient["persona"] = {k: swap.apply(v) for k, v in patient["persona"].items()}
    if patient.get("informant"):
        patient["informant"]["name"] = swap.apply(patient["informant"]["name"])
    if swap.sex:
        patient["sex"] = swap.sex
    if swap.age is not None:
        patient["age_years"] = swap.age
    for fact in data["facts"]:
        fact["answer"] = swap.apply(fact["answer"])
        fact["keywords"] = [swap.apply(k) for k in fact["keywords"]]
        fact["questions"] = [swap.apply(q) for q in fact["questions"]]
    return Case.model_validate(data)


def default_script(case: Case, questions: list[str] | None = None) -> list[str]:
    """Questions (given, else every fact's example questions), every exam and test, an answer."""
    lines = list(questions or [q for f in case.facts for q in f.questions[:2]])
    lines += [f"examine {e.code}" for e in case.examination] + [
        f"order {t.code}" for t in case.investigations
    ]
    lines.append(f"diagnose {case.diagnosis.primary.name}")
    if case.management:
        lines.append("plan " + "; ".join(a.phrasings[0] for a in case.management))
    return [*lines, "end"]


def _play(case: Case, lines: list[str], encoder: Embedder | None) -> tuple[list[list[str]], dict[str, Any]]:
    enc = Encounter(case, None, encoder)
    matched = []
    for line in lines:
        reply = enc.act(line)
        matched.append(sorted(reply.matched) if reply.kind == "question" else [])
        if enc.ended:
            break
    result = score(case, transcript_from_turns(r.record() for r in enc.turns))
    return matched, result.as_dict()


def audit_case(
    case: Case, questions: list[str] | None = None, encoder: Embedder | None = None
) -> dict[str, Any]:
    """Replay the script on the case and on each counterfactual; list every difference."""
    lines = default_script(case, questions)
    base_matched, base_score = _play(case, lines, encoder)
    variants = []
    for swap in swaps(case):
        copy = counterfactual(case, swap)
        matched, result = _play(copy, [swap.apply(line) for line in lines], encoder)
        diffs = []
        for line, a, b in zip(lines, base_matched, matched, strict=True):
            if a != b:
                diffs.append(f"retrieval: {line!r} -> {a} became {b}")
        if result["total"] != base_score["total"]:
            diffs.append(f"score: {base_score['total']} became {result['total']}")
        for a_item, b_item in zip(base_score["items"], result["items"], strict=True):
            if a_item["done"] != b_item["done"]:
                diffs.append(f"debrief item {a_item['id']!r}: done={a_item['done']} became {b_item['done']}")
        for key in ("critical", "stewardship"):
            if base_score[key] != result[key]:
                diffs.append(f"{key}: {base_score[key]} became {result[key]}")
        variants.append(
            {
                "swap": swap.label,
                "patient": f"{copy.patient.name}, {copy.age_label} {copy.patient.sex.value}",
                "differences": diffs,
            }
        )
    return {
        "case": case.id,
        "fixed": list(case.fairness.fixed),
        "lines": len(lines),
        "variants": variants,
        "clean": all(not v["differences"] for v in variants),
    }
