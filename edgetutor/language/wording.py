"""How the scorer reads free text: tokens, one spelling per word, cue words, typo-tolerant phrases.

The tables (rewrites, qualifiers, negation and history cues, common drugs) are data in
`wording.yaml` next to this file, validated when first used. Shared by diagnosis matching
(`diagnosis.py`), plan reading (`plan.py`) and dose checking (`doses.py`), so all three read a
trainee's words the same way. Typo tolerance is for typos only: a word that is itself a known
word (a qualifier, a negation, a drug or any word of the case's own names) never stands for a
different word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import EdgeTutorError
from .lexicon import edit_distance, normalise

WORDING_FILE = Path(__file__).with_name("wording.yaml")
PUNCT = set(";,.:()/+&-%")
HARD_BOUNDARIES = {";", ".", ":", "\n"}
SOFT_BOUNDARIES = {",", "(", ")"}


class ScoringDataError(EdgeTutorError):
    """A scoring table shipped with EdgeTutor is malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Axis(_Strict):
    axis: str
    values: dict[str, list[str]] = Field(min_length=2)
    unmarked: str | None = None


class _PlanCues(_Strict):
    negation_before: list[str]
    negation_after: list[str]
    history_before: list[str]
    history_after: list[str]
    negative_verbs: list[str]
    positive_verbs: list[str]
    connectors: list[str]
    coordinators: list[str]


class _WordingFile(_Strict):
    rewrite: dict[str, str]
    diagnosis_rewrite: dict[str, str]
    qualifiers: list[_Axis]
    negation_before: list[str]
    negation_after: list[str]
    diagnosis_fillers: list[str]
    contrast_words: list[str]
    plan_cues: _PlanCues
    drugs: list[str]


Phrase = tuple[str, ...]


def words_of(text: str) -> Phrase:
    """Normalised words of a short phrase, with no punctuation (how table entries are compared)."""
    return tuple(normalise(text.replace("-", " ").replace("/", " ").replace("+", " ")).split())


@dataclass(frozen=True)
class Wording:
    rewrite: dict[Phrase, Phrase]
    diagnosis_rewrite: dict[Phrase, Phrase]
    longest_rewrite: int
    # qualifier phrase -> (axis, value)
    qualifier: dict[Phrase, tuple[str, str]]
    unmarked: dict[str, str]
    negation_before: frozenset[Phrase]
    negation_after: frozenset[Phrase]
    fillers: frozenset[Phrase]
    known_words: frozenset[str]
    cues: dict[str, frozenset[Phrase]]
    drugs: frozenset[Phrase]


def _phrases(items: list[str]) -> frozenset[Phrase]:
    return frozenset(p for p in (words_of(i) for i in items) if p)


@lru_cache(maxsize=1)
def wording() -> Wording:
    """The tables in wording.yaml (loaded once, validated)."""
    from ruamel.yaml import YAML

    try:
        raw = YAML(typ="safe").load(WORDING_FILE.read_text(encoding="utf-8"))
        data = _WordingFile.model_validate(raw)
    except (OSError, ValidationError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ScoringDataError(f"{WORDING_FILE.name}: {first}") from err
    rewrite = {words_of(k): words_of(v) for k, v in data.rewrite.items()}
    dx_rewrite = {words_of(k): words_of(v) for k, v in data.diagnosis_rewrite.items()}
    qualifier: dict[Phrase, tuple[str, str]] = {}
    unmarked: dict[str, str] = {}
    for axis in data.qualifiers:
        for value, spellings in axis.values.items():
            for s in spellings:
                qualifier[words_of(s)] = (axis.axis, value)
        if axis.unmarked:
            if axis.unmarked not in axis.values:
                raise ScoringDataError(f"{WORDING_FILE.name}: axis {axis.axis!r}: unmarked is not a value")
            unmarked[axis.axis] = axis.unmarked
    pc = data.plan_cues
    cues = {
        "negation_before": _phrases(pc.negation_before),
        "negation_after": _phrases(pc.negation_after),
        "history_before": _phrases(pc.history_before),
        "history_after": _phrases(pc.history_after),
        "negative_verbs": _phrases(pc.negative_verbs),
        "positive_verbs": _phrases(pc.positive_verbs),
        "connectors": _phrases(pc.connectors),
        "coordinators": frozenset(words_of(c) or (c,) for c in pc.coordinators),
    }
    known = {w for p in qualifier for w in p} | {w for c in data.contrast_words for w in words_of(c)}
    known |= {w for p in _phrases(data.negation_before) | _phrases(data.negation_after) for w in p}
    return Wording(
        rewrite=rewrite,
        diagnosis_rewrite=dx_rewrite,
        longest_rewrite=max(len(k) for k in [*rewrite, *dx_rewrite]),
        qualifier=qualifier,
        unmarked=unmarked,
        negation_before=_phrases(data.negation_before),
        negation_after=_phrases(data.negation_after),
        fillers=_phrases(data.diagnosis_fillers),
        known_words=frozenset(known),
        cues=cues,
        drugs=_phrases(data.drugs),
    )


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+(?:'[a-z]+)*|\n|[;,.:()/+&%-]")


def tokens(text: str) -> list[str]:
    """Words, numbers and the punctuation that matters for scope and doses ("4/7", "x3d", ";")."""
    text = text.lower().replace("’", "'").replace("×", " x ").replace("µg", "mcg").replace("μg", "mcg")
    return _TOKEN.findall(text)


def is_word(tok: str) -> bool:
    return tok not in PUNCT and tok != "\n"


def canonical(toks: list[str], diagnosis: bool = False) -> list[str]:
    """Tokens with every rewrite applied (longest first); punctuation between rewritten words
    ("non-STEMI") is dropped with them."""
    w = wording()
    tables = [w.diagnosis_rewrite, w.rewrite] if diagnosis else [w.rewrite]
    out = list(toks)
    if diagnosis:
        out = [_rewrite_typo(_qualifier_typo(t), tables) for t in out]
    for table in tables:
        i, result = 0, []
        while i < len(out):
            done = False
            if is_word(out[i]):
                for n in range(w.longest_rewrite, 0, -1):
                    idx = _word_run(out, i, n)
                    if idx is None:
                        continue
                    key = tuple(out[k] for k in idx)
                    if key in table:
                        result += list(table[key])
                        i = idx[-1] + 1
                        done = True
                        break
            if not done:
                result.append(out[i])
                i += 1
        out = result
    return out


def _word_run(toks: list[str], start: int, n: int) -> list[int] | None:
    """Indices of n words from start, skipping only joining punctuation ('-', '/') between them."""
    idx: list[int] = []
    i = start
    while i < len(toks) and len(idx) < n:
        t = toks[i]
        if is_word(t):
            idx.append(i)
        elif not idx or not (t in {"-", "/"} or (t == "." and len(toks[idx[-1]]) <= 2)):
            return None  # only "-", "/" and an abbreviation's "." ("P. falciparum") join words
        i += 1
    return idx if len(idx) == n else None


def _qualifier_typo(tok: str) -> str:
    """A misspelt qualifier word ("uncomplicted") as the qualifier; never a real word."""
    w = wording()
    if len(tok) < 5 or not tok.isalpha() or tok in w.known_words:
        return tok
    close = {q[0] for q in w.qualifier if len(q) == 1 and edit_distance(tok, q[0], 1) <= 1}
    return close.pop() if len(close) == 1 else tok


def _rewrite_typo(tok: str, tables: list[dict[Phrase, Phrase]]) -> str:
    """A misspelt word that a rewrite knows ("tuberclosis") as that word, so it is rewritten."""
    w = wording()
    if len(tok) < 5 or not tok.isalpha() or tok in w.known_words or any((tok,) in t for t in tables):
        return tok
    close = {k[0] for table in tables for k in table if len(k) == 1 and k[0] != tok and len(k[0]) >= 5}
    close = {c for c in close if edit_distance(tok, c, typo_limit(c)) <= typo_limit(c)}
    return close.pop() if len(close) == 1 else tok


def typo_limit(word: str) -> int:
    """Edits allowed for a misspelling of `word`: none under 5 letters, 1, or 2 from 10 letters."""
    if len(word) < 5 or not word.isalpha():
        return 0
    return 1 if len(word) < 10 else 2


def same_word(written: str, expected: str, protected: frozenset[str] | set[str]) -> bool:
    """Whether `written` is `expected` or a typo of it. A known word (a qualifier, a negation, a
    listed contrast word or any word in `protected`) is never a typo of another word, and a
    qualifier is only ever itself."""
    if written == expected:
        return True
    w = wording()
    if written in protected or written in w.known_words or (expected,) in w.qualifier:
        return False
    limit = typo_limit(expected)
    return limit > 0 and edit_distance(written, expected, limit) <= limit


def find_phrase(
    words: list[str], phrase: Phrase, protected: frozenset[str] | set[str], start: int = 0
) -> list[int]:
    """Every index (from start) where `phrase` begins in the word list (typo-tolerant)."""
    hits = []
    n = len(phrase)
    for i in range(start, len(words) - n + 1):
        if all(same_word(words[i + k], phrase[k], protected) for k in range(n)):
            hits.append(i)
    return hits


def label_cues(words: list[str], kinds: list[str]) -> list[tuple[frozenset[str], Phrase] | None]:
    """For each word, the cue (its kinds, its words) that starts there, longest first, left to
    right; the other words of a cue are labelled with no kind so they are not read again. A
    phrase can be several kinds of cue ("failed cipro", "cipro failed")."""
    table: dict[Phrase, set[str]] = {}
    w = wording()
    for kind in kinds:
        for phrase in w.cues[kind]:
            table.setdefault(phrase, set()).add(kind)
    longest = max(len(p) for p in table)
    out: list[tuple[frozenset[str], Phrase] | None] = [None] * len(words)
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            key = tuple(words[i : i + n])
            found = table.get(key)
            if found:
                out[i] = (frozenset(found), key)
                for k in range(i + 1, i + n):
                    out[k] = (frozenset(), key)
                i += n
                break
        else:
            i += 1
    return out
