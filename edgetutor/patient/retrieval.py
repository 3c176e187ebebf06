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
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cases.schema import Case, Disclosure, Fact
from .lexicon import STOPWORDS, content_terms, edit_distance, stem, tokens
from .sentences import answer_units

if TYPE_CHECKING:
    import numpy as np

    from .embed import Encoder

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
# Other facts are given with the best one when within this much of its hybrid score.
HYBRID_SECOND = 0.05
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


class FactIndex:
    """The retrieval index of one case. Build once per encounter (a few ms)."""

    def __init__(self, case: Case, encoder: Encoder | None = None) -> None:
        self.case = case
        self.encoder = encoder
        self.weights: list[dict[str, float]] = []
        self.keyword_terms: list[set[str]] = []
        for fact in case.facts:
            w: dict[str, float] = {}
            kw_terms: set[str] = set()
            fields = ((fact.answer,), fact.questions, fact.keywords)
            for weight, texts in zip((ANSWER, QUESTION, KEYWORD), fields, strict=True):
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
        n = len(self.weights)
        self.idf = {term: math.log(1 + n / count) for term, count in df.items()}
        self.vocab = sorted(t for t in df if not t.startswith("~"))
        from .lexicon import _SINGLE

        self._correctable = sorted(set(self.vocab) | set(_SINGLE))
        self._texts: np.ndarray | None = None
        # The fact sentences and clauses the guard compares a draft with, embedded here in the
        # same batch as the index, so that no turn pays for them (text -> unit vector).
        self.unit_vectors: dict[str, np.ndarray] = {}
        if encoder is not None:
            import numpy as np

            texts, owner, asks = [], [], []
            for i, fact in enumerate(case.facts):
                items = [(fact.answer, False), *((q, True) for q in fact.questions)]
                items += [(k, True) for k in fact.keywords] + [(", ".join(fact.keywords), True)]
                for text, is_ask in items:
                    texts.append(text)
                    owner.append(i)
                    asks.append(is_ask)
            units = list(dict.fromkeys(u for f in case.facts for u in answer_units(f.answer)))
            units = [u for u in units if u not in texts]
            vectors = encoder.encode(texts + units)
            self._texts = vectors[: len(texts)]
            self.unit_vectors = dict(zip(texts + units, vectors, strict=True))
            self._owner = np.array(owner)
            self._asks = np.array(asks)

    def _correct(self, question: str) -> tuple[str, dict[str, str]]:
        fixed: dict[str, str] = {}
        words = []
        for word in tokens(question):
            stemmed = stem(word)
            if (
                len(word) >= 4
                and not word.isdigit()
                and word not in STOPWORDS
                and stemmed not in self.idf
                and stemmed not in self._correctable
            ):
                limit = 2 if len(word) >= 7 else 1
                best, best_d = None, limit + 1
                for cand in self._correctable:
                    if abs(len(cand) - len(stemmed)) > limit or cand in STOPWORDS:
                        continue
                    d = min(edit_distance(stemmed, cand, limit), edit_distance(word, cand, limit))
                    if d < best_d:
                        best, best_d = cand, d
                if best is not None:
                    fixed[word] = best
                    words.append(best)
                    continue
            words.append(word)
        return " ".join(words), fixed

    @staticmethod
    def _covered(word: str, hit: set[str]) -> bool:
        """A word counts as matched when its synonym concept matched."""
        return any(c in hit for c in content_terms(word) if c.startswith("~"))

    def lexical(self, question: str) -> tuple[dict[str, str], list[tuple[float, bool]]]:
        """Per fact (in case order): the lexical score and whether the question names the fact."""
        text, fixed = self._correct(question)
        terms = set(content_terms(text))
        words = {t for t in terms if not t.startswith("~")}
        unknown_idf = math.log(1 + len(self.weights))
        out = []
        for i in range(len(self.case.facts)):
            w = self.weights[i]
            hit = {t for t in terms if t in w}
            score = sum(w[t] * self.idf[t] for t in hit)
            # A question about something this fact does not mention ("pain in your EARS" against
            # a headache fact) is discounted by the share of its words the fact leaves unmatched.
            missed = [t for t in words - hit if not self._covered(t, hit)]
            matched_mass = sum(self.idf[t] for t in hit)
            missed_mass = sum(self.idf.get(t, unknown_idf) for t in missed)
            if matched_mass:
                score *= matched_mass / (matched_mass + COVERAGE_WEIGHT * missed_mass)
            direct = any(t in self.keyword_terms[i] and not t.startswith("~") for t in terms)
            direct = direct or any(
                t in self.keyword_terms[i] and self.idf[t] > 1.5 for t in terms if t.startswith("~")
            )
            out.append((score, direct))
        return fixed, out

    def semantic(self, question: str) -> tuple[list[float], list[float]]:
        """Per fact: the best cosine to any of its texts, and to its questions/keywords only."""
        import numpy as np

        assert self.encoder is not None and self._texts is not None
        sims = self._texts @ self.encoder.encode([question])[0]
        n = len(self.case.facts)
        best = np.full(n, -1.0)
        asked = np.full(n, -1.0)
        np.maximum.at(best, self._owner, sims)
        np.maximum.at(asked, self._owner[self._asks], sims[self._asks])
        return best.tolist(), asked.tolist()

    def search(self, question: str) -> Retrieval:
        fixed, lexical = self.lexical(question)
        if self.encoder is None:
            return self._lexical_search(question, fixed, lexical)
        best, asked = self.semantic(question)
        scored = []
        for i, fact in enumerate(self.case.facts):
            lex, direct = lexical[i]
            score = best[i] + LEXICAL_WEIGHT * lex / (lex + LEXICAL_HALF)
            scored.append(Match(fact, score, direct or asked[i] >= DIRECT_SIMILARITY))
        scored.sort(key=lambda m: (-m.score, m.fact.id))
        if scored[0].score < HYBRID_NONE:
            return Retrieval(question, fixed, [], [])
        top = scored[0].score
        candidates = [m for m in scored if m.score >= top - HYBRID_SECOND][:MAX_FACTS]
        return self._disclose(question, fixed, candidates)

    def _lexical_search(
        self, question: str, fixed: dict[str, str], lexical: list[tuple[float, bool]]
    ) -> Retrieval:
        scored = [
            Match(fact, score, direct)
            for fact, (score, direct) in zip(self.case.facts, lexical, strict=True)
            if score > 0
        ]
        scored.sort(key=lambda m: (-m.score, m.fact.id))
        if not scored or scored[0].score < NONE_THRESHOLD:
            return Retrieval(question, fixed, [], [])
        top = scored[0].score
        candidates = [m for m in scored if m.score >= max(NONE_THRESHOLD, SECOND_FACT_SHARE * top)][
            :MAX_FACTS
        ]
        return self._disclose(question, fixed, candidates)

    @staticmethod
    def _disclose(question: str, fixed: dict[str, str], candidates: list[Match]) -> Retrieval:
        given = [m for m in candidates if m.fact.disclosure != Disclosure.direct_question or m.direct]
        withheld = [m for m in candidates if m not in given]
        return Retrieval(question, fixed, given, withheld)
