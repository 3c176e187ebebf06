"""The importer's lookup tables: YAML files next to this module, read and validated once.

Rules are code; the words and names they look up are data, so an educator can add a lab name,
a lay synonym or an examination heading without touching Python. Every file is checked when the
importer is first imported: unknown keys, wrong types, regular expressions that do not compile
and codes that point nowhere fail at once with the file and field named, never half-way
through an import.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ...cases.codes import EXAM_CODES, TEST_CODES
from ...cases.schema import CompetencyId


def _split(value: Any) -> Any:
    """A word list is written as one whitespace-separated string: easier to read and extend."""
    return value.split() if isinstance(value, str) else value


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"not a valid regular expression ({err}): {pattern!r}") from err
    return pattern


Regex = Annotated[str, AfterValidator(_regex)]
Words = Annotated[frozenset[str], BeforeValidator(_split)]
WordList = Annotated[tuple[str, ...], BeforeValidator(_split)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(NamedTuple):
    """A local code's display name and aliases (the same shape as the code catalogues)."""

    name: str
    aliases: tuple[str, ...]


def _named(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"name", "aliases"}:
        return (value["name"], value["aliases"])
    raise ValueError("expected exactly the keys name and aliases")


NamedEntry = Annotated[Named, BeforeValidator(_named)]


class Language(_Table):
    proper_names: Words
    abbreviations: Words
    base_verbs: WordList
    adverbs: Words
    object_followers: Words
    other_people: dict[str, str]
    finite_verbs: Words
    ing_adjectives: Words
    past_verbs: Words
    prepositions: Words
    dependent_words: Words
    modifiers: Words
    stop_words: Words
    lay_terms: dict[str, list[str]]

    @model_validator(mode="after")
    def _sexes(self) -> Language:
        bad = {k: v for k, v in self.other_people.items() if v not in ("female", "male", "")}
        if bad:
            raise ValueError(f"other_people: sex must be female, male or '' (got {bad})")
        return self


class Diagnoses(_Table):
    known_synonyms: dict[str, tuple[str, ...]]
    generic_words: Words
    specialties: list[tuple[Regex, str, CompetencyId]]


class Patient(_Table):
    female_names: WordList
    male_names: WordList
    surnames: WordList
    jobs: list[Regex]

    @property
    def jobs_pattern(self) -> str:
        """The jobs as one alternation, for the occupation patterns."""
        return "|".join(self.jobs)


class Facts(_Table):
    category_prefix: dict[str, str]
    section_category: dict[str, str]
    section_category_guesses: list[tuple[str, str]]
    recategorise: Words
    gerunds: Words

    @model_validator(mode="after")
    def _categories(self) -> Facts:
        used = {
            *self.section_category.values(),
            *(c for _, c in self.section_category_guesses),
            *self.recategorise,
        }
        if unknown := used - set(self.category_prefix):
            raise ValueError(f"categories without an id prefix in category_prefix: {sorted(unknown)}")
        return self


class Range(_Table):
    pattern: Regex
    low: float
    high: float
    unit: str


class Findings(_Table):
    vital_limits: dict[str, tuple[float, float]]
    ranges: list[Range]
    abnormal_words: list[Regex]
    pathology_keys: list[Regex]

    @model_validator(mode="after")
    def _limits(self) -> Findings:
        fields = {"temperature_c", "heart_rate", "resp_rate", "bp_systolic", "spo2", "weight_kg", "height_cm"}
        if set(self.vital_limits) != fields:
            raise ValueError(f"vital_limits must give exactly {sorted(fields)}")
        for name, (lo, hi) in self.vital_limits.items():
            if lo >= hi:
                raise ValueError(f"vital_limits.{name}: low must be below high")
        for r in self.ranges:
            if r.low >= r.high:
                raise ValueError(f"ranges {r.pattern!r}: low must be below high")
        return self

    @property
    def abnormal_regex(self) -> re.Pattern[str]:
        return re.compile(r"\b(" + "|".join(self.abnormal_words) + r")\b", re.I)

    @property
    def pathology_regex(self) -> re.Pattern[str]:
        return re.compile("|".join(self.pathology_keys), re.I)

    @property
    def compiled_ranges(self) -> list[tuple[re.Pattern[str], float, float, str]]:
        return [(re.compile(r.pattern), r.low, r.high, r.unit) for r in self.ranges]


class SystemRules(_Table):
    default: str | None
    rules: list[tuple[Regex, str]]


class Examination(_Table):
    section_system: dict[str, str]
    system_guesses: list[tuple[str, str]]
    system_rules: dict[str, SystemRules]
    system_prefix: dict[str, str]
    local_exams: dict[str, NamedEntry]
    section_aliases: dict[str, tuple[str, ...]]
    generic_labels: frozenset[str]
    vague_aliases: frozenset[str]

    @model_validator(mode="after")
    def _codes(self) -> Examination:
        if bad := [c for c in self.local_exams if not c.startswith("exam.") or c in EXAM_CODES]:
            raise ValueError(f"local_exams: codes must start with exam. and not be catalogue codes: {bad}")
        known = set(EXAM_CODES) | set(self.local_exams)
        codes = [c for r in self.system_rules.values() for c in (r.default, *(code for _, code in r.rules))]
        codes += list(self.section_aliases)
        if bad := sorted({c for c in codes if c is not None and c not in known}):
            raise ValueError(f"examination codes in neither the catalogue nor local_exams: {bad}")
        systems = {*self.section_system.values(), *(s for _, s in self.system_guesses), *self.system_prefix}
        if bad := sorted(systems - set(self.system_rules)):
            raise ValueError(f"systems without system_rules: {bad}")
        return self


class Investigations(_Table):
    test_names: dict[str, str | None]
    local_tests: dict[str, NamedEntry]
    containers: frozenset[str]
    skip_tests: frozenset[str]
    generic_child: frozenset[str]
    turnaround: list[tuple[Regex, int]]

    @model_validator(mode="after")
    def _codes(self) -> Investigations:
        if bad := [c for c in self.local_tests if not c.startswith("x.")]:
            raise ValueError(f"local_tests: codes must start with x. (case-local): {bad}")
        known = set(TEST_CODES) | set(self.local_tests)
        if bad := sorted({c for c in self.test_names.values() if c is not None and c not in known}):
            raise ValueError(f"test_names: codes in neither the catalogue nor local_tests: {bad}")
        return self


def plain_key(key: str) -> str:
    """A key name without case, spaces or punctuation: how records.yaml's names are compared."""
    return re.sub(r"[^a-z0-9]", "", key.lower())


class Records(_Table):
    """records.yaml: per level of a record, its usual key names and other names for them."""

    record: dict[str, tuple[str, ...]]
    osce: dict[str, tuple[str, ...]]
    actor: dict[str, tuple[str, ...]]
    symptoms: dict[str, tuple[str, ...]]
    exam: dict[str, tuple[str, ...]]

    @model_validator(mode="after")
    def _one_meaning(self) -> Records:
        for level, names in self.model_dump().items():
            spellings = [plain_key(n) for usual, others in names.items() for n in (usual, *others)]
            if twice := sorted({n for n in spellings if spellings.count(n) > 1}):
                raise ValueError(f"{level}: names given for two fields, or twice: {twice}")
        return self

    def usual(self, level: str) -> dict[str, str]:
        """{plain name: usual key} for one level, every spelling included."""
        names: dict[str, tuple[str, ...]] = getattr(self, level)
        return {plain_key(n): usual for usual, others in names.items() for n in (usual, *others)}


T = TypeVar("T", bound=_Table)


def load(name: str, model: type[T]) -> T:
    """Read and validate `name` (a YAML file in this package). Raises ValueError naming the file."""
    resource = resources.files(__package__).joinpath(name)
    try:
        data = YAML(typ="safe").load(resource.read_text(encoding="utf-8"))
        return model.model_validate(data)
    except (OSError, YAMLError) as err:
        raise ValueError(f"{name}: cannot read the importer's table: {err}") from err
    except ValidationError as err:
        raise ValueError(f"{name}: invalid importer table: {err}") from err


LANGUAGE = load("language.yaml", Language)
DIAGNOSES = load("diagnoses.yaml", Diagnoses)
PATIENT = load("patient.yaml", Patient)
FACTS = load("facts.yaml", Facts)
FINDINGS = load("findings.yaml", Findings)
EXAMINATION = load("examination.yaml", Examination)
INVESTIGATIONS = load("investigations.yaml", Investigations)
RECORDS = load("records.yaml", Records)
