"""Retrieve: map a trainee's question to the case facts that answer it. Deterministic.

Each fact is indexed by the content terms of its keywords (weight 3), example questions (2) and
authored answer (1), plus concept tokens from the lexicon's synonym groups. A question's terms
are matched against them, misspelt words first corrected to the closest indexed word (1 edit for
words of 4-6 letters, 2 edits from 7), and each shared term scores its field weight times its
inverse document frequency across the case's facts. A question whose best fact scores below
`NONE_THRESHOLD` matches nothing: the patient then gives the case's "don't know" answer rather
than anything invented.

Disclosure rules:
- `volunteered` and `on_question` facts are given to any question that retrieves them;
- `direct_question` facts only when the question names them (one of the fact's own keyword terms
  matches, not just a synonym or an answer word) - a general question does not reveal them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from ..cases.schema import Case, Disclosure, Fact
from .lexicon import STOPWORDS, content_terms, edit_distance, stem, tokens

KEYWORD, QUESTION, ANSWER = 3.0, 2.0, 1.0
# Calibrated on evals/retrieval (see benchmarks/bench_retrieval.py): below it, no fact is given.
NONE_THRESHOLD = 3.0
# Other facts are returned with the best one when they score at least this share of it.
SECOND_FACT_SHARE = 0.8
MAX_FACTS = 3
# How much the question's words that a fact does not cover count against it.
COVERAGE_WEIGHT = 0.5


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

    def __init__(self, case: Case) -> None:
        self.case = case
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

    def search(self, question: str) -> Retrieval:
        text, fixed = self._correct(question)
        terms = set(content_terms(text))
        words = {t for t in terms if not t.startswith("~")}
        unknown_idf = math.log(1 + len(self.weights))
        scored = []
        for i, fact in enumerate(self.case.facts):
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
            if score > 0:
                direct = any(t in self.keyword_terms[i] and not t.startswith("~") for t in terms)
                direct = direct or any(
                    t in self.keyword_terms[i] and self.idf[t] > 1.5 for t in terms if t.startswith("~")
                )
                scored.append(Match(fact, score, direct))
        scored.sort(key=lambda m: (-m.score, m.fact.id))
        if not scored or scored[0].score < NONE_THRESHOLD:
            return Retrieval(question, fixed, [], [])
        top = scored[0].score
        candidates = [m for m in scored if m.score >= max(NONE_THRESHOLD, SECOND_FACT_SHARE * top)][
            :MAX_FACTS
        ]
        given = [m for m in candidates if m.fact.disclosure != Disclosure.direct_question or m.direct]
        withheld = [m for m in candidates if m not in given]
        return Retrieval(question, fixed, given, withheld)
