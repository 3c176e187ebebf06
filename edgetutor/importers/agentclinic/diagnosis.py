"""Diagnosis names and their synonyms: what the patient must never say."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...cases.lint import norm
from .tables import DIAGNOSES
from .text import clean

_KNOWN_SYNONYMS = DIAGNOSES.known_synonyms
_GENERIC_DX_WORDS = DIAGNOSES.generic_words


@dataclass(frozen=True)
class DxNames:
    name: str
    synonyms: tuple[str, ...]
    phrases: tuple[str, ...]  # normalised names and synonyms
    words: tuple[str, ...]  # distinctive single words

    def named_in(self, text: str) -> str | None:
        """The name or word of the diagnosis that `text` mentions, if any."""
        said = f" {norm(text)} "
        squeezed = said.replace(" s ", " ")  # "Hirschsprung's" -> "hirschsprung"
        for phrase in self.phrases:
            if f" {phrase} " in said or f" {phrase} " in squeezed:
                return phrase
        for word in self.words:
            if re.search(rf" {re.escape(word)}s? ", squeezed):
                return word
        return None

    def in_keyword(self, keyword: str) -> bool:
        """Lint refuses a keyword equal to a name; we also drop words taken from a name."""
        kw = norm(keyword)
        return any(kw == p or f" {kw} " in f" {p} " for p in self.phrases)


def diagnosis_names(correct: str) -> DxNames:
    raw = clean(correct)
    synonyms: list[str] = []
    name = raw
    # "Benign Paroxysmal Positional Vertigo (BPPV)": the name, and the bracket as a synonym.
    for inner in re.findall(r"\(([^)]*)\)", raw):
        synonyms.append(inner.strip())
    name = clean(re.sub(r"\s*\([^)]*\)", "", raw)) or raw
    key = norm(name)
    synonyms += _KNOWN_SYNONYMS.get(key, ())
    if "'s " in name:
        synonyms.append(name.replace("'s ", " "))
    for a, b in (("hemo", "haemo"), ("leukemia", "leukaemia"), ("tumor", "tumour"), ("edema", "oedema")):
        if a in name.lower():
            synonyms.append(re.sub(a, b, name, flags=re.I))
    seen = {norm(name)}
    unique = []
    for s in synonyms:
        if s and norm(s) not in seen:
            seen.add(norm(s))
            unique.append(s)
    phrases = tuple(sorted({norm(x) for x in [name, *unique] if norm(x)}, key=lambda p: (-len(p), p)))
    words = sorted(
        {
            w
            for p in phrases
            for w in p.split()
            if len(w) >= 5 and w not in _GENERIC_DX_WORDS and not w.isdigit()
        }
    )
    return DxNames(name=name, synonyms=tuple(unique), phrases=phrases, words=tuple(words))
