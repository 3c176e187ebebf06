"""Check: every sentence of a model's draft must be backed by the facts it was asked to convey.

A draft is accepted only if each of its sentences passes, and the draft as a whole passes too.
Each sentence, clause by clause, must be:
- supported: close in meaning (all-MiniLM-L6-v2 cosine, with the fact sentences' embeddings
  cached per case) to a sentence or clause of a conveyed fact, with the same polarity (negated
  or not); without the encoder, sharing most of its content words with one;
- free of anything the conveyed facts lack: a number, a unit, a time or frequency word, a
  clinical word (symptom, body part, drug, test...), a diagnosis name;
- the patient's own voice: no stock assistant or condolence phrase, no clinician's words
  (examining, prescribing, advising, "I'm going to give you a shot"), no question back, no
  third-person self-reference (the speaker's own name, "the patient"; he/she for a patient
  speaking for themselves), nothing out of character (AI, notes, prompts...);
- new: not a repeat of an earlier sentence.
The draft must not repeat any 4-word sequence (unless the authored answers do), must not be
longer than the authored answers by more than half, and must convey the key content of the best
matched fact: its numbers and time units, and its "no" when it is a pertinent negative.

Every rejection reason reads "<category>: <detail>" (categories in `CATEGORIES`), so reports can
count rejections by reason. `check_sentence` is the same check for one sentence, used while a
reply streams so that nothing reaches the screen before it passes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from ..cases.schema import Case, Fact
from ..language.lexicon import (
    _SINGLE,
    NEGATIONS,
    STOPWORDS,
    SYNONYMS,
    content_terms,
    has_negation,
    normalise,
    numbers_in,
    stem,
    tokens,
)
from .embed import Embedder
from .sentences import answer_units, split_clauses, split_sentences

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

# Time units that, in the best matched fact, are part of what the reply must convey.
KEY_TIME_UNITS = frozenset(
    stem(w)
    for w in "second seconds minute minutes hour hours day days week weeks month months year years ago".split()
)

CATEGORIES = (
    "empty", "repetition", "stock phrase", "breaks character", "clinician speech", "third person",
    "diagnosis", "unsupported", "polarity", "new number", "new unit", "new time word",
    "new clinical word", "too long", "misses key content", "model error",
)  # fmt: skip

# Cosine similarity (all-MiniLM-L6-v2) at which a clause counts as saying what a fact clause
# says: above STRONG on its own, above SUPPORT when it also shares a content word or concept.
# Tuned on the tuning cases' evaluation questions (benchmarks/bench_fidelity.py).
SUPPORT = 0.6
STRONG = 0.8
# Without an encoder: the share of a clause's content terms that one fact unit must contain.
LEXICAL_SUPPORT = 0.6
# A draft may be this many times the authored answers' words, with a floor for short answers.
LENGTH_FACTOR = 1.5
MIN_WORD_LIMIT = 8
# Tokens a model may generate per word allowed (English words are ~1.3-1.6 tokens).
TOKENS_PER_WORD = 2.0
_QUANTITY_QUESTION = re.compile(
    r"\b(how (long|many|much|often|old|far|bad|severe)|when|since when|what time|which day|scale|"
    r"how many times)\b"
)
_YES = re.compile(r"^\s*(yes|yeah|yep|aye)\b")
_PRONOUNS = frozenset("he she him his her hers himself herself".split())


def words() -> dict[str, Any]:
    """The guard's word lists (guard_words.yaml), loaded once."""
    return _words()


@cache
def _words() -> dict[str, Any]:
    from ruamel.yaml import YAML

    text = resources.files(__package__).joinpath("guard_words.yaml").read_text(encoding="utf-8")
    raw = YAML(typ="safe").load(text)
    return {
        "stock": [normalise(p) for p in raw["stock_phrases"]],
        "clinician": [normalise(p) for p in raw["clinician_phrases"]],
        "units": frozenset(stem(w) for w in normalise(raw["units"]).split()),
        "time": frozenset(stem(w) for w in normalise(raw["time_words"]).split()) | VAGUE_QUANTITIES,
        "clinical": CLINICAL | frozenset(stem(w) for w in normalise(raw["clinical_words"]).split()),
    }


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def _terms(text: str) -> set[str]:
    return set(content_terms(text))


_NEGATION_STEMS = frozenset(stem(w) for w in NEGATIONS)


def _content(text: str) -> set[str]:
    """Content words of `text` (stems), without concept tokens or negation words: what a
    clause says, apart from whether it says it or denies it."""
    return {t for t in content_terms(text) if not t.startswith("~") and t not in _NEGATION_STEMS}


def repeated_ngram(text: str, allowed: str = "", n: int = 4) -> str | None:
    """The first n-word sequence said twice in `text` (and not twice in `allowed`), or None."""
    words = tokens(text)
    seen: set[tuple[str, ...]] = set()
    allowed_words = tokens(allowed)
    allowed_grams = [tuple(allowed_words[i : i + n]) for i in range(len(allowed_words) - n + 1)]
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen and allowed_grams.count(gram) < 2:
            return " ".join(gram)
        seen.add(gram)
    return None


@dataclass
class Unit:
    """A sentence or clause of a fact's authored answer: what a draft clause may say."""

    fact: str
    text: str
    negated: bool
    terms: set[str]


@dataclass
class Verdict:
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    # per sentence: its text and the fact clause that supports it (for the turn's record)
    support: list[dict[str, Any]] = field(default_factory=list)

    def as_record(self) -> dict[str, object]:
        return {
            "decision": "accept" if self.accepted else "reject",
            "reasons": self.reasons,
            "support": self.support,
        }

    @property
    def categories(self) -> list[str]:
        return [r.split(":", 1)[0] for r in self.reasons]


class Guard:
    """The checks for one case (built once per encounter). Not thread-safe (caches)."""

    def __init__(self, case: Case, encoder: Embedder | None = None) -> None:
        self.case = case
        self.encoder = encoder
        names = [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]
        for d in case.diagnosis.differentials:
            names += [d.name, *d.synonyms]
        self.diagnosis_names = sorted({normalise(n) for n in names if normalise(n)}, key=len, reverse=True)
        p = case.patient
        speaker = p.informant.name if p.informant else p.name
        # The speaker's own names: a patient who says them speaks of themself in the third person.
        self.own_names = {w for w in tokens(speaker) if len(w) > 2} - {stem(w) for w in STOPWORDS}
        self.informant = p.informant is not None
        self._units: dict[str, list[Unit]] = {}
        self._unit_vectors: dict[str, Any] = {}
        self._vectors: dict[str, Any] = {}  # text -> embedding, for drafts (bounded below)
        self._memo: dict[tuple[Any, ...], tuple[list[str], dict[str, Any]]] = {}
        self._allowed_memo: dict[tuple[str, ...], tuple[set[str], set[str], set[float]]] = {}

    def use_encoder(self, encoder: Embedder | None, known: dict[str, Any] | None = None) -> None:
        """Compare by meaning with `encoder` (None: by shared words). Keeps caches if unchanged.

        `known`: embeddings already computed with this encoder (text -> unit vector), such as
        the fact sentences the retrieval index embeds when an encounter starts.
        """
        if encoder is not self.encoder:
            self.encoder = encoder
            self._unit_vectors.clear()
            self._vectors.clear()
            self._memo.clear()
        if known and encoder is not None:
            for text, vec in known.items():
                self._vectors.setdefault(text, vec)

    # -- limits ----------------------------------------------------------------------------
    @staticmethod
    def word_limit(facts: list[Fact]) -> int:
        """The most words a draft conveying `facts` may have."""
        authored = len(tokens(" ".join(f.answer for f in facts)))
        return max(MIN_WORD_LIMIT, math.ceil(LENGTH_FACTOR * authored))

    def token_limit(self, facts: list[Fact]) -> int:
        """A generation cap tied to the authored length: a looping model stops here."""
        return math.ceil(TOKENS_PER_WORD * self.word_limit(facts)) + 4

    # -- fact units ----------------------------------------------------------------------------
    def units(self, fact: Fact) -> list[Unit]:
        cached = self._units.get(fact.id)
        if cached is None:
            cached = []
            single = len(answer_units(fact.answer)) == 1
            for text in answer_units(fact.answer):
                # A one-clause negative fact is negated even if it is worded without "no".
                negated = has_negation(text) or (fact.negative and single)
                cached.append(Unit(fact.id, text, negated, _terms(text)))
            self._units[fact.id] = cached
        return cached

    def _fact_vectors(self, fact: Fact) -> Any:
        vecs = self._unit_vectors.get(fact.id)
        if vecs is None and self.encoder is not None:
            vecs = self._embed([u.text for u in self.units(fact)])
            self._unit_vectors[fact.id] = vecs
        return vecs

    def _embed(self, texts: list[str]) -> Any:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            assert self.encoder is not None
            if len(self._vectors) > 5000:  # drafts of a very long session; facts come back
                self._vectors.clear()
                self._unit_vectors.clear()
            for text, vec in zip(missing, self.encoder.encode(missing), strict=True):
                self._vectors[text] = vec
        import numpy as np

        return np.stack([self._vectors[t] for t in texts])

    # -- one sentence --------------------------------------------------------------------------
    def check_sentence(
        self, sentence: str, facts: list[Fact], earlier: list[str] | None = None
    ) -> tuple[list[str], dict[str, Any]]:
        """Reasons to reject one sentence of a draft conveying `facts` (empty: it passes), and
        what supports it. `earlier`: the sentences of the same draft before it."""
        # A streamed reply is checked sentence by sentence, then as a whole: the same sentence
        # comes back, and its answer is remembered rather than worked out again.
        key = (sentence, tuple(f.id for f in facts), tuple(earlier or ()))
        known = self._memo.get(key)
        if known is None:
            if len(self._memo) > 2000:
                self._memo.clear()
            known = self._memo[key] = self._check_sentence(sentence, facts, earlier)
        return list(known[0]), dict(known[1])

    def _check_sentence(
        self, sentence: str, facts: list[Fact], earlier: list[str] | None
    ) -> tuple[list[str], dict[str, Any]]:
        reasons: list[str] = []
        said = normalise(sentence)
        authored = " ".join(f.answer for f in facts)
        authored_norm = normalise(authored)
        support: dict[str, Any] = {"sentence": sentence}
        if not said:
            return reasons, support
        earlier = earlier or []
        if any(normalise(e) == said for e in earlier):
            return [f"repetition: says {sentence!r} twice"], support
        words = _words()
        for phrase in words["stock"]:
            if _contains(said, phrase) and not _contains(authored_norm, phrase):
                reasons.append(f"stock phrase: {phrase!r}")
                break
        for pattern in _BREAK:
            if pattern.search(said) and not pattern.search(authored_norm):
                reasons.append(f"breaks character: {pattern.pattern.replace(chr(92) + 'b', '').strip('^')}")
                break
        for phrase in words["clinician"]:
            if _contains(said, phrase) and not _contains(authored_norm, phrase):
                reasons.append(f"clinician speech: {phrase!r}")
                break
        else:
            if sentence.rstrip().endswith("?") and "?" not in authored:
                reasons.append("clinician speech: asks the health worker a question")
            elif self._your_body(said, authored_norm):
                reasons.append(f"clinician speech: {self._your_body(said, authored_norm)!r}")
        reasons += self._third_person(said, authored_norm)
        for name in self.diagnosis_names:
            if _contains(said, name) and not _contains(authored_norm, name):
                reasons.append(f"diagnosis: {name}")
                break
        reasons += self._vocabulary(sentence, facts)
        if reasons:  # rejected already: the meaning check (the encoder) would only cost time
            return reasons, support
        found, where = self._supported(sentence, facts)
        reasons += found
        support.update(where)
        if not found:
            again = self._said_again(sentence, earlier)
            if again:
                reasons.append(f"repetition: {again!r} said again")
        return reasons, support

    @staticmethod
    def _your_body(said: str, authored_norm: str) -> str | None:
        """ "your eyes", "your fever": the clinician talking about the patient."""
        words = said.split()
        clinical = _words()["clinical"]
        for a, b in zip(words, words[1:], strict=False):
            if a == "your" and stem(b) in clinical and not _contains(authored_norm, f"your {b}"):
                return f"your {b}"
        return None

    @staticmethod
    def _said_again(sentence: str, earlier: list[str]) -> str | None:
        """A clause of `sentence` with the same content words and polarity as an earlier clause
        (this sentence's too): how a looping model repeats itself in other words."""
        before = [c for e in earlier for c in split_clauses(e)]
        for clause in split_clauses(sentence):
            content = _content(clause)
            if content:
                for prior in before:
                    prior_content = _content(prior)
                    if content == prior_content and has_negation(clause) == has_negation(prior):
                        return clause
            before.append(clause)
        return None

    def _third_person(self, said: str, authored_norm: str) -> list[str]:
        words = set(said.split())
        allowed = set(authored_norm.split())
        for name in sorted(self.own_names):
            if name in words and name not in allowed:
                return [f"third person: names the speaker ({name})"]
        if _contains(said, "the patient") and not _contains(authored_norm, "the patient"):
            return ["third person: 'the patient'"]
        if not self.informant:
            extra = (words & _PRONOUNS) - allowed
            if extra:
                return [f"third person: {sorted(extra)[0]!r} for the speaker"]
        return []

    def _allowed(self, facts: list[Fact]) -> tuple[set[str], set[str], set[float]]:
        """(stems said in the answers, their content terms and concepts, their numbers).

        Only the authored answers count, not the keywords: keywords are how trainees ask, and a
        keyword such as "hospital" is not something the patient said.
        """
        key = tuple(f.id for f in facts)
        if key not in self._allowed_memo:
            self._allowed_memo[key] = self._allowed_for(facts)
        return self._allowed_memo[key]

    @staticmethod
    def _allowed_for(facts: list[Fact]) -> tuple[set[str], set[str], set[float]]:
        said: set[str] = set()
        terms: set[str] = set()
        numbers: set[float] = set()
        for f in facts:
            said |= {stem(w) for w in tokens(f.answer)}
            terms |= _terms(f.answer)
            numbers |= numbers_in(f.answer)
        return said, terms, numbers

    def _vocabulary(self, sentence: str, facts: list[Fact]) -> list[str]:
        said_stems, answer_terms, allowed_numbers = self._allowed(facts)
        out: list[str] = []
        extra = numbers_in(sentence) - allowed_numbers
        if extra:
            out.append(f"new number: {', '.join(f'{n:g}' for n in sorted(extra))}")
        words = _words()
        for word in tokens(sentence):
            s = stem(word)
            if s in said_stems:
                continue
            if s in words["units"] and not word.isdigit():
                out.append(f"new unit: {word}")
                break
            if s in words["time"]:
                out.append(f"new time word: {word}")
                break
            # A clinical word must be the answers' own word: "wound" for "cut", "headache" for
            # "my head is not paining" change what is said.
            if s in words["clinical"]:
                out.append(f"new clinical word: {word}")
                break
            # Other words of a synonym group (family, work, food, travel...) may be paraphrased
            # within the group the answers use.
            concept = _SINGLE.get(s)
            if concept is not None and s not in STOPWORDS and concept not in answer_terms:
                out.append(f"new clinical word: {word}")
                break
        return out

    def _supported(self, sentence: str, facts: list[Fact]) -> tuple[list[str], dict[str, Any]]:
        units = [u for f in facts for u in self.units(f)]
        fact_negated = any(u.negated for u in units)
        clauses = split_clauses(sentence) or [sentence]
        with_content = [c for c in clauses if _content(c)]
        for clause in clauses:
            if clause in with_content:
                continue
            # "No." / "Yes, nurse.": only its polarity can be wrong.
            if has_negation(clause) and not fact_negated:
                return [f"polarity: {clause!r} says no where the facts do not"], {}
            if _YES.match(normalise(clause)) and facts and self._top_negated(facts[0]):
                return [f"polarity: {clause!r} says yes to a negative fact"], {}
        if not with_content:
            return [], {"fact": facts[0].id if facts else None, "score": None}
        # A clause whose content words all appear in one fact clause of the same polarity is a
        # (near) copy: supported without the encoder, which is the expensive part of the guard.
        pending: list[str] = []
        best: dict[str, Any] = {}
        for clause in with_content:
            negated = has_negation(clause)
            content = _content(clause)
            copied = [u for u in units if u.negated == negated and content <= u.terms]
            if copied:
                if not best:
                    best = {"fact": copied[0].fact, "score": 1.0, "by": copied[0].text}
            else:
                pending.append(clause)
        if not pending:
            return [], best
        sims = None
        if self.encoder is not None:
            import numpy as np

            vecs = self._embed(pending)
            fact_vecs = np.concatenate([self._fact_vectors(f) for f in facts])
            sims = vecs @ fact_vecs.T  # clauses x units
        for i, clause in enumerate(pending):
            negated = has_negation(clause)
            terms = _terms(clause)
            content = _content(clause)
            same_best, other_best, same_unit = -1.0, -1.0, None
            for j, unit in enumerate(units):
                shared = sum(1 for t in content if t in unit.terms) / len(content)
                if sims is not None:
                    score = float(sims[i, j])
                    ok = score >= STRONG or (score >= SUPPORT and bool(terms & unit.terms))
                else:
                    score = shared
                    ok = score >= LEXICAL_SUPPORT
                if unit.negated == negated:
                    if ok and score > same_best:
                        same_best, same_unit = score, unit
                elif ok or shared >= LEXICAL_SUPPORT:
                    # Said with the opposite polarity: by meaning, or by the same words.
                    other_best = max(other_best, score)
            if same_unit is None:
                if other_best >= 0:
                    return [f"polarity: {clause!r} flips what the facts say"], {}
                return [f"unsupported: {clause!r}"], {}
            if not best or same_best < best["score"]:
                best = {"fact": same_unit.fact, "score": round(same_best, 3), "by": same_unit.text}
        return [], best

    @staticmethod
    def _top_negated(fact: Fact) -> bool:
        """The fact's answer opens with a denial ("No, ..."): a reply must say that no too.

        The text decides, not the `negative` flag: a pertinent negative may be worded as a
        positive ("My last period ended two weeks ago and it was normal").
        """
        first = split_sentences(fact.answer)[:1]
        return bool(first) and has_negation(first[0])

    # -- the whole draft -----------------------------------------------------------------------
    def check(self, draft: str, facts: list[Fact], question: str | None = None) -> Verdict:
        """Accept or reject `draft` as the patient's way of saying `facts` (the authored answers).

        `question` (optional) makes the key-content rule ask for every number and time unit of
        the best fact when the question asks how long, how many, when...
        """
        reasons: list[str] = []
        authored = " ".join(f.answer for f in facts)
        sentences = split_sentences(draft)
        if not normalise(draft):
            return Verdict(False, ["empty: nothing said"])
        supports: list[dict[str, Any]] = []
        for i, sentence in enumerate(sentences):
            found, where = self.check_sentence(sentence, facts, sentences[:i])
            reasons += found
            supports.append(where)
        gram = repeated_ngram(draft, authored)
        if gram:
            reasons.append(f"repetition: repeats {gram!r}")
        if len(tokens(draft)) > self.word_limit(facts):
            reasons.append(f"too long: {len(tokens(draft))} words for {len(tokens(authored))} authored")
        if facts:
            reasons += self.key_content(draft, facts[0], question, supports)
        return Verdict(not reasons, list(dict.fromkeys(reasons)), supports)

    def key_content(
        self, draft: str, top: Fact, question: str | None, supports: list[dict[str, Any]]
    ) -> list[str]:
        """What of the best matched fact the draft must say: its numbers, time units and "no"."""
        asked = normalise(question or "")
        # "How long...", "when...", or a question that itself names a number or a time ("born
        # about six hours ago?"): the answer must carry every number and time unit of the fact.
        asks_quantity = bool(
            question
            and (
                _QUANTITY_QUESTION.search(asked)
                or numbers_in(asked)
                or any(stem(w) in KEY_TIME_UNITS for w in asked.split())
            )
        )
        scope = top.answer if asks_quantity else (split_sentences(top.answer) or [top.answer])[0]
        missing: list[str] = []
        said_numbers = numbers_in(draft)
        for n in sorted(numbers_in(scope) - said_numbers):
            missing.append(f"{n:g}")
        said_stems = {stem(w) for w in tokens(draft)}
        for word in tokens(scope):
            s = stem(word)
            if s in KEY_TIME_UNITS and s not in said_stems and word not in missing:
                missing.append(word)
        if self._top_negated(top) and not has_negation(draft):
            missing.append("its 'no'")
        if supports and not any(s.get("fact") == top.id for s in supports) and not missing:
            missing.append(f"anything of {top.id}")
        return [f"misses key content: {', '.join(missing)}"] if missing else []
