"""The standard history taxonomy: hundreds of topics every case answers, most with a normal default.

Authors write only what is abnormal or specific to a case (its facts, each tagged with the topics
it answers); every other topic a trainee asks about gets the topic's default answer for a person
without that problem, in the right voice: the adult patient, a caregiver speaking about a child,
a pregnant woman, or a man asked an obstetric question. A case can replace a default with its own
answer (`topic_answers:`), for example "I don't know" where the normal answer would be wrong.

The topics are data (`history_topics.yaml` next to this module), loaded and validated once.
Matching a trainee's words to topics is the patient's job (edgetutor/patient/topics.py).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..errors import EdgeTutorError
from .schema import TOPIC_PATTERN, Case, Sex

TAXONOMY_FILE = "history_topics.yaml"
SECTIONS = (
    "presenting_complaint", "hpi", "systems_review", "past_history", "medication", "allergies",
    "family", "social", "setting", "obstetric", "paediatric", "ice",
)  # fmt: skip
# The child's words in a caregiver's default answer ("No, {he} has not been coughing").
PLACEHOLDERS = frozenset({"he", "him", "his", "He", "His", "name"})

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    adult: Short | None = None
    caregiver: Short | None = None
    pregnancy: Short | None = None
    male: Short | None = None


class Topic(_Strict):
    id: Annotated[str, StringConstraints(pattern=TOPIC_PATTERN, max_length=80)]
    section: Literal[SECTIONS]  # type: ignore[valid-type]
    label: Short
    asks: list[Short] = Field(min_length=1)
    questions: list[Short] = Field(min_length=1)
    answerer: list[Literal["patient", "caregiver"]] = Field(min_length=1)
    default: Defaults
    # Topics whose facts answer this one when the case has no fact of its own: the same thing
    # the other way round (diarrhoea / constipation) or more narrowly (breathlessness / on
    # exertion). Their facts are said instead of this topic's "No, ...", which would contradict them.
    see_also: list[Annotated[str, StringConstraints(pattern=TOPIC_PATTERN, max_length=80)]] = []


class TaxonomyFile(_Strict):
    version: int = Field(ge=1)
    topics: list[Topic] = Field(min_length=1)


class TaxonomyError(EdgeTutorError):
    """The shipped taxonomy file is missing or invalid (a packaging bug, never user input)."""


class Taxonomy:
    """The validated topics of one taxonomy file (immutable once built)."""

    def __init__(self, version: int, topics: tuple[Topic, ...], digest: str) -> None:
        self.version = version
        self.topics = topics
        self.digest = digest  # sha256 of the file: keys the embedding cache
        self._by_id = {t.id: t for t in topics}
        self.ids = frozenset(self._by_id)

    def get(self, topic_id: str) -> Topic | None:
        return self._by_id.get(topic_id)


def parse_taxonomy(text: str, origin: str = TAXONOMY_FILE) -> Taxonomy:
    """Validate a taxonomy document. Raises TaxonomyError naming the first problem."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
        parsed = TaxonomyFile.model_validate(data)
    except YAMLError as err:
        raise TaxonomyError(f"{origin}: not valid YAML: {str(err).splitlines()[0]}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TaxonomyError(f"{origin}: {where}: {first['msg']}") from err
    seen: set[str] = set()
    for topic in parsed.topics:
        if topic.id in seen:
            raise TaxonomyError(f"{origin}: duplicate topic id {topic.id!r}")
        seen.add(topic.id)
        if "patient" in topic.answerer and not topic.default.adult:
            raise TaxonomyError(f"{origin}: {topic.id}: a patient-answered topic needs default.adult")
        if "caregiver" in topic.answerer and not topic.default.caregiver:
            raise TaxonomyError(f"{origin}: {topic.id}: a caregiver-answered topic needs default.caregiver")
        for variant, answer in topic.default.model_dump().items():
            bad = {m for m in re.findall(r"\{([^{}]*)\}", answer or "")} - PLACEHOLDERS
            if bad:
                raise TaxonomyError(
                    f"{origin}: {topic.id}: default.{variant}: unknown placeholder {sorted(bad)}"
                )
    for topic in parsed.topics:
        unknown = [t for t in topic.see_also if t not in seen or t == topic.id]
        if unknown:
            raise TaxonomyError(f"{origin}: {topic.id}: see_also names an unknown topic {unknown[0]!r}")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Taxonomy(parsed.version, tuple(parsed.topics), digest)


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """The shipped taxonomy, loaded once per process. Raises TaxonomyError if it is broken."""
    try:
        text = resources.files(__package__).joinpath(TAXONOMY_FILE).read_text(encoding="utf-8")
    except OSError as err:
        raise TaxonomyError(f"cannot read the history taxonomy: {err}") from err
    return parse_taxonomy(text)


# -- answering ---------------------------------------------------------------------------------


def _child_words(case: Case) -> dict[str, str]:
    female = case.patient.sex == Sex.female
    he, him, his = ("she", "her", "her") if female else ("he", "him", "his")
    first = case.patient.name.split()[0]
    return {"he": he, "him": him, "his": his, "He": he.title(), "His": his.title(), "name": first}


def voice(case: Case) -> str:
    """Who answers history questions in this case: 'caregiver' (an informant) or 'patient'."""
    return "caregiver" if case.patient.informant is not None else "patient"


# What a case (an importer) writes when its source gives no occupation: the patient then answers
# as for any topic the case does not cover, never "I am a not stated".
_UNSTATED_WORK = frozenset({"", "not stated", "unknown", "not known", "n/a", "none stated"})
# Words that describe a state, not a job: "I am unemployed", not "I am an unemployed".
_WORK_STATES = frozenset({"unemployed", "retired", "self-employed", "disabled", "jobless"})


def occupation_stated(case: Case) -> bool:
    """Whether the case says what the patient does for work."""
    return case.patient.occupation.strip().rstrip(".").lower() not in _UNSTATED_WORK


def work_sentence(case: Case) -> str | None:
    """The patient's own words for their occupation ("I am an engineer", "I work at a bank"),
    or None when the case does not state it."""
    job = re.sub(r"^(a|an)\s+", "", case.patient.occupation.strip(), flags=re.I).rstrip(".")
    low = job.lower()
    if not occupation_stated(case):
        return None
    if low.startswith("works "):
        return f"I work {job[6:]}."
    if low == "none" or low.startswith("none "):
        return "I don't work at the moment."
    if low in _WORK_STATES:
        return f"I am {job}."
    return f"I am {'an' if low[:1] in 'aeiou' else 'a'} {job}."


def default_answer(case: Case, topic: Topic) -> str:
    """The topic's normal answer in this case's voice (the case's own answer if it has one)."""
    own = next((a.answer for a in case.topic_answers if a.topic == topic.id), None)
    if own:
        return own
    d = topic.default
    if topic.id == "soc.occupation" and voice(case) == "patient" and (said := work_sentence(case)):
        return said
    if voice(case) == "caregiver":
        text = d.caregiver or ""
        if not text:
            if topic.section == "obstetric":
                # The caregiver's own pregnancy or breastfeeding: not something the case knows.
                return f"I am well myself. It is {_child_words(case)['name']} who is sick."
            # Only the patient could say, and the patient is a child (a toddler's alcohol use).
            return f"{_child_words(case)['He']} is too young for that."
        return text.format(**_child_words(case))
    if case.patient.sex == Sex.male and d.male:
        return d.male
    if d.pregnancy and case.patient.pregnant:
        return d.pregnancy
    return d.adult or d.caregiver or "I'm not sure."


MAIN_COMPLAINT = "hpc.main_complaint"
ADULT_AGE = 16


def applies(case: Case, topic: Topic) -> bool:
    """Whether a topic can be asked of this patient: child topics (feeding, milestones) not of
    an adult, adult ones (adult vaccinations, work exposures) not of a child, and pregnancy
    topics that have no answer for a man not of a man ("how many children do you have?" is then
    about his household, not his pregnancies)."""
    adult = case.patient.age_years >= ADULT_AGE
    if topic.section == "obstetric" and case.patient.sex == Sex.male and not topic.default.male:
        return False
    if topic.section == "paediatric":
        return not adult
    if "adult" in topic.id:
        return adult
    return True


def covered_topics(case: Case) -> dict[str, list[str]]:
    """Topic id -> the ids of the case's facts that answer it. "What brings you here?" is always
    answered by the presenting complaint, tagged or not."""
    out: dict[str, list[str]] = {}
    for fact in case.facts:
        for t in fact.topics:
            out.setdefault(t, []).append(fact.id)
    if MAIN_COMPLAINT not in out:
        main = [f.id for f in case.facts if f.category.value == "presenting_complaint"]
        if main:
            out[MAIN_COMPLAINT] = main
    return out
