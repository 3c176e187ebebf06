"""Dialogue acts: what a trainee's turn does (greets, introduces, asks consent, shows empathy...)
is decided before anything is retrieved, so that "ok", "I'm sorry" or "what is your name?" never
fall onto the nearest fact of the case (and never earn history credit).

A turn is cut into clauses at sentence punctuation and commas. Each clause is matched against the
act patterns of `acts.yaml` in order; a clause no pattern claims is part of a history question.
Then:
- if any clause asks a history question, the turn is a history turn (the social acts in it are
  still recorded, for the communication score, and a greeting is answered first);
- else the turn's main act is the social act of highest priority, answered from `acts.yaml`'s
  replies in the case's voice (the patient, or the caregiver of a child), filled from the case.
A summary is recognised on the whole turn ("so you have had fever for three days, right?"), as
is an open question ("what brings you here today?"), which the communication score looks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from ..cases.schema import Case, Sex
from ..cases.taxonomy import default_answer, taxonomy
from ..errors import EdgeTutorError
from ..language.lexicon import STOPWORDS, content_terms, normalise

ACTS_FILE = "acts.yaml"
HISTORY = "history"
# The act that speaks for a turn with several social acts and no history question.
PRIORITY = (
    "off_topic", "identity_name", "identity_age", "identity_home", "identity_work",
    "identity_relation", "ice", "consent_exam", "consent", "check_understanding", "summary",
    "closing", "introduction", "empathy", "reassurance", "plan_explanation", "examination",
    "instruction", "open_invitation", "consent_generic", "greeting", "thanks", "backchannel",
    "statement",
)  # fmt: skip
# Acts that ask the patient something the case knows (answered like history questions).
IDENTITY = ("identity_name", "identity_age", "identity_home", "identity_work", "identity_relation")
# Open questions a consultation should start with ("what brings you here today?").
_OPEN = re.compile(
    r"\b(what (brings|brought) (you|u|him|her|the (baby|child))|what can i do for (you|u)|how can i help"
    r"|what (is|s|seems to be|seem to be) (the|your|ur) (problem|matter|complaint|trouble|issue|concern)"
    r"|what (is|s) wrong|what happened|why (have|did) (you|u) come|what made (you|u) come"
    r"|tell me (about|what|why|how)|how (are|r) (you|u) (feeling|keeping)|how (is|s) (he|she|the (baby|child)) (doing|feeling)"
    r"|what (is|s) (bothering|troubling|worrying) (you|u)|in (your|ur) own words|describe"
    r"|what (are|r) (your|ur) (problems|complaints)|how can we help|what (is|s) going on)\b"
)
_JARGON = re.compile(
    r"\b(mg|mcg|ml|iv|im|po|bd|bid|tds|tid|qds|qid|od|prn|stat|nocte|regimen|analgesics?|antipyretics?"
    r"|prophyla\w+|parenteral|intravenous|intramuscular|subcutaneous|hypo\w+|hyper\w+|tachy\w+|brady\w+"
    r"|sepsis|septic|aetiology|etiology|idiopathic|pathogen\w*|prognosis|differential|contraindicated"
    r"|empirical|empiric|titrate|bolus|infusion|cannula|nebuli[sz]\w+|mmhg|mmol|saturation|sats)\b"
)


class ActsError(EdgeTutorError):
    """The shipped acts file is invalid (a packaging bug, never user input)."""


@dataclass(frozen=True)
class ActRules:
    patterns: dict[str, list[re.Pattern[str]]]
    replies: dict[str, dict[str, str]]
    examples: dict[str, list[str]]
    generic: frozenset[str]


@lru_cache(maxsize=1)
def rules() -> ActRules:
    """The act patterns, replies and examples, loaded and compiled once."""
    from ruamel.yaml import YAML

    text = resources.files(__package__).joinpath(ACTS_FILE).read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    try:
        patterns = {act: [re.compile(p) for p in pats] for act, pats in data["acts"].items()}
        replies = {act: dict(v) for act, v in data["replies"].items()}
        examples = {act: list(v) for act, v in data["examples"].items()}
        generic = frozenset(str(data["generic_words"]).split())
    except (KeyError, TypeError, AttributeError, re.error) as err:
        raise ActsError(f"{ACTS_FILE}: {err}") from err
    for act in PRIORITY:
        if act not in patterns and act != "statement":
            raise ActsError(f"{ACTS_FILE}: no patterns for act {act!r}")
    for act, voices in replies.items():
        if set(voices) != {"patient", "caregiver"}:
            raise ActsError(f"{ACTS_FILE}: reply {act!r} needs a patient and a caregiver text")
    return ActRules(patterns, replies, examples, generic)


@dataclass
class Turn:
    """What a trainee's turn does."""

    text: str
    acts: list[str] = field(default_factory=list)  # every act found, in order (history included)
    question: str = ""  # the history question's words (empty: a purely social turn)
    open: bool = False  # an open question ("what brings you here?")
    plain: bool = True  # no jargon (for a plan explained to the patient)

    @property
    def main(self) -> str:
        """The act that decides the reply: history if a question was asked, else by priority."""
        if self.question:
            return HISTORY
        for act in PRIORITY:
            if act in self.acts:
                return act
        return HISTORY


def _clauses(text: str) -> list[tuple[str, bool]]:
    """(clause, ends with a question mark) pieces of a turn."""
    out = []
    for m in re.finditer(r"[^.!?;:\n]+[.!?;:\n]*", text):
        sentence = m.group(0)
        asked = "?" in sentence
        parts = [
            p.strip()
            for p in re.split(
                r",\s*|\s+-\s+|\s+(?=(?:and|but|also|then) (?:do|did|does|have|has|is|are|was|were|any|can|how|what|where|when)\b)",
                sentence.rstrip(".!?;:\n "),
            )
            if p and p.strip()
        ]
        # Only the clause before the question mark is asked by it: "I need to look at your neck,
        # is that alright?" asks for consent, not about the neck.
        out += [(p, asked and i == len(parts) - 1) for i, p in enumerate(parts)]
    return out


# Text-message spellings, read as words before matching acts.
_TEXTING = {
    "u": "you", "ur": "your", "r": "are", "pls": "please", "plz": "please", "wat": "what",
    "wht": "what", "hw": "how", "dnt": "don't", "dont": "don't", "didnt": "didn't", "cant": "can't",
    "im": "i'm", "ive": "i've", "youre": "you're", "thx": "thanks", "abt": "about", "wen": "when",
    "yr": "your", "ya": "you", "b4": "before", "2day": "today", "nw": "now",
    "hav": "have", "hv": "have", "av": "have", "hw's": "how's", "hws": "how's", "wats": "what's",
    "whats": "what's", "wer": "were", "wr": "where", "wher": "where", "y": "why", "coz": "because",
    "cuz": "because", "bcoz": "because", "bcos": "because", "any1": "anyone", "some1": "someone",
    "no1": "no one", "every1": "everyone", "ne1": "anyone", "n": "and",
    "thru": "through", "tmrw": "tomorrow", "tmr": "tomorrow", "ystd": "yesterday", "msg": "message",
    "dat": "that", "dis": "this", "da": "the", "de": "the", "wit": "with", "wid": "with", "frm": "from",
    "gud": "good", "gd": "good", "hapnd": "happened", "hapened": "happened", "sumthing": "something",
    "smthng": "something", "nethin": "anything", "anythin": "anything", "alot": "a lot",
}  # fmt: skip


def _norm(text: str) -> str:
    return " ".join(_TEXTING.get(w, w) for w in normalise(text).split())


def expand_texting(text: str) -> str:
    """The text with text-message spellings written out ("did u take" -> "did you take"),
    punctuation kept, so retrieval reads it as a sentence."""
    return re.sub(r"[A-Za-z0-9']+", lambda m: _TEXTING.get(m.group(0).lower(), m.group(0)), text)


def _content(norm: str, generic: frozenset[str]) -> list[str]:
    return [
        w for w in norm.split() if w not in STOPWORDS and w not in generic and w.strip("'") not in generic
    ]


_VOCATIVE = re.compile(
    r"^((my )?(dear |good )?(mr|mrs|ms|miss|dr|doctor|mama|baba|sir|madam|maam|ma'am|didi|bhaiya|bhai|dada|ntate|mme|"
    r"auntie|aunty|uncle|brother|sister|friend|young man|young lady|my friend|my brother|my sister|my dear|dear|"
    r"mother|father|mummy|daddy|grandmother|granny|grandma|grandfather|grandpa|papa|maa|"
    r"mzee|bibi|babu|kaka|dada|amma|appa|ji|sahib|memsahib|boss|chief)( \w+)?|\w+ (ji|bhai|didi))$"
)
_NAME = re.compile(r"(?:(?:Mr|Mrs|Ms|Dr|Miss)\.? )?[A-Z][a-z'-]+(?: [A-Z][a-z'-]+)?")
_INTERROGATIVE = re.compile(
    r"^(and |but |so |ok |okay |also |now |then |alright |right |please |just )*(what|whats|what's|when|where|why|how|which|who|whom|whose|"
    r"do|does|did|doesn't|didn't|is|isn't|are|aren't|was|were|have|haven't|has|hasn't|had|can|could|would|will|should|"
    r"shall|may|any|anything|anyone|anybody|tell|describe|explain|show me|since|for how long|ever|u |you have|you had|you got|"
    r"you ever|you been|r u|are u|ever|no |not |none|got any|have u|did u|do u|does it|is it|is there|are there|was there|"
    r"rate|score|grade|give me a number|give it a number|from where|since when|till when|until when|from when|"
    r"since how|from how|in which|at what|for what|for which|to where)\b"
)
# "fever is continuous or it comes and goes", "cough dry or wet": a choice offered about something
# clinical is a question, whatever its word order.
_CHOICE = re.compile(r"\b(or|or not|or no)\b")
# ... but advice keeps its word order too: "come back if he cannot drink or gets worse".
_NOT_A_CHOICE = re.compile(
    r"\b(if|unless|when|we|i|take|give|bring|come|boil|wash|go|see|drink this|keep|stop|start|continue)\b"
    r"|^(with|after|before|during|and|but|then)\b"
)
# A question after a leading phrase ("on a scale of one to ten how bad is it", "from 0 to 10, what
# number would you give it"): a question word followed by question word order (verb before its
# subject). "I know how bad it is" keeps statement order and stays a statement.
_EMBEDDED_QUESTION = re.compile(
    r"\b(how|what|when|where|which|why|who)( \w+){0,2} (is|are|was|were|do|does|did|would|will|can|could|has|have|had)"
    r" (you|u|it|the|your|this|that|there|he|she|they)\b"
)
_ASKING = re.compile(
    r"\b(do|did|does|have|has|is|are|was|were|can|could) (you|u|he|she|it|they|the (baby|child)|there|anyone)\b|\bany\b"
)
_STATEMENT_EXAM = re.compile(
    r"\b(i|we)( will|'ll| am going to|'m going to|m going to| are going to|'re going to| need to| have to| must| want to| would like to|'d like to)"
    r"( now| just| first| also| gently| quickly)* (examine|check|listen|look|feel|press|pinch|prick|put|tie|attach|wrap|place|mark|take (some |a |your |his |her )?(blood|sample|temperature|pulse|pressure)|lift|measure|weigh|shine|rub|test|count|touch|do (a|an|some) (test|exam|check))"
    r"|\b(i am|i'm|we are|we're) (putting|tying|attaching|placing|checking|examining|listening|looking|feeling|pressing|measuring|taking your)\b"
)
_EXAM_VERB = re.compile(r"\b(examine|check|look|listen|feel|press|touch|weigh|measure)\b")
# Declarative treatment words: "we give her a salt-sugar drink", "you take these tablets".
_STATEMENT_TREAT = re.compile(
    r"\b(we|i) (give|are giving|send|refer|admit|start|put)\b|\b(you|u) (take|give|keep giving|drink|come back|bring)\b"
    r"|\b(tablets?|injection|drip|medicine|syrup|ambulance|hospital|ors|zinc|paracetamol|referral|admission)\b"
)
_IMPERATIVE = re.compile(
    r"^(please |now |ok |okay |just |gently |slowly )*(lean|rest|keep|relax|breathe|lift|open|close|bend|straighten|lie|lay|sit|stand|"
    r"turn|hold|point|follow|squeeze|push|pull|raise|cough|swallow|stick|roll|remove|undress|unbutton|wait|step|hop|try not|"
    r"stay|move|wiggle|spread|cross|put your|show me your|touch|bring your|tuck|nod|clench|grip|kick|walk|bite|stick out|try to|try and)\b"
)
_STATEMENT_PLAN = re.compile(
    r"\b((i|we) (need|want) (you|u) to|(i|we)( will|'ll| am going to|'m going to|m going to| are going to|'re going to| need to| have to| must| would like to|'d like to)|"
    r"(you|u|he|she)( will|'ll| need to| should| must| have to| are going to| is going to))\b"
)


def _is_question(clause: str, norm: str, asked: bool, alone: bool, generic: frozenset[str]) -> bool:
    """Whether an unclaimed clause asks the patient something (else it is a statement)."""
    if asked and _content(norm, generic):
        return True
    if _STATEMENT_PLAN.search(norm) or _STATEMENT_EXAM.search(norm):
        return False
    if _INTERROGATIVE.search(norm) or _EMBEDDED_QUESTION.search(norm):
        return True
    if (
        _CHOICE.search(norm)
        and len(norm.split()) <= 9
        and not _NOT_A_CHOICE.search(norm)
        and any(t.startswith("~") for t in content_terms(norm))
    ):
        return True
    # A turn of a few words ("fever since when", "cough") is a question typed without its mark.
    # Only when it names something clinical: "ok noted" is not a question about "noted".
    return alone and len(norm.split()) <= 4 and any(t.startswith("~") for t in content_terms(norm))


def classify(text: str) -> Turn:
    """The acts of one trainee turn (deterministic, well under a millisecond)."""
    r = rules()
    turn = Turn(text)
    whole = _norm(text)
    if not whole:
        turn.acts.append("backchannel")
        return turn
    turn.open = bool(_OPEN.search(whole))
    # A summary reads the whole turn: its clauses alone look like history statements.
    # A short check ending in a question mark ("so it is a sharp pain?") is a closed question:
    # answered from the case, never just agreed with (the pain may be crushing, not sharp).
    if _is_summary(whole, r) and not (
        text.rstrip().endswith("?") and len(whole.split()) <= 9 and not _CONFIRM.search(whole)
    ):
        turn.acts.append("summary")
        return turn
    clauses = _clauses(text)
    history: list[str] = []
    statements: list[str] = []
    for clause, asked in clauses:
        norm = _norm(clause)
        if not norm:
            continue
        act = _clause_act(norm, r)
        if act is None and (_VOCATIVE.match(norm) or (len(clauses) > 1 and _NAME.fullmatch(clause))):
            continue  # "Mr Mwangi", "mama", "Esther": who is spoken to
        if act is None:
            if _is_question(clause, norm, asked, len(clauses) == 1, r.generic):
                if (
                    statements
                    and _content(statements[-1], r.generic)
                    and (
                        _BACK_REFERENCE.search(norm)
                        or _ELLIPTICAL.fullmatch(norm)
                        or (len(statements[-1].split()) <= 3 and _BACK_TO_PERSON.search(norm))
                    )
                ):
                    # "the water you use at home, where do you get it?": the thing asked about
                    # comes first, and "it" points back to it.
                    clause = f"{statements.pop()} {clause}"
                history.append(clause)
            elif _STATEMENT_EXAM.search(norm):
                turn.acts.append("examination")
            elif _IMPERATIVE.search(norm):
                turn.acts.append("instruction")
            elif _STATEMENT_PLAN.search(norm) or _STATEMENT_TREAT.search(norm):
                turn.acts.append("plan_explanation")
            else:
                statements.append(norm)
            continue
        if (
            act == "backchannel"
            and asked
            and clause == clauses[-1][0]
            and {"examination", "plan_explanation"} & set(turn.acts)
        ):
            # "I will check your pressure and listen to the baby, ok?" asks permission.
            turn.acts.append("consent_exam")
            continue
        rest = _strip_match(norm, act, r) if act in ("open_invitation", "consent") else ""
        if act == "consent" and _CONSENT_ASIDE.match(rest):
            # "may I ask some questions while we put up the drip?", "can I ask about your
            # fever?": permission only; the question itself comes next.
            turn.acts.append("consent")
            continue
        if act == "consent" and _EXAM_VERB.search(rest):
            turn.acts.append("consent_exam")
            continue
        if act in ("open_invitation", "consent") and _content(rest, r.generic):
            # "tell me more about the cough", "may I ask how long you have had the fever?"
            if act == "consent":
                turn.acts.append("consent")
            history.append(clause)
            continue
        turn.acts.append(act)
    if history and "plan_explanation" in turn.acts and "?" not in text:
        # "You have malaria, we will give you tablets": telling the diagnosis with the plan, not
        # asking "(do) you have malaria?" in spoken word order (that comes with its mark).
        history = [c for c in history if not _TELLS.match(_norm(c))]
    if history:
        turn.question = " ".join(history)
        turn.acts.append(HISTORY)
    elif not turn.acts:
        turn.acts.append("statement")
    if "plan_explanation" in turn.acts:
        turn.plain = not _JARGON.search(whole)
    return turn


_BACK_REFERENCE = re.compile(r"\b(it|them|that|this|those|these)\b")
# "you worked in the mines, for how long?": a question with nothing of its own asks about the
# statement before it.
_ELLIPTICAL = re.compile(
    r"(and |so |ok |okay )?(for how long|how long( ago| for)?|since when|how much|how many( times)?|how often"
    r"|when|where|which one|what kind|what type|how bad|how far|why|what for)"
)
# "your brother, is he on treatment?": only after a short name of someone ("he" alone is the child).
_BACK_TO_PERSON = re.compile(r"\b(he|she|they|him|her)\b")
_TELLS = re.compile(
    r"^(so |and |now |ok |okay )*(you|u|he|she|the (baby|child)) (have|has|got|have got|ve got|'ve got)\b"
)


def _clause_act(norm: str, r: ActRules) -> str | None:
    for act, patterns in r.patterns.items():
        if act == "summary":
            continue
        if any(p.search(norm) for p in patterns):
            return act
    return None


def _strip_match(norm: str, act: str, r: ActRules) -> str:
    for p in r.patterns[act]:
        m = p.search(norm)
        if m:
            return (norm[: m.start()] + " " + norm[m.end() :]).strip()
    return norm


# What may follow a request to ask questions without being a question itself.
_CONSENT_ASIDE = re.compile(
    r"^(about|on|regarding|while|whilst|before|as|since|because|now|first|today|quickly|with|in|"
    r"is (it|that) (ok|okay|alright|fine)|if (that|it) is|if you|okay|ok|please|madam|sir|mama|baba)\b"
)
_WH = re.compile(r"\b(where|when|how long|how many|how much|which|why|what (colou?r|kind|type|time))\b")
_ASKS = re.compile(
    r"^(do|does|did|have|has|are|is|was|were|can|could|any|what|whats|what's|who|how|why|where|when|which|tell|describe)\b"
)


_CONFIRM = re.compile(
    r"\b(have i got (that|it|this|everything|all that) right|is (that|this|it) (right|correct|so)|did i (get|understand) (that|it|everything|you)( right| correctly)?|am i (right|correct)|correct me if)\s*$"
)


def _is_summary(whole: str, r: ActRules) -> bool:
    if _CONFIRM.search(whole) and len(whole.split()) >= 9:
        return True
    m = next((p.search(whole) for p in r.patterns["summary"] if p.search(whole)), None)
    if m is None:
        return False
    rest = whole[m.end() :].strip()
    words = rest.split()
    if m.group(0).strip() in ("so", "ok so", "okay so", "alright so", "right so", "good so"):
        # "so do you have a cough?" asks; "so you have had fever for three days?" sums up.
        if _ASKS.search(rest) or len(words) < 5:
            return False
    # "you mentioned your head, where exactly is the pain?" asks a new question.
    return not _WH.search(rest)


# -- replies ------------------------------------------------------------------------------------


def _age_words(case: Case) -> str:
    p = case.patient
    if p.age_years == 0:
        months = p.age_months or 0
        if months == 0:
            return "less than a month"  # a newborn: never "0 months old"
        return f"{months} month{'s' if months != 1 else ''}"
    years = f"{p.age_years} year{'s' if p.age_years != 1 else ''}"
    if p.age_years < 5 and p.age_months:
        return f"{years} and {p.age_months} month{'s' if p.age_months != 1 else ''}"
    return years


def _relation(case: Case) -> str:
    rel = case.patient.informant.relation if case.patient.informant else ""
    return re.sub(r"^(the|a|an|his|her|their)\s+", "", rel.strip(), flags=re.I) or "relative"


# How a patient addresses the trainee who said who they are ("I'm the nurse", "Sister Ruth").
_TITLES = (
    (re.compile(r"\b(nurse|sister|matron|midwife|midwives)\b"), "sister"),
    (re.compile(r"\b(clinical officer|medical officer|health worker|officer|student|chw)\b"), ""),
    (re.compile(r"\b(dr|doctor|doc)\b"), "doctor"),
)


def _greet_back(utterance: str) -> str:
    norm = normalise(utterance)
    words = norm.split()
    for part in ("morning", "afternoon", "evening"):
        if part in words:
            return f"Hello, good {part}"
    for pattern, title in _TITLES:
        if pattern.search(norm):
            return f"Hello, {title}" if title else "Hello"
    return "Hello, doctor"


def fill(template: str, case: Case, utterance: str = "", **extra: str) -> str:
    """A reply template filled from the case (see acts.yaml for the placeholders)."""
    p = case.patient
    female = p.sex == Sex.female
    values: dict[str, Any] = {
        "name": p.name,
        "first": p.name.split()[0],
        "age": _age_words(case),
        "informant": p.informant.name if p.informant else p.name,
        "relation": _relation(case),
        "he": "she" if female else "he",
        "him": "her" if female else "him",
        "his": "her" if female else "his",
        "He": "She" if female else "He",
        "His": "Her" if female else "His",
        "greet_back": _greet_back(utterance),
    } | extra
    if "{work}" in template and (work := taxonomy().get("soc.occupation")):
        values["work"] = default_answer(case, work)  # only the work reply needs the topic's answer
    text = template.format(**values)
    return text[0].upper() + text[1:] if text else text


def reply_for(act: str, case: Case, utterance: str = "", **extra: str) -> str:
    """The authored reply to a social act in this case's voice (`extra`: more placeholders)."""
    r = rules()
    who = "caregiver" if case.patient.informant is not None else "patient"
    key = act
    if act == "greeting" and re.search(r"\bhow (are|r|is|s) (you|u|ya|it)\b", normalise(utterance)):
        key = "greeting_how"
    voices = r.replies.get(key) or r.replies["backchannel"]
    return fill(voices[who], case, utterance, **extra)


# "Tell me back what you will do", "show me how you will mix the ORS", "in your own words": the
# trainee asks the patient to say back what they were told (teach-back).
TEACH_BACK = re.compile(
    r"\b(tell|say|explain|repeat|show) (me |it |that |this |everything |all )*(back|again)\b"
    r"|\bin (your|ur) (own )?words\b"
    r"|\b(tell|show|explain to) me how (you|u) (will|would|are going to|re going to|ll|are gonna)\b"
    r"|\b(tell|show) me what (you|u) (will|would|are going to|re going to|ll) (do|give|take)\b"
    r"|\bhow (will|would) (you|u) (give|take|mix|prepare|make|use|do|know)\b"
    r"|\bwhat (will|would) (you|u) do (at home|when|if|now|next)\b"
)

_TURNED = {
    "i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
    "we": "you", "us": "you", "our": "your", "ours": "yours",
    "your": "my", "yours": "mine", "yourself": "myself", "ur": "my", "u": "you",
    "i'm": "you're", "i'll": "you'll", "i've": "you've", "we'll": "you'll", "we're": "you're",
    "you're": "I'm", "you'll": "I'll", "you've": "I've",
}  # fmt: skip
# "you" is "me" after a preposition or a verb that acts on someone ("I will give you", "see
# you"), else "I" ("you will take", "if you see blood").
_OBJECT_AFTER = frozenset(
    "to for with at about from by on of give gave tell told show showed see help admit refer send "
    "call check examine meet visit let ask remind teach treat bring take keep want".split()
)


def said_back(text: str) -> str:
    """The trainee's words as the patient says them back: I and you, my and your turned round
    ("I will give you tablets" -> "you will give me tablets"). Nothing else is changed."""
    words = text.strip().rstrip(".!?").split()
    out: list[str] = []
    for i, word in enumerate(words):
        core = word.strip(",;:.!?")
        tail = word[len(core) :] if word.startswith(core) else ""
        low = core.lower()
        nxt = words[i + 1].strip(",;:.!?").lower() if i + 1 < len(words) else ""
        prev = words[i - 1].strip(",;:.!?").lower() if i > 0 else ""
        if low == "you":
            turned = "me" if prev in _OBJECT_AFTER or prev.endswith("ing") else "I"
            if turned == "I" and nxt in ("are", "were"):
                words[i + 1] = ("am" if nxt == "are" else "was") + words[i + 1][len(nxt) :]
        elif low in _TURNED:
            turned = _TURNED[low]
            if low == "i" and nxt in ("am", "was"):
                words[i + 1] = ("are" if nxt == "am" else "were") + words[i + 1][len(nxt) :]
        else:
            out.append(word)
            continue
        out.append(turned + tail)
    said = " ".join(out)
    return said[:1].lower() + said[1:] + "." if said and not said.startswith("I ") else said + "."
