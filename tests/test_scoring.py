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
from edgetutor.store import open_db

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


@pytest.fixture(scope="module")
def case() -> Case:
    return load_case(EXAMPLE_CASE)


def full(**changes: object) -> Transcript:
    t = Transcript(
        list(ALL_FACTS), list(ALL_EXAMS), ["malaria.rdt"], "uncomplicated malaria; ddx typhoid", GOOD_PLAN
    )
    for key, value in changes.items():
        setattr(t, key, value)
    return t


def test_a_complete_encounter_scores_full_marks(case: Case) -> None:
    result = score(case, full())
    assert result.total == 1.0 and result.passed and not result.critical
    assert result.domains == dict.fromkeys(
        ("history", "examination", "investigations", "diagnosis", "management"), 1.0
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
    assert "NOT YET" in text and "CRITICAL" in text and "WHO guidelines for malaria" in text


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
    with open_db() as store:
        turns = [
            {"kind": t.kind, "utterance": t.utterance, "matched": t.matched}
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
    home: Path, tmp_path: Path
) -> None:
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
