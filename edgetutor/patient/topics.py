"""Matching a trainee's question to the standard history topics (edgetutor/cases/taxonomy.py).

Lexical always, hybrid with the sentence encoder. The topics' sentence embeddings ship with the
package (`history_topics.npy`, written by scripts/embed_topics.py); if they do not match the
taxonomy and encoder in use, they are computed once and cached on disk (`topic_vectors`), never
at every start.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cases import taxonomy as tax_module
from ..cases.taxonomy import MAIN_COMPLAINT, Taxonomy, Topic, taxonomy
from ..language.lexicon import content_terms, normalise
from ..paths import cache_dir
from .acts import rules
from .retrieval import LEXICAL_HALF, LEXICAL_WEIGHT, Doc, LexicalIndex, SemanticIndex, semantic_texts

if TYPE_CHECKING:
    import numpy as np

    from .embed import Embedder


def topic_docs(tax: Taxonomy) -> list[Doc]:
    """The topics as retrieval docs: the label as what it says, questions, short asks."""
    return [Doc((t.label,), tuple(t.questions), tuple(t.asks)) for t in tax.topics]


# -- matching a question to topics -------------------------------------------------------------


def _cache_dir() -> Path:
    return cache_dir()


# Vectors already computed or read in this process, by cache key: a process builds them once.
_VECTORS: dict[str, np.ndarray] = {}


SHIPPED = "history_topics.npy"  # next to history_topics.yaml: written by scripts/embed_topics.py


def vector_key(tax: Taxonomy, encoder: Embedder) -> str:
    """What a set of topic vectors was computed from: the taxonomy, the encoder, the texts."""
    texts, _, _ = semantic_texts(topic_docs(tax))
    return hashlib.sha256(f"{tax.digest}:{encoder.fingerprint}:{len(texts)}".encode()).hexdigest()[:20]


def _shipped(key: str, rows: int, dim: int) -> np.ndarray | None:
    """The vectors shipped with the package, if they were computed from exactly this taxonomy
    and encoder (its first row holds the key's bytes; anything else is ignored)."""
    import numpy as np

    path = Path(tax_module.__file__).with_name(SHIPPED)
    try:
        data = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if (
        data.shape != (rows + 1, dim)
        or bytes(np.asarray(data[0, :10], dtype=np.float16).tobytes()) != key.encode()[:20]
    ):
        return None
    vecs = np.asarray(data[1:], dtype=np.float32)
    return vecs if np.isfinite(vecs).all() else None


def write_shipped(tax: Taxonomy, encoder: Embedder, path: Path) -> Path:
    """Compute the topic vectors and write them for shipping (float16, the key in row 0)."""
    import numpy as np

    texts, _, _ = semantic_texts(topic_docs(tax))
    vecs = encoder.encode(texts).astype(np.float16)
    head = np.zeros((1, vecs.shape[1]), dtype=np.float16)
    head[0, :10] = np.frombuffer(vector_key(tax, encoder).encode()[:20], dtype=np.float16)
    np.save(path, np.concatenate([head, vecs]), allow_pickle=False)
    return path


def topic_vectors(tax: Taxonomy, encoder: Embedder) -> np.ndarray:
    """The embeddings of every topic text, computed once per taxonomy and encoder, then read
    from a cache file (float16, a few MB). A missing or damaged cache file is rebuilt."""
    import numpy as np

    texts, _, _ = semantic_texts(topic_docs(tax))
    key = vector_key(tax, encoder)
    if key in _VECTORS:
        return _VECTORS[key]
    shipped = _shipped(key, len(texts), encoder.dim)
    if shipped is not None:
        _VECTORS[key] = shipped
        return shipped
    path = _cache_dir() / f"topics-{key}.npy"
    try:
        vecs = np.load(path, allow_pickle=False)
        if vecs.shape == (len(texts), encoder.dim) and np.isfinite(vecs).all():
            _VECTORS[key] = vecs.astype(np.float32)
            return _VECTORS[key]
    except (OSError, ValueError, EOFError):
        pass
    vecs = encoder.encode(texts)
    _VECTORS[key] = vecs
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vecs.astype(np.float16), allow_pickle=False)
        tmp.replace(path)
    except OSError:
        pass  # a read-only or full disk only costs the next start the same encoding time
    return vecs


@dataclass(frozen=True)
class TopicMatch:
    topic: Topic
    score: float
    lexical: float
    semantic: float


class TopicIndex:
    """Matches a question to standard topics: lexical always, hybrid with an encoder.

    Built once per process for each encoder (`topic_index()`); a question is scored in about a
    millisecond (one matrix-vector product and the term lookups).
    """

    def __init__(self, tax: Taxonomy, encoder: Embedder | None = None) -> None:
        self.tax = tax
        self.encoder = encoder
        docs = topic_docs(tax)
        self.lex = LexicalIndex(docs)
        self.sem = SemanticIndex(docs, encoder, topic_vectors(tax, encoder)) if encoder else None
        self._small_talk: np.ndarray | None = None

    def small_talk(self, qvec: np.ndarray) -> float:
        """The best cosine of a question to examples of small talk (acts.yaml: off_topic)."""
        if self.encoder is None:
            return -1.0
        if self._small_talk is None:
            self._small_talk = self.encoder.encode(rules().examples.get("off_topic", []) or ["weather"])
        return float((self._small_talk @ qvec).max())

    def match(self, question: str, qvec: np.ndarray | None = None) -> list[TopicMatch]:
        """Every topic with its score, best first (hybrid scale as in retrieval)."""
        _, lexical = self.lex.scores(question)
        if self.sem is not None and self.encoder is not None:
            if qvec is None:
                qvec = self.encoder.encode([question])[0]
            best, _ = self.sem.scores(qvec)
        else:
            best = [0.0] * len(lexical)
        out = []
        for topic, (lex, _direct), sem in zip(self.tax.topics, lexical, best, strict=True):
            squash = lex / (lex + LEXICAL_HALF)
            score = sem + LEXICAL_WEIGHT * squash if self.sem is not None else lex
            out.append(TopicMatch(topic, score, lex, sem))
        out.sort(key=lambda m: (-m.score, m.topic.id))
        return out


_INDEXES: dict[str, TopicIndex] = {}


def topic_index(encoder: Embedder | None) -> TopicIndex:
    """The shared topic index for this encoder (or none), built on first use."""
    tax = taxonomy()
    key = f"{tax.digest}:{encoder.fingerprint if encoder is not None else 'lexical'}"
    if key not in _INDEXES:
        _INDEXES[key] = TopicIndex(tax, encoder)
    return _INDEXES[key]


def suggest_topics(answer: str, keywords: list[str], questions: list[str], limit: int = 3) -> list[str]:
    """Standard topics a fact probably answers, from its own words (lexical, deterministic): how
    an importer tags facts it did not write. Only clear matches are returned; lint still warns
    about a fact left without topics, for an author to look at."""
    index = topic_index(None)
    text = " ".join([*keywords, *questions, answer])
    _, scores = index.lex.scores(text)
    ranked = sorted(
        (
            (score, topic.id)
            for topic, (score, _direct) in zip(index.tax.topics, scores, strict=True)
            if score > 0
        ),
        key=lambda x: (-x[0], x[1]),
    )
    if not ranked:
        return []
    best = ranked[0][0]
    return [tid for score, tid in ranked[:limit] if score >= max(SUGGEST_MIN, SUGGEST_SHARE * best)]


SUGGEST_MIN = 4.0
SUGGEST_SHARE = 0.6


# The topic a fact of each category answers when its words match none clearly.
CATEGORY_TOPICS = {
    "presenting_complaint": "hpc.main_complaint", "hpi": "hpc.associated", "past_history": "pmh.general_health",
    "medication": "med.current", "allergies": "all.drugs", "family": "fam.health", "social": "soc.household",
    "immunisation": "paed.immunisation", "developmental": "paed.development", "ice": "ice.ideas",
    "systems_review": "hpc.associated", "obstetric": "obs.pregnant_now", "nutrition": "ros.appetite",
}  # fmt: skip


# With the sentence encoder, a fact is tagged as the player matches a question (hybrid score):
# its clear lexical matches whose meaning agrees (semantic >= TAG_LEXICAL_MEANING), then each
# listed part's closest topic, then the whole fact's topics within TAG_MARGIN of its best and above
# TAG_FLOOR. Measured on the demo cases' 287 hand-tagged facts, each tagged again from its answer
# alone (python benchmarks/bench_tagging.py; thresholds chosen on 7 cases, figures for the other
# 6): a right topic among the tags for 88% of facts (words only: 76%), recall 0.58 (0.42),
# precision 0.48 (0.43).
TAG_MARGIN = 0.12
TAG_FLOOR = 0.40
TAG_LEXICAL_MEANING = 0.42
TAG_LIMIT = 4

# A fact that names a relative may be about them ("my brother had the same").
_RELATIVES = re.compile(
    r"\b(family|relatives?|parents|siblings?|brothers?|sisters?|mother|father|mum|mom|dad|uncles?|aunts?"
    r"|cousins?|grand(mother|father|parents?)|son|daughter|children|kids|wife|husband|partner)\b"
)
# Facts about the present illness; any other (past history, medicines, social, family) speaks
# to it only as what was tried for it, an earlier episode or what relieves it.
_ILLNESS_NOW = frozenset({"presenting_complaint", "hpi", "systems_review"})
_HPC_FROM_BACKGROUND = frozenset({"hpc.treatment_tried", "hpc.previous_episodes", "hpc.relieving"})
# A symptom's own timing ("for the past 4 weeks", "2 days ago"; not "40 weeks gestation").
WHEN_TOPICS = ("hpc.onset", "hpc.duration")
_WHEN = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|few|couple of)\s+"
    r"(?:minutes?|hours?|days?|weeks?|months?|years?)\b(?! (?:old|gestation|pregnant|of (?:gestation|pregnancy|age)))"
    r"|\bago\b|\bsince\b|\byesterday\b"
    r"|\b(?:this|last) (?:morning|night|evening|week|month)\b"
)

# Where a fact lists several things ("abdominal pain, diarrhoea and vomiting"), each is matched
# on its own as well: the whole sentence's meaning is dominated by some of them.
_PARTS = re.compile(r"[,;]|\b(?:and|or|but)\b")


def _own_terms(text: str) -> set[str]:
    return {t for t in content_terms(text) if t.isalpha() and len(t) >= 4}


def fact_texts(answer: str, questions: list[str]) -> list[str]:
    """What tag_fact matches by meaning: the fact's questions and answer, then each part of the
    answer when it lists several things."""
    parts = [
        p.strip()
        for p in _PARTS.split(answer)
        if p and _own_terms(p)  # not "I've" alone
    ]
    return [" ".join([*questions, answer]), *(parts if len(parts) > 1 else [])]


def tag_fact(
    category: str,
    answer: str,
    keywords: list[str],
    questions: list[str],
    adult: bool,
    encoder: Embedder | None = None,
    vectors: np.ndarray | None = None,
    complaint: str = "",
) -> list[str]:
    """Topics for an imported fact: its clear matches that suit the patient's age, else its
    category's general topic (empty when neither applies: lint then asks an author to look).
    Matched on its words alone without an encoder; with one, also on its meaning. A family history
    fact gets only family topics, and a fact that names no relative none; only an ICE fact gets
    ideas, concerns and expectations, and only a fact about the present illness its course. A
    presenting complaint is always the main complaint, and its timing, or that of a symptom
    sharing a word with the `complaint`, also answers when "it" started and how long it has lasted
    (WHEN_TOPICS, beyond TAG_LIMIT). `vectors` are the encoder's vectors of `fact_texts()`, when
    the caller encoded many facts at once (much faster than one by one)."""
    tax = taxonomy()
    lexical = suggest_topics(answer, keywords, questions, limit=4)
    if encoder is None:
        found = lexical
    else:
        texts = fact_texts(answer, questions)
        if vectors is None:
            vectors = encoder.encode(texts)
        index = topic_index(encoder)
        whole, *parts = (index.match(text, vec) for text, vec in zip(texts, vectors, strict=True))
        semantic = {m.topic.id: m.semantic for m in whole}
        best = whole[0].score
        # A word match the meaning agrees with first, then each listed part's closest meaning,
        # then the whole fact's closest meanings.
        found = [t for t in lexical if semantic[t] >= TAG_LEXICAL_MEANING]
        found += [p[0].topic.id for p in parts if p[0].semantic >= TAG_LEXICAL_MEANING]
        found += [m.topic.id for m in whole[:8] if m.score >= max(TAG_FLOOR, best - TAG_MARGIN)]
        found = list(dict.fromkeys(found))
    said = normalise(answer)
    family = category == "family"
    relatives = family or bool(_RELATIVES.search(said))
    kept = []
    for tid in found:
        topic = tax.get(tid)
        if topic is None or (topic.section == "paediatric" and adult) or ("adult" in tid and not adult):
            continue
        if tid.startswith("ice.") and category != "ice":
            continue  # what the patient thinks, fears or wants: only a fact that says so
        if tid.startswith("hpc.") and category not in _ILLNESS_NOW and tid not in _HPC_FROM_BACKGROUND:
            continue  # a past illness's severity is not this one's
        if (family and tid.startswith("fam.")) or (not family and (relatives or not tid.startswith("fam."))):
            kept.append(tid)
    if category == "presenting_complaint":
        kept = [MAIN_COMPLAINT, *(t for t in kept if t != MAIN_COMPLAINT)]
    if not kept and category in CATEGORY_TOPICS:
        kept = [CATEGORY_TOPICS[category]]
    kept = kept[:TAG_LIMIT]
    # A symptom's own timing ("for the past 4 weeks", "2 days ago") answers "when did it start?"
    # and "how long?": the two topics are added to what the fact is about.
    about_it = category == "presenting_complaint" or (
        category == "hpi" and (not complaint or bool(_own_terms(complaint) & _own_terms(answer)))
    )
    if about_it and _WHEN.search(said):
        kept += [t for t in WHEN_TOPICS if t not in kept]
    return kept
