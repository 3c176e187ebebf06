"""The case format, version 1 (see docs/case-format.md).

A case is one YAML file. The schema is strict (unknown keys are errors) so that a typo in an
educator's file is reported instead of silently ignored. Cross-references (rubric items that
point at facts, exams, tests...) are checked by `edgetutor.cases.lint`, not here, so that lint
can report every problem at once with a line number.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..language.doses import parse_unit

FORMAT_VERSION = 1

# Stable identifiers: lower case, digits, '_' and '-', dotted for exam/test codes
# (e.g. `resp.auscultation`). They are what scores, rubrics and results refer to.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$"

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=80)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN, max_length=80)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TOPIC_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"
TopicId = Annotated[str, StringConstraints(pattern=TOPIC_PATTERN, max_length=80)]


def competency_labels() -> dict[str, str]:
    """The controlled list of competencies (id -> label), read once from competencies.yaml."""
    return _competencies()


@cache
def _competencies() -> dict[str, str]:
    from ruamel.yaml import YAML

    text = resources.files(__package__).joinpath("competencies.yaml").read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError("competencies.yaml must map ids to labels")
    return dict(data)


def _known_competency(value: str) -> str:
    if value not in competency_labels():
        raise ValueError(f"unknown competency {value!r} (see edgetutor/cases/competencies.yaml)")
    return value


CompetencyId = Annotated[str, AfterValidator(_known_competency)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Difficulty(StrEnum):
    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"


class Sex(StrEnum):
    female = "female"
    male = "male"


class Disclosure(StrEnum):
    # Said unprompted: in the opening statement or at the first related question.
    volunteered = "volunteered"
    # Given to any question that retrieves the fact.
    on_question = "on_question"
    # Given only to a question aimed squarely at it (the patient does not see the link).
    direct_question = "direct_question"


class FactCategory(StrEnum):
    presenting_complaint = "presenting_complaint"
    hpi = "hpi"
    past_history = "past_history"
    medication = "medication"
    allergies = "allergies"
    family = "family"
    social = "social"
    obstetric = "obstetric"
    developmental = "developmental"
    immunisation = "immunisation"
    nutrition = "nutrition"
    systems_review = "systems_review"
    ice = "ice"  # the patient's ideas, concerns and expectations


class Domain(StrEnum):
    history = "history"
    examination = "examination"
    investigations = "investigations"
    diagnosis = "diagnosis"
    management = "management"
    # How the trainee talked with the patient, scored from the dialogue acts of their turns.
    communication = "communication"


class Skill(StrEnum):
    """Communication skills a rubric item can point at (see edgetutor/scoring/communication.py)."""

    introduction = "introduction"  # introduced self and role
    identity = "identity"  # confirmed the patient's name or age
    open_question = "open_question"  # opened with an open question
    consent = "consent"  # asked permission to ask or examine
    ice = "ice"  # explored ideas, concerns, expectations
    empathy = "empathy"  # acknowledged feelings or reassured
    summary = "summary"  # summarised back
    understanding = "understanding"  # checked understanding or invited questions
    plain_plan = "plain_plan"  # explained the plan in plain words


class CostTier(StrEnum):
    free = "free"
    low = "low"
    medium = "medium"
    high = "high"


class Source(Strict):
    title: Text
    publisher: Text
    year: int = Field(ge=1950, le=2100)
    url: str | None = None
    section: str | None = None


class Persona(Strict):
    personality: Text
    speech_style: Text
    literacy: Literal["low", "medium", "high"]
    emotional_state: Text
    ideas: Text
    concerns: Text
    expectations: Text


class Informant(Strict):
    """Who answers for the patient (a parent for a child, a relative for a confused adult)."""

    name: Text
    relation: Text


class Patient(Strict):
    name: Text
    age_years: int = Field(ge=0, le=120)
    age_months: int | None = Field(default=None, ge=0, le=11)
    sex: Sex
    occupation: Text
    informant: Informant | None = None
    # Pregnant now: history topics then answer with their pregnancy variants ("my periods stopped").
    pregnant: bool = False
    opening_statement: Text
    # What the patient says to a question the case has no fact for. Authored, so the
    # patient can never be pushed into inventing a symptom.
    unknown_answer: Text
    persona: Persona


class Fact(Strict):
    id: Id
    category: FactCategory
    # The authored first-person answer: always available, even with no model at all.
    answer: Text
    # Words and short phrases (lay terms included) that ask for this fact.
    keywords: list[Phrase] = Field(min_length=1)
    # Whole example questions, the way a trainee would ask them.
    questions: list[Phrase] = Field(default_factory=list)
    disclosure: Disclosure = Disclosure.on_question
    critical: bool = False
    # A pertinent negative ("No, I have not been coughing"). The guard uses this to catch a
    # reply that flips it.
    negative: bool = False
    # Standard history topics this fact answers (ids from edgetutor/patient/history_topics.yaml).
    # A question about a topic no fact answers gets the topic's normal default answer.
    topics: list[TopicId] = Field(default_factory=list)


class TopicAnswer(Strict):
    """A case's own answer to a standard topic that no fact covers: replaces the default
    ("I don't know", or a different normal answer). A positive finding belongs in a fact."""

    topic: TopicId
    answer: Text


class Vitals(Strict):
    """Vital signs are data, never generated. Omit what the setting would not measure."""

    temperature_c: float | None = Field(default=None, ge=25, le=45)
    heart_rate: int | None = Field(default=None, ge=0, le=300)
    resp_rate: int | None = Field(default=None, ge=0, le=120)
    bp_systolic: int | None = Field(default=None, ge=0, le=300)
    bp_diastolic: int | None = Field(default=None, ge=0, le=200)
    spo2: int | None = Field(default=None, ge=0, le=100)
    weight_kg: float | None = Field(default=None, gt=0, le=400)
    height_cm: float | None = Field(default=None, gt=0, le=250)
    muac_mm: int | None = Field(default=None, gt=0, le=400)
    glucose_mmol_l: float | None = Field(default=None, ge=0, le=80)
    # Free text for what the numbers cannot say (imported cases with prose vitals).
    note: str | None = None

    @model_validator(mode="after")
    def _bp_pair(self) -> Vitals:
        if (self.bp_systolic is None) != (self.bp_diastolic is None):
            raise ValueError("give both bp_systolic and bp_diastolic, or neither")
        if self.bp_systolic is not None and self.bp_diastolic is not None:
            if self.bp_diastolic >= self.bp_systolic:
                raise ValueError("bp_diastolic must be lower than bp_systolic")
        return self


class Finding(Strict):
    code: Code
    name: Text
    aliases: list[Phrase] = Field(default_factory=list)
    finding: Text
    abnormal: bool = False


class Investigation(Strict):
    code: Code
    name: Text
    aliases: list[Phrase] = Field(default_factory=list)
    result: Text
    abnormal: bool = False
    # Whether the case's setting really has this test. An unavailable test is refused in the
    # encounter with `unavailable_note` ("Only at the district hospital, 2 days away").
    available: bool
    unavailable_note: str | None = None
    cost: CostTier
    cost_usd: float | None = Field(default=None, ge=0)
    turnaround_minutes: int = Field(ge=0)


class NamedDiagnosis(Strict):
    name: Text
    synonyms: list[Phrase] = Field(default_factory=list)
    # Near misses that are wrong although they look alike ("NSTEMI" for a STEMI): never credited.
    not_synonyms: list[Phrase] = Field(default_factory=list)
    icd10: Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")] | None = None


class Diagnosis(Strict):
    primary: NamedDiagnosis
    differentials: list[NamedDiagnosis] = Field(default_factory=list)


class DoseRange(Strict):
    """An accepted range; `unit` for amounts ("mg", "mg/kg", "tablet", "unit/kg/h", "mL/kg")."""

    min: float = Field(ge=0)
    max: float = Field(ge=0)
    unit: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DoseRange:
        if self.max < self.min:
            raise ValueError("max is below min")
        if self.unit is not None:
            parse_unit(self.unit)  # the unit words live with the dose reader
        return self


DoseField = Literal["frequency_per_day", "days", "hours"]


class Regimen(Strict):
    """One accepted way of giving a drug to this patient."""

    # Accepted amounts per dose (or per hour or per day, as the unit says); any one will do.
    dose: list[DoseRange] = Field(min_length=1)
    frequency_per_day: DoseRange | None = None
    days: DoseRange | None = None
    hours: DoseRange | None = None  # over how long ("ORS over 4 hours")
    percent: DoseRange | None = None  # solution strength, checked when written ("10% glucose")
    # Words one of which must be written with the drug for this regimen to apply ("rectal").
    route: list[Phrase] = Field(default_factory=list)
    tablet_mg: float | None = Field(default=None, gt=0)  # mg of the first component in a tablet
    # Checked when written, but not needed for full credit (a pre-referral dose's frequency).
    optional: list[DoseField] = Field(default_factory=list)

    @model_validator(mode="after")
    def _units(self) -> Regimen:
        for r in self.dose:
            if not r.unit:
                raise ValueError("each dose range needs a unit")
        for name in ("frequency_per_day", "days", "hours", "percent"):
            r = getattr(self, name)
            if r is not None and r.unit:
                raise ValueError(f"{name} takes no unit")
        return self


class DrugDose(Strict):
    """The dose a management action expects for one drug. Full credit needs a written dose (and
    each of frequency, days, hours the regimen lists) in range; the drug named without them gets
    `partial_credit`; a dose out of range gets none and raises `wrong_dose_error`."""

    drug: Text
    # The action's phrasings that name this drug (empty: all of them).
    names: list[Phrase] = Field(default_factory=list)
    regimens: list[Regimen] = Field(min_length=1)
    # Phrasings that state a whole regimen by its name ("plan b": ORS 75 mL/kg over 4 hours).
    named_regimens: list[Phrase] = Field(default_factory=list)
    partial_credit: float = Field(default=0.5, ge=0, lt=1)
    wrong_dose_error: Id | None = None


class NearPhrasings(Strict):
    """Phrasings that count only with one of `near` in the same sentence ("TPT" is right for
    the household contacts, never for the patient with active TB)."""

    phrasings: list[Phrase] = Field(min_length=1)
    near: list[Phrase] = Field(min_length=1)


class Action(Strict):
    id: Id
    action: Text
    phrasings: list[Phrase] = Field(min_length=1)
    phrasings_near: list[NearPhrasings] = Field(default_factory=list)
    critical: bool = False
    dose: list[DrugDose] = Field(default_factory=list)


TARGET_KINDS = ("fact", "exam", "test", "diagnosis", "management", "topic", "communication")


class RubricItem(Strict):
    """One checklist line. Points at exactly one thing the trainee must do."""

    id: Id
    description: Text
    domain: Domain
    weight: float = Field(gt=0, le=100)
    fact: Id | None = None
    exam: Code | None = None
    test: Code | None = None
    # "primary": the trainee named the diagnosis; "differentials": they named the expected ones.
    diagnosis: Literal["primary", "differentials"] | None = None
    management: Id | None = None
    # A standard history topic asked (whatever the answer: the case's fact or the default).
    topic: TopicId | None = None
    communication: Skill | None = None

    @model_validator(mode="after")
    def _one_target(self) -> RubricItem:
        targets = [getattr(self, k) for k in TARGET_KINDS if getattr(self, k)]
        if len(targets) != 1:
            raise ValueError(f"a rubric item points at exactly one of {', '.join(TARGET_KINDS)}")
        return self

    @property
    def target(self) -> tuple[str, str]:
        for kind in TARGET_KINDS:
            value = getattr(self, kind)
            if value:
                return kind, value
        raise AssertionError("unreachable: validated to have one target")


class CriticalError(Strict):
    """A dangerous action (matched in the plan), a missed rubric item, or a wrong dose (named by
    a management action's `dose.wrong_dose_error`): it caps or fails the score."""

    id: Id
    description: Text
    kind: Literal["dangerous_action", "missed_item", "wrong_dose"]
    phrasings: list[Phrase] = Field(default_factory=list)  # for dangerous_action
    # For dangerous_action: not this error when one of these is in the same sentence (TB
    # preventive treatment "for the household contacts" is right; for the patient it is not).
    unless_near: list[Phrase] = Field(default_factory=list)
    item: Id | None = None  # rubric item id, for missed_item
    # The highest score (0..1) the attempt can get; 0 means it fails outright.
    cap: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _kind_fields(self) -> CriticalError:
        if self.kind == "dangerous_action" and not self.phrasings:
            raise ValueError("a dangerous_action needs phrasings")
        if self.kind == "missed_item" and not self.item:
            raise ValueError("a missed_item needs item (a rubric item id)")
        return self


class Stewardship(Strict):
    """A test that counts against the trainee here: unavailable, unnecessary or too costly."""

    test: Code
    penalty: float = Field(gt=0, le=100)
    reason: Text


class Rubric(Strict):
    pass_mark: float = Field(ge=0, le=1)
    items: list[RubricItem] = Field(min_length=1)
    critical_errors: list[CriticalError] = Field(default_factory=list)
    stewardship: list[Stewardship] = Field(default_factory=list)


class Fairness(Strict):
    """Patient attributes that are clinically meaningful for this case (pregnancy, age-specific
    doses): the bias audit does not swap them."""

    fixed: list[Literal["sex", "age", "name"]] = Field(default_factory=list)
    reason: str | None = None


class Case(Strict):
    format: Literal[1]
    id: Id
    title: Text
    version: int = Field(ge=1)
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$")]
    specialty: Text
    difficulty: Difficulty
    setting: Text
    learning_objectives: list[Text] = Field(min_length=1)
    tags: list[Phrase] = Field(default_factory=list)
    # What the case trains, from the controlled list in competencies.yaml (progress and the hub
    # count these, never the free-text tags, which often name the diagnosis).
    competencies: list[CompetencyId] = Field(default_factory=list, max_length=5)
    sources: list[Source] = Field(min_length=1)
    author: Text
    patient: Patient
    facts: list[Fact] = Field(min_length=1)
    # Standard history topics this case answers differently from the default, without a fact.
    topic_answers: list[TopicAnswer] = Field(default_factory=list)
    vitals: Vitals
    examination: list[Finding] = Field(default_factory=list)
    investigations: list[Investigation] = Field(default_factory=list)
    diagnosis: Diagnosis
    management: list[Action] = Field(default_factory=list)
    # Imported cases may have no management plan: they must say so instead of leaving it empty.
    management_note: str | None = None
    rubric: Rubric
    teaching_points: list[Text] = Field(min_length=1)
    fairness: Fairness = Field(default_factory=Fairness)

    def fact(self, fact_id: str) -> Fact | None:
        return next((f for f in self.facts if f.id == fact_id), None)

    @property
    def age_label(self) -> str:
        if self.patient.age_years == 0:
            return f"{self.patient.age_months or 0} months"
        if self.patient.age_years < 5 and self.patient.age_months:
            return f"{self.patient.age_years} y {self.patient.age_months} m"
        return f"{self.patient.age_years}"


def slug(text: str) -> str:
    """A stable id from free text (`"Chest X-ray"` -> `chest-x-ray`)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "x"
