"""Checklist scoring: every rubric rule, critical errors, stewardship, typos, replay determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.cases import load_case
from edgetutor.cases.schema import Case
from edgetutor.cli import make_cli
from edgetutor.scoring.checklist import Transcript, diagnosis_matches, mentions, score, split_diagnosis
from edgetutor.scoring.debrief import debrief, format_debrief, transcript_from_turns
from edgetutor.service import open_store

from .conftest import EXAMPLE_CASE, ROOT

GOOD_PLAN = (
    "artemether-lumefantrine 4 tabs twice daily 3 days, first dose here, paracetamol, "
    "return immediately if danger signs, sleep under a mosquito net, review in 3 days"
)
ALL_FACTS = [
    "fever",
    "vomiting",
    "no-convulsions",
    "alert",
    "urine",
    "paracetamol",
    "allergies",
    "bed-net",
    "no-travel",
]
ALL_EXAMS = ["vitals", "general.appearance", "heent.eyes", "neuro.meningism"]
# Turns that show every communication skill (as recorded with each question turn).
ALL_TALK = [
    {"utterance": "Good morning, I am Amina, the clinical officer.", "acts": ["greeting", "introduction"]},
    {"utterance": "What is your name?", "acts": ["identity_name"]},
    {"utterance": "What brings you here today?", "acts": ["history"], "open": True},
    {"utterance": "May I ask you some questions?", "acts": ["consent"]},
    {"utterance": "What worries you most?", "acts": ["ice"]},
    {"utterance": "I am sorry you feel so unwell.", "acts": ["empathy"]},
    {"utterance": "So three days of fever and headache, right?", "acts": ["summary"]},
    {"utterance": "Any questions for me?", "acts": ["check_understanding"]},
    {"utterance": "I will give you tablets for three days.", "acts": ["plan_explanation"], "plain": True},
]


@pytest.fixture(scope="module")
def case() -> Case:
    return load_case(EXAMPLE_CASE)


def full(**changes: object) -> Transcript:
    t = Transcript(
        list(ALL_FACTS),
        list(ALL_EXAMS),
        ["malaria.rdt"],
        "uncomplicated malaria; ddx typhoid",
        GOOD_PLAN,
        dialogue=[dict(turn) for turn in ALL_TALK],
    )
    for key, value in changes.items():
        setattr(t, key, value)
    return t


def test_a_complete_encounter_scores_full_marks(case: Case) -> None:
    result = score(case, full())
    assert result.total == 1.0 and result.passed and not result.critical
    assert result.domains == dict.fromkeys(
        ("history", "examination", "investigations", "diagnosis", "management", "communication"), 1.0
    )


def test_each_rubric_rule(case: Case) -> None:
    weights = {i.id: i.weight for i in case.rubric.items}
    total = sum(weights.values())
    for change, item in [
        ({"asked_facts": [f for f in ALL_FACTS if f != "bed-net"]}, "h-bed-net"),
        ({"examined": [e for e in ALL_EXAMS if e != "heent.eyes"]}, "e-pallor"),
        ({"diagnosis": "typhoid fever; ddx severe malaria"}, "d-primary"),
        ({"diagnosis": "uncomplicated malaria"}, "d-differentials"),
        ({"plan": GOOD_PLAN.replace("sleep under a mosquito net, ", "")}, "m-bed-net"),
    ]:
        result = score(case, full(**change))
        missed = [i.id for i in result.items if not i.done]
        assert missed == [item], (change, missed)
        assert result.raw == round((total - weights[item]) / total, 3)


def test_missing_test_triggers_nothing_but_the_item(case: Case) -> None:
    result = score(case, full(ordered=[]))
    assert [i.id for i in result.items if not i.done] == ["t-rdt"] and result.domains["investigations"] == 0.0


def test_dangerous_action_caps_and_negation_does_not(case: Case) -> None:
    capped = score(case, full(plan=GOOD_PLAN + ", chloroquine"))
    assert [c.id for c in capped.critical] == ["chloroquine"] and capped.total == 0.4 and not capped.passed
    assert capped.raw == 1.0
    for safe in ("do not give chloroquine", "no chloroquine (resistance)", "avoid fansidar"):
        assert not score(case, full(plan=f"{GOOD_PLAN}, {safe}")).critical, safe


def test_missed_red_flag_caps(case: Case) -> None:
    result = score(case, full(asked_facts=[f for f in ALL_FACTS if f != "no-convulsions"]))
    assert [c.id for c in result.critical] == ["no-danger-sign-screen"]
    assert result.total == 0.5 and not result.passed


def test_stewardship_penalties(case: Case) -> None:
    result = score(case, full(ordered=["malaria.rdt", "micro.widal", "haem.fbc"]))
    assert [s["test"] for s in result.stewardship] == ["micro.widal", "haem.fbc"]
    total = sum(i.weight for i in case.rubric.items)
    assert result.total == round((total - 1.5) / total, 3)


@pytest.mark.parametrize(
    "written",
    ["Uncomplicated falciparum malaria", "uncomplicated malaria", "malria", "falciparum malaria",
     "P. falciparum malaria", "Plasmodium falciparum malaria", "uncomplicated falciprum malaria"],
)  # fmt: skip
def test_diagnosis_synonyms_and_typos(case: Case, written: str) -> None:
    names = [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]
    assert diagnosis_matches(written, names), written


@pytest.mark.parametrize("written", ["typhoid", "meningitis", "UTI", "", "viral fever"])
def test_wrong_diagnoses_do_not_match(case: Case, written: str) -> None:
    assert not diagnosis_matches(written, [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms])


@pytest.mark.parametrize(
    "plan",
    ["coartem", "Artemether lumefantrine", "artemether-lumefantrin 80/480", "AL 4 tabs bd x3/7", "give ACT"],
)
def test_management_phrasings_and_typos(case: Case, plan: str) -> None:
    act = next(a for a in case.management if a.id == "act")
    assert mentions(plan, act.phrasings, allow_negated=False), plan


def test_a_differential_containing_the_name_is_not_the_diagnosis(case: Case) -> None:
    assert score(case, full(diagnosis="severe malaria")).items[14].done is False
    assert score(case, full(diagnosis="malaria, uncomplicated")).items[14].done is True


def test_split_diagnosis() -> None:
    assert split_diagnosis("malaria; ddx typhoid, UTI") == ("malaria", "ddx typhoid, UTI")
    assert split_diagnosis("malaria vs typhoid") == ("malaria", "typhoid")
    assert split_diagnosis(None) == ("", "")


def test_volunteered_opening_does_not_count_as_asked(case: Case) -> None:
    turns = [
        {"kind": "opening", "utterance": "", "matched": ["fever"]},
        {"kind": "end", "utterance": "", "matched": []},
    ]
    t = transcript_from_turns(turns)
    assert t.asked_facts == [] and t.turns == 1


def test_debrief_names_the_question_that_would_have_found_a_missed_fact(case: Case) -> None:
    doc = debrief(case, score(case, full(asked_facts=["fever"])))
    vomiting = next(e for e in doc["checklist"] if e["item"].startswith("Asked about vomiting"))
    assert not vomiting["done"] and vomiting["ask"] == case.fact("vomiting").questions[0]  # type: ignore[union-attr]
    text = format_debrief(doc)
    assert text.startswith("Not yet: 50%. Critical error: Did not ask about convulsions")  # why, first
    assert "Critical error:" in text and "WHO guidelines for malaria" in text


def test_stored_attempt_replays_to_the_same_score(home: Path, tmp_path: Path) -> None:
    """Score a finished run, then re-score it from the database turns alone: identical."""
    runner = CliRunner()
    assert runner.invoke(make_cli(), ["pack", "install", str(ROOT / "casepacks")]).exit_code == 0
    script = tmp_path / "visit.txt"
    script.write_text(
        "how long have you had fever?\nany fits?\ndo you sleep under a net?\nexamine vitals\n"
        "order rdt\norder widal\ndiagnose malria; ddx typhoid\nplan coartem, no chloroquine, review in 3 days\nend\n"
    )
    result = runner.invoke(
        make_cli(), ["run", "malaria-uncomplicated-adult", "--script", str(script), "--no-model", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    case = load_case(EXAMPLE_CASE)
    with open_store() as store:
        turns = [
            {"kind": t.kind, "utterance": t.utterance, "matched": t.matched, "guard": t.guard}
            for t in store.turns(doc["attempt"])
        ]
        stored = store.score(doc["attempt"])
    assert stored is not None and stored["pack"]["digest"] == doc["pack"]["digest"]
    again = score(case, transcript_from_turns(turns), doc["score"]["pack"]).as_dict()
    for key in ("total", "raw", "passed", "domains", "items", "critical", "stewardship"):
        assert again[key] == doc["score"][key] == stored[key], key
    assert doc["score"]["scorer_version"] and doc["score"]["pack"]["digest"]
    assert [s["test"] for s in doc["score"]["stewardship"]] == ["micro.widal"]


def test_narrative_check() -> None:
    from edgetutor.scoring.narrative import check

    source = (
        "Score: 66 percent (passed).\nDone well: Asked about convulsions.\nMissed: Asked about bed net use."
    )
    assert check("Well done: you asked about convulsions. Next time, remember the bed net.", source) == []
    assert "word not in the result (emergency)" in check("Convulsions are an emergency.", source)
    assert any("number not in the result (80)" in r for r in check("You scored 80 percent.", source))
    assert "cut off mid-sentence" in check("Well done, you asked about", source)
    assert "repeats itself" in check("Well done. Well done.", source)
    assert "talks as an AI" in check("As an AI I think you did well.", source)


@pytest.mark.slow
def test_narrative_with_the_real_model_never_replaces_the_itemised_debrief(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGETUTOR_UNQUALIFIED", "1")  # the model writes the note, qualified or not
    from edgetutor.scoring.narrative import check, source_text

    runner = CliRunner()
    assert runner.invoke(make_cli(), ["pack", "install", str(ROOT / "casepacks")]).exit_code == 0
    script = tmp_path / "visit.txt"
    script.write_text("any fits?\nexamine vitals\norder rdt\ndiagnose malaria\nplan coartem\nend\n")
    result = runner.invoke(
        make_cli(), ["run", "malaria-uncomplicated-adult", "--script", str(script), "--json", "--narrative"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    story = doc["narrative"]
    assert doc["debrief"]["checklist"] and story["draft"]
    if story["text"] is None:
        assert story["reasons"] == check(story["draft"], source_text(doc["debrief"])) != []
    else:
        assert check(story["text"], source_text(doc["debrief"])) == []


@pytest.mark.parametrize(
    ("written", "names", "credited"),
    [("NSTEMI", ["STEMI", "acute myocardial infarction"], False),
     ("non-STEMI", ["STEMI"], False),
     ("STEMI (inferior)", ["STEMI"], True),
     ("complicated malaria", ["Uncomplicated malaria", "malaria"], False),
     ("cerebral malaria", ["Uncomplicated malaria", "malaria"], False),
     ("uncomplicated malaria", ["Severe malaria", "complicated malaria"], False),
     ("no pneumonia", ["pneumonia"], False),
     ("pneumonia ruled out", ["pneumonia"], False),
     ("latent TB", ["Pulmonary tuberculosis", "tuberculosis", "tb"], False),
     ("extrapulmonary TB", ["Pulmonary tuberculosis", "tuberculosis", "tb"], False),
     ("PTB", ["Pulmonary tuberculosis", "tb"], True),
     ("severe dehydration", ["Diarrhoea with some dehydration", "some dehydration"], False),
     ("pnuemonia", ["pneumonia"], True)],
)  # fmt: skip
def test_negations_and_qualifiers_are_never_fuzzy_matched(
    written: str, names: list[str], credited: bool
) -> None:
    assert diagnosis_matches(written, names) is credited, written


@pytest.mark.parametrize(
    ("plan", "planned"),
    [("ergometrine is contraindicated here", False),
     ("azithromycin because ciprofloxacin already failed", False),
     ("avoid ibuprofen, diclofenac and ciprofloxacin", False),
     ("allergic to ciprofloxacin", False),
     ("she took cipro from the chemist", False),
     ("amoxicillin instead of ciprofloxacin", False),
     ("do not stop ciprofloxacin", True),
     ("stop the syrup and give ciprofloxacin", True),
     ("ciprofloxacin 500 mg bd", True)],
)  # fmt: skip
def test_negation_and_history_scope_in_plans(plan: str, planned: bool) -> None:
    drugs = ["ergometrine", "ciprofloxacin", "cipro"]
    assert (mentions(plan, drugs, allow_negated=False) is not None) is planned, plan
    assert mentions(plan, drugs) is not None  # named either way


@pytest.mark.parametrize(
    ("text", "amount", "per_day", "days"),
    [("AL 4 tabs BD x 3/7", (4, "tablet"), 2, 3),
     ("amoxicillin 40mg/kg bd 5 days", (40, "mg/kg"), 2, 5),
     ("ceftriaxone 2g IV 12 hourly", (2, "g"), 2, None),
     ("zinc 20 mg once daily for 10-14 days", (20, "mg"), 1, (10, 14)),
     ("regular insulin 0.1 u/kg/hr", (0.1, "unit/kg/h"), None, None),
     ("artemether-lumefantrine 80/480 twice a day, 6 doses", (80, "mg"), 2, None),
     ("azithromycin 500 mg x 2 tabs daily for one week", (1000, "mg"), 1, 7),
     ("2HRZE/4HR 3 tablets daily", (3, "tablet"), 1, 180)],
)  # fmt: skip
def test_dose_parser_reads_how_trainees_write(
    text: str, amount: tuple, per_day: float | None, days: object
) -> None:
    from edgetutor.language.doses import parse, parse_unit
    from edgetutor.language.wording import tokens

    written = parse(tokens(text))
    value, unit = amount
    target = parse_unit(unit)
    assert any(
        a.lo * a.unit.factor == pytest.approx(value * target.factor) and a.unit.dim == target.dim
        and a.unit.per_kg == target.per_kg and a.unit.per == target.per
        for a in written.amounts
    ), (text, written.amounts)  # fmt: skip
    if per_day is not None:
        assert per_day in written.frequencies, (text, written.frequencies)
    if days is not None:
        lo, hi = days if isinstance(days, tuple) else (days, days)
        assert (lo, hi) in written.days or (written.then and sum(d[0] for d in written.days) == lo), written


def test_a_drug_named_without_its_dose_gets_partial_credit_and_says_why(case: Case) -> None:
    result = score(case, full(plan=GOOD_PLAN.replace("4 tabs twice daily 3 days", "for three days")))
    act = next(i for i in result.items if i.id == "m-act")
    assert not act.done and act.credit == 0.5 and "dose not stated" in act.note
    assert result.raw < 1.0 and not result.critical
    doc = debrief(case, result)
    assert "[~] Prescribed artemether-lumefantrine at the right dose" in format_debrief(doc)
    assert "dose not stated" in format_debrief(doc)


def test_a_wrong_dose_gets_no_credit_and_the_case_s_critical_error(case: Case) -> None:
    result = score(case, full(plan=GOOD_PLAN.replace("4 tabs", "2 tabs")))
    act = next(i for i in result.items if i.id == "m-act")
    assert act.credit == 0 and "2 tablet, expected 4 tablet" in act.note
    assert [c.id for c in result.critical] == ["act-wrong-dose"] and result.total <= 0.5


def test_every_credit_names_its_evidence(case: Case) -> None:
    result = score(case, full())
    assert all(i.note for i in result.items)
    assert "credit" in result.as_dict()["items"][0] and "done" in result.as_dict()["items"][0]
