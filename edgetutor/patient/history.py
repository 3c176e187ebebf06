"""Answering a history question: the case's facts first, the standard taxonomy's defaults for the rest.

A question is matched both to the case's facts (`retrieval.FactIndex`) and to the standard history
topics (`taxonomy.TopicIndex`), on the same hybrid scale. Then:
- the best topic is one the case's facts answer (a fact is tagged with it): those facts;
- a fact matches better than any topic, or agrees with the best topics: that fact (the old path,
  with its disclosure rules);
- the best topics are ones the case does not cover: their default answers, in the case's voice
  ("No, my eyes are a normal colour"), never another fact's answer;
- nothing matches: the case's "don't know" answer, or polite confusion when the words are not
  about health at all.
Facts given here count as asked for the checklist; so do the topics asked (whatever the answer).
The model never speaks a default answer: it is authored text for a person without the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cases.schema import Case, Disclosure, Fact
from ..cases.taxonomy import MAIN_COMPLAINT, applies, covered_topics, default_answer
from ..language.lexicon import content_terms, normalise
from .retrieval import FactIndex
from .topics import topic_index

if TYPE_CHECKING:
    from .embed import Embedder

# Hybrid scores (cosine + lexical share), calibrated on evals/conversation (bench_conversation.py).
TOPIC_MIN = 0.62  # below it, no topic was asked
TOPIC_SECOND = 0.03  # other topics answered with the best one when this close to it
TOPIC_DIRECT = 0.72  # a topic asked this squarely reveals its direct_question facts
FACT_MARGIN = 0.04  # a fact beats the best topic by this much: the fact was asked
MAX_TOPICS = 3
TOPIC_NEAR = 0.25  # topics this close to the best one count as what the question is about
FACT_SLACK = 0.15  # a fact about one of those topics wins when this close to the best topic
FACT_STRONG = 0.85  # ... and when it matches strongly on its own
FACT_ALONE = 0.55  # a fact no standard topic supports must match at least this well
# The same decisions on lexical scores, when no sentence encoder is installed.
LEX_TOPIC_MIN = 6.0
LEX_TOPIC_SECOND = 0.15  # as a share of the best score
LEX_FACT_MARGIN = 1.0


# Opening questions that ask for the presenting complaint in any words.
MAIN_COMPLAINT_QUESTION = re.compile(
    r"\b(what('s| is| has)? (brings|brought|bringing|made) (you|u|him|her|the (baby|child|boy|girl)|your \w+)( here| in| to (the )?(clinic|hospital|us))?( today)?"
    r"|(what|whats)( is|'s| s|s| seems to be)? (the|your) (problem|matter|trouble|complaint|main problem)"
    r"( with (you|u|him|her|the (baby|child|boy|girl|patient)|your \w+|ur \w+))?( today)?\s*$"
    r"|what (problem|complaint|illness|sickness|trouble) (has brought|brings|brought|is bringing)"
    r"|how can (i|we) help( you)?( today)?\s*$|what can (i|we) do for (you|u)"
    r"|what (is|s) wrong( with (you|him|her|the (baby|child)))?( today)?\s*$|why (have|did) (you|u) come"
    r"|what (is|s) (bothering|troubling|disturbing) (you|u|him|her)( today)?\s*$|tell me what happened"
    r"|what (are|r) (your|the) (complaints|problems)|what (is|s) going on|reason for (your )?(visit|coming)"
    r"|how (are|r) (you|u) feeling( today)?\s*$|what happened( to (him|her|the (baby|child)|you))?( today)?\s*$)"
)


# A question about somebody else ("anyone else at home sick?", "are the kids coughing too?"):
# answered from the family, household and contact topics, not with the patient's own symptom.
OTHER_PEOPLE = re.compile(
    r"\b(any ?one|any ?body|some ?one|some ?body|who|no ?one|nobody|people) else\b"
    r"|\b(any ?one|any ?body|some ?one|some ?body|people|others|other (children|kids|people|ones|persons|members|family members))"
    r"( \w+){0,2} (in|at|from|around|near) (the |your |ur |his |her )?"
    r"(house|home|family|compound|household|village|school|neighbou?rhood|area|community|class|workplace)\b"
    r"|\bany (other|of the|of your|of his|of her) (child|children|kids?|people|persons?|ones?|family|members?|siblings|"
    r"brothers|sisters|neighbou?rs|students|classmates|workers|friends)\b"
    r"|\b(other|the|your|ur|his|her) (other )?(kids|children|siblings|brothers?|sisters?|neighbou?rs|family members|"
    r"husband|wife|spouse|partner|twin|classmates|friends|co ?workers|colleagues|people)\b"
    r".*\b(too|also|as well|same|similar|sick|ill|unwell|well)\b"
)
# "Does anyone at home smoke?", "who gave him the medicine?": about the household's habits or
# errands, not about somebody else being ill.
_NOT_ABOUT_ILLNESS = re.compile(
    r"\b(smok\w*|cook\w*|drink\w* alcohol|beer|pay|money|bring|brought|give|gave|given)\b"
)
_PEOPLE_TOPICS = frozenset(
    {
        "env.sick_contacts",
        "env.outbreak",
        "env.tb_contact",
        "soc.household",
        "paed.siblings",
        "soc.dependents",
    }
)


def _about_people(topic_id: str) -> bool:
    return topic_id.startswith("fam.") or topic_id in _PEOPLE_TOPICS


# A question about the time before this illness ("has she had loose motions like this before?",
# "any illness in the past?"): answered from past episodes and past history, not the symptom now.
EARLIER = re.compile(
    r"\b(like this|like that|the same|similar|this|that|it|such|these|those)( \w+){0,2} before\b"
    r"|\b(happened|happen|had|been|come|came) (\w+ )?before\b|\bin the past\b(?! (few|couple|several|one|two|three|four|five|six|\d+|days?|weeks?|months?|year))|\bprevious (episodes?|attacks?|times?)\b"
    r"|\b(is|was) (this|it) the first (time|episode)\b|\bfirst time\b.*\b(this|like this|ever)\b"
)


# "What happened before the diarrhoea started?" asks about the days just before this illness.
_BEFORE_IT_STARTED = re.compile(
    r"\bbefore (the|this|it|that|he|she|you|u|they|all)( \w+){0,3} (start\w*|began|begun|begin\w*|came|come)\b"
)


def _about_earlier(topic_id: str) -> bool:
    return topic_id.startswith(("pmh.", "obs.")) or topic_id in (
        "hpc.previous_episodes",
        "hpc.treatment_tried",
        "hpc.help_sought",
    )


# What was done for it ("what have you taken at home for the fever?", "have you given any
# medicine at home?"): the treatment tried, not the symptom it was taken for.
TREATED = re.compile(
    r"\b(taken|take|took|given|give|gave|used|use|tried|try|bought|buy|applied|apply|put)\b( \w+){0,5}"
    r" for (the|this|that|his|her|your|ur|it|him|these|those)\b"
    r"|\b(taken|took|given|gave|used|tried|bought|applied)\b( \w+){0,2} (any|some)? ?"
    r"(medicine|medicines|medication|drugs?|tablets?|pills?|treatment|remed(y|ies)|herbs?|syrups?)\b"
)


def _about_treatment(topic_id: str) -> bool:
    return topic_id.startswith("med.") or topic_id in _TREATMENT_TOPICS


_TREATMENT_TOPICS = frozenset(
    {
        "hpc.treatment_tried",
        "hpc.relieving",
        "hpc.help_sought",
        "env.healer",
        "paed.deworming",
        "paed.vitamin_a",
        "pmh.tb",
    }
)


def _frame(question: str) -> Callable[[str], bool] | None:
    """Which topics may answer a question about somebody else, about what was taken or given
    for the illness, or about before it (None: any)."""
    said = normalise(question)
    if OTHER_PEOPLE.search(said) and not _NOT_ABOUT_ILLNESS.search(said):
        return _about_people
    if TREATED.search(said):
        return _about_treatment
    if EARLIER.search(said) and not _BEFORE_IT_STARTED.search(said):
        return _about_earlier
    return None


# Where a question in several parts divides ("or", "and", commas), and the opening a later part
# borrows when it has none of its own ("do you smoke or drink" -> "do you drink").
_PART_BREAK = re.compile(r"\s*(?:,|;|/|\bor\b|\band\b|\bas well as\b|\balso\b)\s*")
_OPENING = re.compile(
    r"^((and |so |ok |okay |also |now )*(do|does|did|have|has|had|is|are|was|were|can|could|will|would)"
    r" (you|u|he|she|it|they|the (baby|child)|there|anyone|anybody)( ever| also| still| had| got)?|any|have you had|has (he|she) had)\b"
)
_HAS_OPENING = re.compile(
    r"^(do|does|did|have|has|had|is|are|was|were|can|could|will|would|any|how|what|when|where|which|who|why|"
    r"tell|describe|no|not)\b"
)
MAX_PARTS = 4
_YES_NO = re.compile(
    r"^(do|does|did|have|has|had|is|are|was|were|can|could|will|would) (you|u|he|she|it|they|the (baby|child)|there|any)\b"
)
_PLACE = re.compile(r"\b(in|on|of|at|around|from|with|behind|under|over) (your|ur|his|her|the|my|its)\b.*$")
_EXAMPLES = re.compile(r"\b(like|such as|for example|for instance|eg|including|especially)\b")
# Pairs that name one thing: "eating and drinking" is what goes in by mouth (a child "able to drink
# or breastfeed" is an IMCI danger sign), never "do you drink" (alcohol) on its own.
_ONE_THING = re.compile(
    r"\b(eat|eating|feed|feeding|breastfeed|breastfeeding|suck|sucking|drink|drinking)"
    r" ((and|or) )?(eat|eating|feed|feeding|breastfeed|breastfeeding|suck|sucking|drink|drinking)\b"
)
_ELABORATION = re.compile(
    r"^(any )?(other|others|another|something|anything|such|like|including|especially|else)\b"
)


def question_parts(question: str) -> list[str]:
    """The parts of a question asked in several ("do you smoke or drink?" -> "do you smoke",
    "do you drink"); one part when it is not divisible. A piece without a clinical word of its
    own ("on and off", "now and then") stays with the piece before it."""
    pieces = [n for p in _PART_BREAK.split(question.lower()) if (n := normalise(p))]
    if len(pieces) < 2:
        return [question]
    parts: list[str] = []
    for piece in pieces:
        clinical = any(t.startswith("~") for t in content_terms(piece))
        if parts and not clinical:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    if (
        len(parts) < 2
        or len(parts) > MAX_PARTS
        or not _HAS_OPENING.match(parts[0])
        or _EXAMPLES.search(said := normalise(question))
        or _ONE_THING.search(said)
    ):
        return [question]  # "the fits, how many times?" asks about one thing
    # "any pain or swelling in your legs": the last part's place belongs to every part.
    tail = _PLACE.search(parts[-1])
    if tail is not None:
        parts = [p if _PLACE.search(p) else f"{p} {tail.group(0)}" for p in parts[:-1]] + [parts[-1]]
    opening = _OPENING.match(parts[0])
    out = [parts[0]]
    for part in parts[1:]:
        if _YES_NO.match(part):
            out.append(part)  # a question of its own: "... and have you lost weight?"
        elif (
            opening is not None
            and not _HAS_OPENING.match(part)
            and not _ELABORATION.match(part)
            and len(part.split()) <= 4
        ):
            out.append(f"{opening.group(0)} {part}")  # "do you smoke or drink" -> "do you drink"
        else:
            # "how many times", "any other drug", "take drinks without it coming back": more of
            # the same question, which is then not divided at all.
            return [question]
    return out


def _words(text: str) -> set[str]:
    return {t for t in content_terms(text) if not t.startswith("~") and len(t) >= 4}


def _restates(text: str, said: list[str]) -> bool:
    """Whether default `text` says again what one already said does ("he is passing urine like
    usual" after "he is passing urine the same as usual"): two neighbouring topics, one answer."""
    words = _words(text)
    if said and words <= _HEDGES:
        return True  # "No, not that I know of." after "No, I have not had any fever."
    return any(len(words & (other := _words(d))) >= 0.75 * min(len(words), len(other)) > 0 for d in said)


_HEDGES = frozenset(
    {"know", "sure", "think", "remember", "that", "this", "heard", "nothing", "answer", "question", "mean"}
)

# Family topics answer a question about the family; the patient's own topics, one about the patient.
_FAMILY_WORDS = re.compile(
    r"\b(family|families|relatives?|relations|parents|siblings|brothers|sisters|grand(mother|father|parents?|ma|pa)s?"
    r"|uncles?|aunts?|aunties|cousins?|runs? in|hereditary|inherited|genetic"
    r"|(your|ur|his|her) (mother|father|mum|mom|dad|brother|sister|parents?))\b"
)


def _by_whom(cands: list[Any], question: str) -> list[Any]:
    """The candidate topics about whom the question asks: the family's (fam.*) when it names the
    family, else the patient's, when both kinds are among them."""
    family = [m for m in cands if m.topic.id.startswith("fam.")]
    own = [m for m in cands if not m.topic.id.startswith("fam.")]
    if not family or not own:
        return cands
    return family if _FAMILY_WORDS.search(normalise(question)) else own


def _merged(question: str, answers: list[HistoryAnswer]) -> HistoryAnswer:
    """One answer made of the answers to each part, in order, each fact and default once. A
    default that speaks of what a fact given for another part speaks of ("my stools are normal"
    next to "my stools have been hard") is left out: it would contradict the case."""
    told = set().union(*(_words(f.answer) for a in answers for f in a.facts))
    answers = [a if not a.facts and not told else _without_clashing_defaults(a, told) for a in answers]
    out = HistoryAnswer(question)
    for a in answers:
        out.corrected.update(a.corrected)
        out.facts += [f for f in a.facts if f not in out.facts]
        out.withheld += [
            w for w in a.withheld if w not in out.withheld and w not in {f.id for f in out.facts}
        ]
        out.topics += [t for t in a.topics if t not in out.topics]
        for t, d in zip(a.default_topics, a.defaults, strict=False):
            if d not in out.defaults:
                out.defaults.append(d)
                out.default_topics.append(t)
        for d in a.defaults[len(a.default_topics) :]:
            if d not in out.defaults:
                out.defaults.append(d)
    out.route = "fact" if any(a.route == "fact" for a in answers) else "topic"
    return out


def _without_clashing_defaults(answer: HistoryAnswer, told: set[str]) -> HistoryAnswer:
    keep = [
        (t, d) for t, d in zip(answer.default_topics, answer.defaults, strict=False) if not (_words(d) & told)
    ]
    answer.default_topics = [t for t, _ in keep]
    answer.defaults = [d for _, d in keep]
    return answer


@dataclass
class HistoryAnswer:
    question: str
    facts: list[Fact] = field(default_factory=list)  # what the patient says (counted as asked)
    defaults: list[str] = field(default_factory=list)  # default answers, in order
    topics: list[str] = field(default_factory=list)  # standard topics asked
    default_topics: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # facts kept back by disclosure rules
    corrected: dict[str, str] = field(default_factory=dict)
    route: str = "none"  # fact, topic or none
    off_topic: bool = False

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"route": self.route, "topics": self.topics, "withheld": self.withheld}
        if self.default_topics:
            out["defaults"] = self.default_topics
        if self.corrected:
            out["corrected"] = self.corrected
        return out


class History:
    """The history-taking index of one case: its facts and the shared topic index."""

    def __init__(self, case: Case, encoder: Embedder | None = None) -> None:
        self.case = case
        self.encoder = encoder
        self.facts = FactIndex(case, encoder)
        self.topics = topic_index(encoder)
        self.covered = covered_topics(case)
        names = [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]
        for d in case.diagnosis.differentials:
            names += [d.name, *d.synonyms]
        self.dx_names = {normalise(n) for n in names if normalise(n)}

    def _names_diagnosis(self, text: str) -> bool:
        said = f" {normalise(text)} "
        return any(f" {name} " in said for name in self.dx_names)

    def facts_for(self, topic: str | None) -> list[Fact]:
        ids = self.covered.get(topic or "", [])
        return [f for f in self.case.facts if f.id in ids]

    def answer(self, question: str, ice: bool = False) -> HistoryAnswer:
        """What the patient says to a history question. With `ice`, the question asks for the
        patient's ideas, concerns or expectations: only those topics and facts can answer it.

        A question in several parts ("do you smoke or drink?", "any night sweats, or weight
        loss?") is answered part by part, each part as if asked alone, when every part finds an
        answer; otherwise as one question."""
        parts = [] if ice else question_parts(question)
        frame = _frame(question)  # of the whole question: "is anyone at home also having fever"
        if len(parts) > 1:
            answers = [self._answer_one(p, frame=frame) for p in parts]
            if all(a.facts or a.defaults for a in answers):
                return _merged(question, answers)
        return self._answer_one(question, ice, frame)

    def _answer_one(
        self, question: str, ice: bool = False, frame: Callable[[str], bool] | None = None
    ) -> HistoryAnswer:
        qvec = self.encoder.encode([question])[0] if self.encoder is not None else None
        fixed, fscored = self.facts.scored(question, qvec)
        tscored = [m for m in self.topics.match(question, qvec) if applies(self.case, m.topic)]
        if ice:
            return self._ice(question, fixed, fscored, tscored)
        if frame is not None:
            tscored = [m for m in tscored if frame(m.topic.id)] or tscored
            fscored = [m for m in fscored if any(frame(t) for t in m.fact.topics)]
        out = HistoryAnswer(question, corrected=fixed)
        if MAIN_COMPLAINT_QUESTION.search(normalise(question)) and self.covered.get(MAIN_COMPLAINT):
            # "What brings you here today?": the presenting complaint, however it is worded.
            out.route = "topic"
            out.topics = [MAIN_COMPLAINT]
            out.facts = self.facts_for(MAIN_COMPLAINT)
            return out
        hybrid = self.encoder is not None
        t_min = TOPIC_MIN if hybrid else LEX_TOPIC_MIN
        best_t = tscored[0]
        second = TOPIC_SECOND if hybrid else LEX_TOPIC_SECOND * best_t.score
        cands = [m for m in tscored[:MAX_TOPICS] if m.score >= t_min and m.score >= best_t.score - second]
        cands = _by_whom(cands, question)
        cand_ids = [m.topic.id for m in cands]
        best_f = fscored[0] if fscored else None
        fact_ok = best_f is not None and best_f.score >= self.facts.none_threshold
        margin = FACT_MARGIN if hybrid else LEX_FACT_MARGIN
        # The fact's own topics among the best few: the question is about what the fact says.
        near = {
            m.topic.id
            for m in tscored[:8]
            if m.score >= best_t.score - (TOPIC_NEAR if hybrid else 0.5 * best_t.score)
        }
        slack = FACT_SLACK if hybrid else 0.25 * best_t.score
        if (
            best_f is not None
            and fact_ok
            and (
                # Lexical scores of facts and topics are not on one scale: without the encoder,
                # the case's facts come first and the taxonomy answers only what no fact matches.
                not hybrid
                # A question framed to somebody else, to before, or to what was taken: the frame
                # already keeps only facts about that, and a strong one answers it.
                or (frame is not None and best_f.score >= FACT_STRONG)
                or not cands
                or best_f.score >= best_t.score + margin
                # The question names the fact's own keyword ("a tight band" for a tourniquet fact):
                # it wins over a topic it merely outscores.
                or (best_f.direct and best_f.score >= best_t.score)
                or set(best_f.fact.topics) & set(cand_ids)
                or (
                    set(best_f.fact.topics) & near
                    and best_f.score >= best_t.score - slack
                    and best_f.score >= FACT_STRONG
                )
            )
        ):
            found = self.facts.choose(question, fixed, fscored)
            out.route = "fact"
            out.facts = [m.fact for m in found.matches]
            out.withheld = [m.fact.id for m in found.withheld]
            given = {t for f in out.facts for t in f.topics}
            out.topics = [t for t in cand_ids if t in given] + sorted(given - set(cand_ids))
            return out
        if cands:
            out.route = "topic"
            for m in cands:
                tid = m.topic.id
                out.topics.append(tid)
                if tid in self.covered:
                    direct = m.score >= (TOPIC_DIRECT if hybrid else t_min)
                    for fact in self.facts_for(tid):
                        if fact in out.facts:
                            continue
                        if fact.disclosure == Disclosure.direct_question and not direct:
                            out.withheld.append(fact.id)
                        else:
                            out.facts.append(fact)
                elif not tid.startswith("hpc.") or not out.facts:
                    # Constipation asked about diarrhoea, exertional breathlessness asked about
                    # breathlessness: the related fact answers, never a "No, ..." against it.
                    related = [f for t in m.topic.see_also for f in self.facts_for(t) if f not in out.facts]
                    said = [f for f in related if f.disclosure != Disclosure.direct_question]
                    out.withheld += [f.id for f in related if f not in said and f.id not in out.withheld]
                    if said:
                        out.facts += [f for i, f in enumerate(said) if f not in said[:i]]
                        continue
                    text = default_answer(self.case, m.topic)
                    if self._names_diagnosis(text):
                        # "No, I have not taken malaria medicine" in a malaria case: a default
                        # never says the name of what the case is about.
                        continue
                    if text not in out.defaults and not _restates(text, out.defaults):
                        out.defaults.append(text)
                        out.default_topics.append(tid)
            if out.facts and out.defaults:
                # A descriptor default ("I can't say exactly") next to a fact would contradict it.
                keep = [
                    (t, d)
                    for t, d in zip(out.default_topics, out.defaults, strict=True)
                    if not t.startswith("hpc.")
                ]
                out.default_topics = [t for t, _ in keep]
                out.defaults = [d for _, d in keep]
            return out
        if fact_ok and (not hybrid or best_f is not None and best_f.score >= FACT_ALONE):
            found = self.facts.choose(question, fixed, fscored)
            out.route = "fact"
            out.facts = [m.fact for m in found.matches]
            out.withheld = [m.fact.id for m in found.withheld]
            out.topics = sorted({t for f in out.facts for t in f.topics})
            return out
        clinical = any(t.startswith("~") for t in content_terms(question))
        weak = best_t.score < t_min * 0.75
        if qvec is not None:
            # Closer to small talk (football, weather, the news) than to any history topic.
            out.off_topic = self.topics.small_talk(qvec) > best_t.semantic or (not clinical and weak)
        else:
            out.off_topic = not clinical and weak
        return out

    def _ice(
        self, question: str, fixed: dict[str, str], fscored: list[Any], tscored: list[Any]
    ) -> HistoryAnswer:
        """Ideas, concerns, expectations: the case's own ICE facts, else the best ICE topic's answer."""
        out = HistoryAnswer(question, corrected=fixed, route="topic")
        topics = [m for m in tscored if m.topic.section == "ice"]
        best = topics[0] if topics else None
        ice_facts = [
            m.fact
            for m in fscored
            if m.fact.category.value == "ice" or any(t.startswith("ice.") for t in m.fact.topics)
        ]
        if best is not None:
            out.topics = [best.topic.id]
            covered = self.facts_for(best.topic.id)
            if covered:
                out.facts = covered
                return out
        if ice_facts:
            out.route = "fact"
            out.facts = ice_facts[:1]
            out.topics += [t for t in ice_facts[0].topics if t not in out.topics]
            return out
        if best is not None:
            out.defaults = [default_answer(self.case, best.topic)]
            out.default_topics = [best.topic.id]
        return out
