"""One AgentClinic record converted into one case (a dict in the case format, validated)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ...cases.schema import Case
from ...patient.topics import fact_texts, tag_fact
from .diagnosis import diagnosis_names
from .examination import build_examination
from .facts import FactBuilder, finish_facts, guess_section_category
from .investigations import build_investigations
from .patient import patient_section, sex_noun
from .report import CaseImport, RecordError
from .rubric import build_rubric, coded_items, exam_aliases, test_aliases
from .speech import PARENT_WORDS
from .tables import DIAGNOSES, FACTS
from .text import cap, clean, flat_text, lower_first, section_texts, shorten, split_sentences
from .vitals import parse_vitals

if TYPE_CHECKING:
    from ...patient.embed import Embedder
from .voice import CHILD_AGE, Demographics, make_voice, parse_demographics

PACK_ID = "agentclinic-medqa"
PACK_LICENSE = "MIT (AgentClinic, 2024 Samuel Schmidgall)"

_SPECIALTIES = DIAGNOSES.specialties

_SEX_SPECIFIC = re.compile(
    r"\b(uter\w*|pregnan\w*|gestation|vagina\w*|menarche|menstrua\w*|testic\w*|scrot\w*|penile|penis|breast|"
    r"ovar\w*|cervix|gravida|postpartum|endometri\w*|adnexa\w*|prostat\w*|postmenopausal)\b",
    re.I,
)


def _specialty(dx: str, objective: str, age: int) -> str:
    for pattern, name, _ in _SPECIALTIES:
        if re.search(pattern, dx, re.I):
            return name if age >= CHILD_AGE or name in ("psychiatry",) else f"paediatrics ({name})"
    return "paediatrics" if age < CHILD_AGE else "general medicine"


def _competencies(dx: str, age: int) -> list[str]:
    """The controlled competencies of the case (cases/competencies.yaml), from its diagnosis's
    area (never the diagnosis itself), and the child-health one for a child."""
    found = [comp for pattern, _, comp in _SPECIALTIES if re.search(pattern, dx, re.I)][:1]
    if age < CHILD_AGE:
        found.append("child-health-imci")
    return found or ["test-stewardship"]  # a USMLE station trains the choice of tests at least


def case_id(number: int) -> str:
    """The id of record `number`: opaque, so that a case list never gives the diagnosis away."""
    return f"{PACK_ID}-{number:03d}"


def convert_record(
    record: dict[str, Any], number: int, line: int, encoder: Embedder | None = None
) -> tuple[dict[str, Any], CaseImport]:
    """Record `number` (on `line`) as a case dict and what was guessed or dropped on the way.
    With the sentence `encoder`, facts are tagged with history topics by meaning as well as words.

    Raises RecordError when the record does not fit the case format, or its values have
    shapes the conversion cannot read (a number where text should be...).
    """
    try:
        return _convert(record, number, line, encoder)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        # The source's schema drifts from record to record: a shape no rule expected costs that
        # record only, and the reason is reported with its line.
        raise RecordError(f"cannot convert this record ({type(err).__name__}: {err})") from err


def _convert(
    record: dict[str, Any], number: int, line: int, encoder: Embedder | None
) -> tuple[dict[str, Any], CaseImport]:
    osce = record["OSCE_Examination"]
    actor: dict[str, Any] = osce["Patient_Actor"]
    correct = clean(osce["Correct_Diagnosis"])
    dx = diagnosis_names(correct)
    info = CaseImport(record=number, line=line, case_id=case_id(number), diagnosis=correct)

    symptoms = actor.get("Symptoms") or {}
    primary = clean(symptoms.get("Primary_Symptom", ""))
    secondary = symptoms.get("Secondary_Symptoms") or []
    if isinstance(secondary, str):
        secondary = [secondary]
    history_text = " ".join(
        flat_text(actor.get(k)) for k in ("History", "Past_Medical_History", "Social_History")
    )
    demo = parse_demographics(actor["Demographics"], history_text + " " + primary)
    if not demo.sex:
        demo = Demographics(
            demo.age_years, demo.age_months, "female" if number % 2 else "male", demo.label, False
        )
        info.guesses.append(f"sex not stated in the source; set to {demo.sex}")
    elif not demo.sex_stated:
        info.guesses.append(f"sex read from the history's pronouns: {demo.sex}")
    v = make_voice(demo, history_text)

    # --- facts
    fb = FactBuilder(dx, v, info)
    fb.symptom(primary, primary=True)
    known = set()
    for key, value in actor.items():
        if key in ("Demographics", "Symptoms"):
            continue
        cat = FACTS.section_category.get(key)
        if cat is None:
            cat = guess_section_category(key)
            if cat is None:
                info.sections_skipped.append(f"Patient_Actor.{key}")
                continue
        known.add(key)
        if isinstance(value, list) and cat == "medication":
            fb.medications([str(x) for x in value], key)
            continue
        for label, text in section_texts(value):
            for sentence in split_sentences(text):
                source = f"{key}{'.' + label if label else ''}"
                fb.sentence(sentence, cat, source)
    for s in secondary:
        if isinstance(s, str):
            fb.symptom(s, primary=False)
    facts = finish_facts(fb.facts)
    info.facts = len(facts)

    # --- examination, vitals, tests
    pe = osce.get("Physical_Examination_Findings") or {}
    vitals = parse_vitals(pe.get("Vital_Signs"), info)
    if "Vital_Signs" not in pe:
        info.sections_skipped.append("Physical_Examination_Findings.Vital_Signs (absent)")
    adult = demo.age_years >= CHILD_AGE
    exams = build_examination(pe, dx, adult, info)
    tests = build_investigations(osce.get("Test_Results") or {}, dx, adult, info)

    examination = coded_items(exams, exam_aliases, kind="exam")
    investigations = coded_items(tests, test_aliases, kind="test")

    objective = clean(osce.get("Objective_for_Doctor", "")) or "Assess and diagnose the patient."
    if dx.named_in(objective):
        info.guesses.append("objective named the diagnosis; replaced with a generic one")
        objective = "Assess the patient and make the diagnosis."

    patient = patient_section(demo, v, number, actor, primary, dx, info)
    rubric = build_rubric(facts, exams, tests, vitals, dx)
    stewardship = [
        {
            "test": t.code,
            "penalty": 0.5,
            "reason": "The source case marks this test as not needed for the diagnosis.",
        }
        for t in tests
        if t.notes and t.lines and t.lines[0].startswith("Not indicated")
    ]
    if stewardship:
        rubric["stewardship"] = stewardship

    who = sex_noun(demo) if demo.label == "newborn" else f"{demo.label} {sex_noun(demo)}"
    title = f"{cap(who)} with {lower_first(shorten(primary, 70))}"
    if m := re.match(rf"^({PARENT_WORDS})\s+reports?\s+(.*)$", primary, re.I):
        title = f"{cap(who)} whose {m.group(1).lower()} is worried about {shorten(m.group(2), 60)}"
    if dx.named_in(title):
        title = f"{cap(who)} (AgentClinic case {number})"
    key_tests = [t.name for t in tests if t.abnormal][:3]
    teaching = [
        f"The diagnosis is {dx.name}{' (' + ', '.join(dx.synonyms[:2]) + ')' if dx.synonyms else ''}."
    ]
    if key_tests:
        teaching.append(f"Investigations that support it here: {', '.join(key_tests)}.")
    teaching.append(f"Case objective: {objective}")
    teaching.append(
        "Imported from AgentClinic (MedQA, USMLE style): the setting is a well-equipped hospital, "
        "not a low-resource one, and the source has no management plan."
    )
    fixed = []
    reasons = []
    all_text = json.dumps(osce, ensure_ascii=False)
    if _SEX_SPECIFIC.search(all_text):
        fixed.append("sex")
        reasons.append("sex-specific anatomy or pregnancy")
    if demo.age_years < 18:
        fixed.append("age")
        reasons.append("a child or adolescent")

    # Each fact gets its history topics from its own words, so an unscripted question on the same
    # topic finds it (and a topic no fact covers gets the taxonomy's default, never another fact).
    adult = demo.age_years >= 16
    # One encoder call for every fact of the record: far faster than one call per fact.
    texts = [fact_texts(f["answer"], f.get("questions", [])) if encoder else [] for f in facts]
    flat = encoder.encode([t for ts in texts for t in ts]) if encoder is not None and facts else None
    # The complaint's own words (its keywords: not "my main problem is"), for what "it" refers to.
    complaint = " ".join(next((f["keywords"] for f in facts if f["category"] == "presenting_complaint"), []))
    start = 0
    for fact, own in zip(facts, texts, strict=True):
        vectors = None if flat is None else flat[start : start + len(own)]
        start += len(own)
        topics = tag_fact(
            fact["category"],
            fact["answer"],
            fact["keywords"],
            fact.get("questions", []),
            adult,
            encoder,
            vectors,
            complaint,
        )
        if topics:
            fact["topics"] = topics
    case: dict[str, Any] = {
        "format": 1,
        "id": info.case_id,
        "title": title,
        "version": 1,
        "language": "en",
        "specialty": _specialty(dx.name, objective, demo.age_years),
        "competencies": _competencies(dx.name, demo.age_years),
        "difficulty": "intermediate",
        "setting": (
            "Hospital (USMLE-style OSCE station): laboratory, imaging and specialist tests are available, "
            "as in a well-equipped teaching hospital. Not adapted to low-resource settings."
        ),
        "learning_objectives": [
            objective,
            "Take a focused history, examine the relevant systems and choose investigations before naming "
            "the diagnosis.",
        ],
        "tags": ["agentclinic", "medqa", "usmle", "imported", "hospital"],
        "sources": [
            {
                "title": "AgentClinic: a multimodal agent benchmark to evaluate AI in simulated clinical "
                "environments (agentclinic_medqa.jsonl)",
                "publisher": "Schmidgall et al., AgentClinic project (MIT licence)",
                "year": 2024,
                "url": "https://github.com/SamuelSchmidgall/AgentClinic",
                "section": f"record {number} (line {line})",
            },
            {
                "title": "What disease does this patient have? A large-scale open domain question answering "
                "dataset from medical exams (MedQA)",
                "publisher": "Jin et al., Applied Sciences",
                "year": 2021,
            },
        ],
        "author": "Imported from AgentClinic (MIT)",
        "patient": patient,
        "facts": facts,
        "vitals": vitals,
        "examination": examination,
        "investigations": investigations,
        "diagnosis": {"primary": {"name": dx.name, "synonyms": list(dx.synonyms)}},
        "management": [],
        "management_note": (
            "The source case has no management plan, so this case is scored on history, examination, "
            "investigations and diagnosis only."
        ),
        "rubric": rubric,
        "teaching_points": teaching,
        "fairness": {"fixed": fixed, "reason": "; ".join(reasons)} if fixed else {"fixed": []},
    }
    try:
        Case.model_validate(case)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"cannot convert this record ({loc}: {first['msg']})") from err
    return case, info
