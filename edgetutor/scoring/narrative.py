"""An optional narrative paragraph for the debrief, written by the local model.

It is built only from the itemised result (what was done, missed, and the critical errors) and
checked like the patient's speech: every clinical word and number must come from those items,
and it must not talk as an AI. A rejected paragraph is dropped (with its reason); the itemised
debrief never depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import EdgeTutorError
from ..language.lexicon import content_terms, numbers_in, stem, tokens
from ..patient.guard import BREAK_CHARACTER, CLINICAL
from ..patient.llm import Backend

MAX_TOKENS = 120
MAX_SENTENCES = 3
# Words a tutor's paragraph may use although no checklist item says them. Every other content
# word must come from the itemised result: that is what keeps the model from adding claims
# ("which is a medical emergency") as well as facts.
_TUTOR_WORDS = {
    stem(w)
    for w in """patient case history examination exam test tests diagnosis plan well done good great
    job work keep remember next time try also missed miss forgot forget important asked ask checked
    check make sure practice practise practising practicing improve improvement strong strength area areas point points
    score scored passed pass percent overall careful attention nice excellent effort encounter
    trainee learn learning review thank thanks""".split()
}


def source_text(doc: Mapping[str, Any]) -> str:
    done = [e["item"] for e in doc["checklist"] if e["done"]]
    missed = [e["item"] for e in doc["checklist"] if not e["done"]]
    lines = [
        f"Score: {round(doc['score'] * 100)} percent ({'passed' if doc['passed'] else 'not passed yet'})."
    ]
    lines += [f"Done well: {d}." for d in done[:4]]
    lines += [f"Missed: {m}." for m in missed[:4]]
    lines += [f"Critical error: {c['error']}." for c in doc["critical_errors"]]
    return "\n".join(lines)


def messages(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": "You are a kind clinical tutor. Write two or three short sentences of feedback to a "
            "trainee, using only the points given. Do not add any medical fact, drug, dose or number.",
        },
        {"role": "user", "content": source_text(doc) + "\nFeedback:"},
    ]


def check(text: str, source: str) -> list[str]:
    """Reasons to reject a paragraph (empty: accept)."""
    reasons = []
    said = " ".join(tokens(text))
    if not said:
        return ["empty"]
    if any(re.search(p, said) for p in BREAK_CHARACTER[:6]):
        reasons.append("talks as an AI")
    extra = numbers_in(text) - numbers_in(source)
    if extra:
        reasons.append(f"number not in the result ({', '.join(f'{n:g}' for n in sorted(extra))})")
    allowed = set(content_terms(source)) | _TUTOR_WORDS
    for word in tokens(text):
        terms = content_terms(word)
        if terms and not set(terms) & allowed:
            kind = "clinical word" if stem(word) in CLINICAL else "word"
            reasons.append(f"{kind} not in the result ({word})")
            break
    sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+", text.strip()) if x.strip()]
    if len(sentences) > MAX_SENTENCES:
        reasons.append(f"more than {MAX_SENTENCES} sentences")
    if len(set(sentences)) < len(sentences):
        reasons.append("repeats itself")
    if not text.strip().endswith((".", "!", "?")):
        reasons.append("cut off mid-sentence")
    return reasons


def narrate(backend: Backend, doc: Mapping[str, Any]) -> dict[str, Any]:
    """{'text': paragraph or None, 'draft': model text, 'reasons': why it was dropped}."""
    try:
        draft = "".join(backend.stream(messages(doc), max_tokens=MAX_TOKENS, temperature=0.0)).strip()
    except EdgeTutorError as err:
        return {"text": None, "draft": None, "reasons": [f"model error: {err}"]}
    reasons = check(draft, source_text(doc))
    return {"text": None if reasons else draft, "draft": draft, "reasons": reasons}
