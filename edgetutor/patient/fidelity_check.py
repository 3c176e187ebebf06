"""An independent second reading of a patient reply: does it say anything the case does not?

This is how reports and tests count violations, so it shares no code with the guard (it imports
neither guard.py nor lexicon.py, nor anything they import from the patient package): a bug in the
guard cannot hide behind the same bug here. Its rules are few, plain and conservative:

- a number (digits or words) that none of the conveyed facts' answers contains;
- a word from its own list of clinical words (symptoms, body parts, medicines, tests, units,
  times) that none of the conveyed facts' answers contains, compared on crude word stems;
- a polarity flip: a reply clause and the fact clause sharing most of its words, one negated and
  the other not;
- repetition: a sentence said twice, or any 5-word sequence said twice;
- the clinician's words (examining, prescribing, advising), or a stock assistant phrase;
- a diagnosis or differential name the answers do not contain;
- out of character (AI, assistant, model, prompt, simulation) or the speaker's own name.

`violations(reply, conveyed_answers, ...)` returns one line per violation (empty: clean).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "hundred": 100, "once": 1, "twice": 2, "dozen": 12, "half": 0.5, "first": 1, "second": 2,
    "third": 3,
}  # fmt: skip

# Written for this module, not copied from the guard's lists.
_CLINICAL = set(
    """
    ache aches aching pain pains painful hurt hurts sore tender cramp cramps burning sting
    fever fevers feverish temperature hot chills shivering sweat sweats sweating cold
    cough coughing sputum phlegm mucus spit blood bloody bleeding bleed bled nosebleed nosebleeds
    vomit vomiting vomited nausea nauseous sick diarrhoea diarrhea stool stools constipated
    urine urinating pee peeing wee thirsty thirst hungry appetite weight thin fat kilos kilo
    headache headaches dizzy dizziness faint fainted collapse collapsed seizure seizures fit fits
    convulsion convulsions jerking confused confusion drowsy sleepy unconscious weak weakness
    tired tiredness fatigue breathless breathing breath wheeze wheezing palpitations
    rash rashes itch itchy swelling swollen lump lumps wound bruise bruises yellow pale jaundice
    numb numbness tingling stiff stiffness blurred blurry vision blind deaf
    head neck chest back belly stomach tummy abdomen arm arms leg legs hand hands foot feet knee
    knees eye eyes ear ears nose mouth throat tongue teeth skin heart lungs lung liver kidney
    kidneys joints joint bones bone muscle muscles hip hips shoulder shoulders spine womb breast
    breasts vagina groin
    tablet tablets pill pills medicine medicines medication syrup injection injections shot shots
    jab jabs drip vaccine vaccines vaccinated antibiotic antibiotics paracetamol panadol aspirin
    ibuprofen amoxicillin insulin metformin coartem quinine artesunate oxytocin misoprostol
    herbs herbal healer hospital clinic operation surgery xray scan test tests result results
    pregnant pregnancy baby labour miscarriage period periods bleeding
    kg mg ml litre litres cm mm km degrees percent cup cups bottle bottles spoon spoons
    minute minutes hour hours day days week weeks month months year years yesterday today
    tonight morning evening night nights recently lately ago since always often sometimes daily
    """.split()
)

_NEGATION = re.compile(
    r"\b(no|not|never|none|nothing|nobody|nor|without|neither|denies|cannot)\b|n't\b", re.IGNORECASE
)
_CLINICIAN = [
    r"\bgive you\b", r"\blet me (examine|check|listen|look|take)\b", r"\bi('ll| will| am going to|'m going to) "
    r"(examine|check|prescribe|give|treat|admit|test)\b", r"\byou (should|need to|must|have to)\b",
    r"\bi (recommend|suggest|advise)\b", r"\byour (diagnosis|results?|tests?)\b", r"\bwe (will|need to)\b",
    r"\btake (this|these)\b",
]  # fmt: skip
_STOCK = [
    r"\bsorry for your loss\b", r"\bsorry to hear\b", r"\bcondolences\b", r"\bhow (can|may) i (help|assist)\b",
    r"\bhappy to help\b", r"\bfeel free\b", r"\blet me know\b", r"\bhope (this|that) helps\b",
    r"\banything else\b", r"\bgreat question\b", r"\bthank you for asking\b", r"\bas an ai\b",
    r"\b(ai|assistant|chatbot|language model|simulation|prompt|openai)\b",
]  # fmt: skip
_CLINICIAN_RE = [re.compile(p) for p in _CLINICIAN]
_STOCK_RE = [re.compile(p) for p in _STOCK]


def _plain(text: str) -> str:
    text = text.lower().replace("’", "'")
    return " ".join(re.sub(r"[^a-z0-9'.]+", " ", text).replace(". ", " ").strip(". ").split())


def _words(text: str) -> list[str]:
    return [w.strip(".'") for w in _plain(text).split() if w.strip(".'")]


def _root(word: str) -> str:
    # Cruder than any stemmer on purpose: five letters decide.
    for end in ("ing", "ed", "es", "s"):
        if word.endswith(end) and len(word) - len(end) >= 3:
            word = word[: -len(end)]
            break
    return word[:5]


def _numbers(text: str) -> set[float]:
    found = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)}
    found |= {float(_NUMBER_WORDS[w]) for w in _words(text) if w in _NUMBER_WORDS}
    return found


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def _clauses(text: str) -> list[str]:
    parts = re.split(r"[;,]|\bbut\b|\band\b|\bso\b|\bthough\b|[.!?]", text.lower())
    return [p.strip() for p in parts if len(p.split()) >= 2]


def violations(
    reply: str,
    conveyed: Iterable[str],
    *,
    diagnosis_names: Iterable[str] = (),
    speaker_names: Iterable[str] = (),
) -> list[str]:
    """What `reply` says beyond the authored answers in `conveyed` (empty list: nothing)."""
    answers = " ".join(conveyed)
    said_words = _words(reply)
    fact_words = set(_words(answers))
    fact_roots = {_root(w) for w in fact_words}
    plain_reply, plain_facts = f" {_plain(reply)} ", f" {_plain(answers)} "
    out: list[str] = []

    extra = _numbers(reply) - _numbers(answers)
    if extra:
        out.append(f"number not in the facts: {', '.join(f'{n:g}' for n in sorted(extra))}")
    new = sorted({w for w in said_words if w in _CLINICAL and _root(w) not in fact_roots})
    if new:
        out.append(f"clinical word not in the facts: {', '.join(new)}")

    fact_clauses = _clauses(answers)
    for clause in _clauses(reply):
        words = set(_words(clause))
        content = {w for w in words if len(w) > 3 and not _NEGATION.fullmatch(w)}
        if not content:
            continue
        # The fact clauses that say much the same (most of this clause's words): the reply
        # clause flips polarity if all of them are of the other polarity.
        close = [
            fc
            for fc in fact_clauses
            if len(content & {w for w in _words(fc) if len(w) > 3}) / len(content) >= 0.6
        ]
        negated = bool(_NEGATION.search(clause))
        if close and all(bool(_NEGATION.search(fc)) != negated for fc in close):
            out.append(f"polarity flipped: {clause!r} against {close[0]!r}")
            break

    sentences = [_plain(s) for s in _sentences(reply)]
    if len(set(sentences)) < len(sentences):
        out.append("a sentence said twice")
    grams = [tuple(said_words[i : i + 5]) for i in range(len(said_words) - 4)]
    fact_list = _words(answers)
    fact_grams = [tuple(fact_list[i : i + 5]) for i in range(len(fact_list) - 4)]
    if any(grams.count(g) > 1 and fact_grams.count(g) < 2 for g in grams):
        out.append("a 5-word sequence said twice")

    for pattern in _CLINICIAN_RE:
        if pattern.search(plain_reply) and not pattern.search(plain_facts):
            out.append(f"the clinician's words: {pattern.pattern}")
            break
    for pattern in _STOCK_RE:
        if pattern.search(plain_reply) and not pattern.search(plain_facts):
            out.append(f"stock or out-of-character phrase: {pattern.pattern}")
            break
    for name in diagnosis_names:
        n = _plain(name)
        if n and f" {n} " in plain_reply and f" {n} " not in plain_facts:
            out.append(f"names a diagnosis: {name}")
            break
    for name in speaker_names:
        for part in _words(name):
            if len(part) > 2 and part in said_words and part not in fact_words:
                out.append(f"the speaker's own name: {part}")
                break
    return out


def case_violations(case: object, reply: str, fact_ids: Iterable[str]) -> list[str]:
    """`violations` for a reply conveying the facts `fact_ids` of `case` (a cases.schema.Case)."""
    c = case  # typed loosely so this module needs nothing from the patient package
    facts = {f.id: f for f in c.facts}  # type: ignore[attr-defined]
    conveyed = [facts[i].answer for i in fact_ids if i in facts]
    dx = c.diagnosis  # type: ignore[attr-defined]
    names = [dx.primary.name, *dx.primary.synonyms]
    for d in dx.differentials:
        names += [d.name, *d.synonyms]
    p = c.patient  # type: ignore[attr-defined]
    speaker = p.informant.name if p.informant else p.name
    return violations(reply, conveyed, diagnosis_names=names, speaker_names=[speaker])
