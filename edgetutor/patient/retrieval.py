"""Retrieve: map a trainee's question to the case facts that answer it. Deterministic.

Each fact is indexed by the content terms of its keywords (weight 3), example questions (2) and
authored answer (1), plus concept tokens from the lexicon's synonym groups. A question's terms
are matched against them, misspelt words first corrected to the closest indexed word (1 edit for
words of 4-6 letters, 2 edits from 7), and each shared term scores its field weight times its
inverse document frequency across the case's facts. A question whose best fact scores below
`NONE_THRESHOLD` matches nothing: the patient then gives the case's "don't know" answer rather
than anything invented.

With a sentence encoder (`embed.Encoder`, all-MiniLM-L6-v2 in numpy; used whenever its package
is installed) the score becomes hybrid: the best cosine similarity between the question and the
fact's answer, example questions, keywords (each and joined), plus `LEXICAL_WEIGHT` times the
squashed lexical score `s / (s + LEXICAL_HALF)`. Paraphrases ("is anybody next door sick?" for
a neighbour fact) are what the encoder adds. Below `HYBRID_NONE` nothing is given. The threshold
is set low on purpose: a false "none" makes the patient deny something the case says is true,
which is worse than answering with a related true fact (see benchmarks/bench_retrieval.py).

Disclosure rules:
- `volunteered` and `on_question` facts are given to any question that retrieves them;
- `direct_question` facts only when the question names them (one of the fact's own keyword terms
  matches, not just a synonym or an answer word) - a general question does not reveal them.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cases.schema import Case, Disclosure, Fact
from ..language.lexicon import STOPWORDS, content_terms, edit_distance, stem, synonym_words, tokens
from .sentences import answer_units
from .vectors import cached_encode

if TYPE_CHECKING:
    import numpy as np

    from .embed import Embedder

KEYWORD, QUESTION, ANSWER = 3.0, 2.0, 1.0
# Calibrated on evals/retrieval (see benchmarks/bench_retrieval.py): below it, no fact is given.
NONE_THRESHOLD = 3.0
# Other facts are returned with the best one when they score at least this share of it.
SECOND_FACT_SHARE = 0.8
MAX_FACTS = 3
# How much the question's words that a fact does not cover count against it.
COVERAGE_WEIGHT = 0.5
# Hybrid scoring (with an encoder), tuned on evals/retrieval.
LEXICAL_WEIGHT = 0.4
LEXICAL_HALF = 10.0
HYBRID_NONE = 0.4
# Other facts are given with the best one when within this much of its hybrid score: a question
# in several parts ("any cough, or fever?") may need several facts; a question in one part gets
# a second fact only when it scores almost as well (an unasked fact is a leak, and unearned credit).
HYBRID_SECOND = 0.05
HYBRID_SECOND_ONE_PART = 0.015
_SEVERAL_PARTS = re.compile(r"\b(and|or|also|plus|as well as|nor)\b|[,/&;+]")
# Semantic similarity to a fact's own questions or keywords that counts as asking it directly.
DIRECT_SIMILARITY = 0.6


@dataclass(frozen=True)
class Match:
    fact: Fact
    score: float
    direct: bool  # the question used one of the fact's own keyword terms


@dataclass(frozen=True)
class Retrieval:
    question: str
    corrected: dict[str, str]  # misspelt word -> the indexed word it was read as
    matches: list[Match]  # what the patient may say, best first (empty: "don't know")
    withheld: list[Match]  # retrieved, but disclosure rules keep them back

    @property
    def fact_ids(self) -> list[str]:
        return [m.fact.id for m in self.matches]


def _deletions(word: str, depth: int) -> set[str]:
    """The word and every form of it with up to `depth` letters deleted."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


@dataclass(frozen=True)
class Doc:
    """One retrievable thing (a case fact, a standard history topic) as three weighted fields."""

    answer: tuple[str, ...]  # what it says (weight ANSWER)
    questions: tuple[str, ...]  # whole questions that ask for it (weight QUESTION)
    keywords: tuple[str, ...]  # words and short phrases that name it (weight KEYWORD)


class LexicalIndex:
    """Weighted term matching over docs: stems, synonym concepts, idf, typo correction."""

    def __init__(self, docs: list[Doc]) -> None:
        self.weights: list[dict[str, float]] = []
        self.keyword_terms: list[set[str]] = []
        for doc in docs:
            w: dict[str, float] = {}
            kw_terms: set[str] = set()
            for weight, texts in zip(
                (ANSWER, QUESTION, KEYWORD), (doc.answer, doc.questions, doc.keywords), strict=True
            ):
                for text in texts:
                    for term in content_terms(text):
                        w[term] = max(w.get(term, 0.0), weight)
                        if weight == KEYWORD:
                            kw_terms.add(term)
            self.weights.append(w)
            self.keyword_terms.append(kw_terms)
        df: dict[str, int] = defaultdict(int)
        for w in self.weights:
            for term in w:
                df[term] += 1
        n = max(1, len(self.weights))
        self.idf = {term: math.log(1 + n / count) for term, count in df.items()}
        self.vocab = sorted(t for t in df if not t.startswith("~"))
        self._correctable = sorted(set(self.vocab) | synonym_words())
        self._correctable_set = frozenset(self._correctable)
        self._deletes: dict[str, list[str]] | None = None
        self._fixes: dict[str, str | None] = {}

    def _deletes_index(self) -> dict[str, list[str]]:
        """Every indexed word's variants with up to two letters deleted -> the words (SymSpell):
        a misspelt word's own deletions find its candidates without comparing the whole vocabulary."""
        if self._deletes is None:
            index: dict[str, list[str]] = defaultdict(list)
            for cand in self._correctable:
                if cand in STOPWORDS:
                    continue
                for variant in _deletions(cand, 2 if len(cand) >= 6 else 1):
                    index[variant].append(cand)
            self._deletes = index
        return self._deletes

    def _closest(self, word: str, stemmed: str) -> str | None:
        if word in self._fixes:
            return self._fixes[word]
        limit = 2 if len(word) >= 7 else 1
        index = self._deletes_index()
        cands: set[str] = set()
        for form in {word, stemmed}:
            for variant in _deletions(form, limit):
                cands.update(index.get(variant, ()))
        best, best_d = None, limit + 1
        for cand in sorted(cands):
            if abs(len(cand) - len(stemmed)) > limit:
                continue
            d = min(edit_distance(stemmed, cand, limit), edit_distance(word, cand, limit))
            if d < best_d:
                best, best_d = cand, d
        self._fixes[word] = best
        return best

    def correct(self, question: str) -> tuple[str, dict[str, str]]:
        """The question with misspelt words replaced by the closest indexed word."""
        fixed: dict[str, str] = {}
        words = []
        for word in tokens(question):
            stemmed = stem(word)
            if (
                len(word) >= 4
                and not word.isdigit()
                and word not in STOPWORDS
                and stemmed not in self.idf
                and stemmed not in self._correctable_set
            ):
                best = self._closest(word, stemmed)
                if best is not None:
                    fixed[word] = best
                    words.append(best)
                    continue
            words.append(word)
        return " ".join(words), fixed

    def scores(self, question: str) -> tuple[dict[str, str], list[tuple[float, bool]]]:
        """Per doc (in order): the lexical score and whether the question names the doc."""
        text, fixed = self.correct(question)
        # In sorted order: sums of floats then come out the same in every run (a set's order
        # changes with the process's hash seed, and a tie between two docs with it).
        terms = sorted(set(content_terms(text)))
        words = [t for t in terms if not t.startswith("~")]
        # A word counts as matched when its synonym concept matched: each word's concepts, once.
        concepts = {t: [c for c in content_terms(t) if c.startswith("~")] for t in words}
        unknown_idf = math.log(1 + len(self.weights))
        out = []
        for i, w in enumerate(self.weights):
            hit_list = [t for t in terms if t in w]
            score = sum(w[t] * self.idf[t] for t in hit_list)
            matched_mass = sum(self.idf[t] for t in hit_list)
            if matched_mass:
                # A question about something this doc does not mention ("pain in your EARS"
                # against a headache fact) is discounted by the share of its words the doc
                # leaves unmatched.
                hit = set(hit_list)
                missed_mass = sum(
                    self.idf.get(t, unknown_idf)
                    for t in words
                    if t not in hit and not any(c in hit for c in concepts[t])
                )
                score *= matched_mass / (matched_mass + COVERAGE_WEIGHT * missed_mass)
            direct = any(t in self.keyword_terms[i] and not t.startswith("~") for t in terms)
            direct = direct or any(
                t in self.keyword_terms[i] and self.idf[t] > 1.5 for t in terms if t.startswith("~")
            )
            out.append((score, direct))
        return fixed, out


class SemanticIndex:
    """Sentence embeddings of every doc's texts; a question's best cosine per doc."""

    def __init__(self, docs: list[Doc], encoder: Embedder, vectors: np.ndarray | None = None) -> None:
        import numpy as np

        texts, owner, asks = semantic_texts(docs)
        self.encoder = encoder
        self.texts = vectors if vectors is not None else encoder.encode(texts)
        self.owner = np.array(owner)
        self.asks = np.array(asks)
        self.n = len(docs)

    def scores(self, qvec: np.ndarray) -> tuple[list[float], list[float]]:
        """Per doc: the best cosine to any of its texts, and to its questions/keywords only."""
        import numpy as np

        sims = self.texts @ qvec
        best = np.full(self.n, -1.0)
        asked = np.full(self.n, -1.0)
        np.maximum.at(best, self.owner, sims)
        np.maximum.at(asked, self.owner[self.asks], sims[self.asks])
        return best.tolist(), asked.tolist()


def semantic_texts(docs: list[Doc]) -> tuple[list[str], list[int], list[bool]]:
    """The texts embedded for docs, with the doc each belongs to and whether it asks for it."""
    texts, owner, asks = [], [], []
    for i, doc in enumerate(docs):
        items = [(a, False) for a in doc.answer] + [(q, True) for q in doc.questions]
        items += [(k, True) for k in doc.keywords]
        if doc.keywords:
            items.append((", ".join(doc.keywords), True))
        for text, is_ask in items:
            texts.append(text)
            owner.append(i)
            asks.append(is_ask)
    return texts, owner, asks


def fact_doc(fact: Fact) -> Doc:
    return Doc((fact.answer,), tuple(fact.questions), tuple(fact.keywords))


class FactIndex:
    """The retrieval index of one case. Build once per encounter (a few ms)."""

    def __init__(self, case: Case, encoder: Embedder | None = None) -> None:
        self.case = case
        self.encoder = encoder
        docs = [fact_doc(f) for f in case.facts]
        self.lex = LexicalIndex(docs)
        self.sem: SemanticIndex | None = None
        # The fact sentences and clauses the guard compares a draft with, embedded here in the
        # same batch as the index, so that no turn pays for them (text -> unit vector).
        self.unit_vectors: dict[str, np.ndarray] = {}
        if encoder is not None:
            texts, _, _ = semantic_texts(docs)
            units = list(dict.fromkeys(u for f in case.facts for u in answer_units(f.answer)))
            units = [u for u in units if u not in texts]
            vectors = cached_encode(encoder, texts + units, f"facts-{case.id}-v{case.version}")
            self.sem = SemanticIndex(docs, encoder, vectors[: len(texts)])
            self.unit_vectors = dict(zip(texts + units, vectors, strict=True))

    def lexical(self, question: str) -> tuple[dict[str, str], list[tuple[float, bool]]]:
        """Per fact (in case order): the lexical score and whether the question names the fact."""
        return self.lex.scores(question)

    def semantic(self, question: str, qvec: np.ndarray | None = None) -> tuple[list[float], list[float]]:
        """Per fact: the best cosine to any of its texts, and to its questions/keywords only."""
        assert self.encoder is not None and self.sem is not None
        if qvec is None:
            qvec = self.encoder.encode([question])[0]
        return self.sem.scores(qvec)

    def scored(self, question: str, qvec: np.ndarray | None = None) -> tuple[dict[str, str], list[Match]]:
        """Every fact with its score (hybrid with an encoder, else lexical), best first."""
        fixed, lexical = self.lexical(question)
        if self.encoder is None:
            out = [Match(f, s, d) for f, (s, d) in zip(self.case.facts, lexical, strict=True)]
        else:
            best, asked = self.semantic(question, qvec)
            out = []
            for i, fact in enumerate(self.case.facts):
                lex, direct = lexical[i]
                score = best[i] + LEXICAL_WEIGHT * lex / (lex + LEXICAL_HALF)
                out.append(Match(fact, score, direct or asked[i] >= DIRECT_SIMILARITY))
        out.sort(key=lambda m: (-m.score, m.fact.id))
        return fixed, out

    @property
    def none_threshold(self) -> float:
        return HYBRID_NONE if self.encoder is not None else NONE_THRESHOLD

    def search(self, question: str, qvec: np.ndarray | None = None) -> Retrieval:
        """What the patient may say to `question`."""
        fixed, scored = self.scored(question, qvec)
        return self.choose(question, fixed, scored)

    def choose(self, question: str, fixed: dict[str, str], scored: list[Match]) -> Retrieval:
        """What the patient may say, from facts already scored for `question` by `scored()`
        (best first; a caller may have left some out): the best and those close to it, then the
        disclosure rules."""
        if self.encoder is None:
            scored = [m for m in scored if m.score > 0]
            if not scored or scored[0].score < NONE_THRESHOLD:
                return Retrieval(question, fixed, [], [])
            floor = max(NONE_THRESHOLD, SECOND_FACT_SHARE * scored[0].score)
        else:
            if not scored or scored[0].score < HYBRID_NONE:
                return Retrieval(question, fixed, [], [])
            second = HYBRID_SECOND if _SEVERAL_PARTS.search(question.lower()) else HYBRID_SECOND_ONE_PART
            floor = scored[0].score - second
        return self._disclose(question, fixed, [m for m in scored if m.score >= floor][:MAX_FACTS])

    @staticmethod
    def _disclose(question: str, fixed: dict[str, str], candidates: list[Match]) -> Retrieval:
        given = [m for m in candidates if m.fact.disclosure != Disclosure.direct_question or m.direct]
        withheld = [m for m in candidates if m not in given]
        return Retrieval(question, fixed, given, withheld)
