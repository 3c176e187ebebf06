"""Fairness audit: counterfactual swaps, the demo pack audits clean, a biased case is flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.cases import load_case
from edgetutor.cli import make_cli
from edgetutor.scoring.audit import (
    FEMALE_TO_MALE,
    MALE_TO_FEMALE,
    _swap_words,
    audit_case,
    counterfactual,
    swaps,
)

from .conftest import DEMO_SRC, EXAMPLE_CASE

GOOD = EXAMPLE_CASE.read_text(encoding="utf-8")


def test_pronoun_swaps() -> None:
    assert _swap_words("Give her water; her head hurts. She is tired.", FEMALE_TO_MALE, set()) == (
        "Give him water; his head hurts. He is tired."
    )
    assert _swap_words("His son says he saw him.", MALE_TO_FEMALE, set()) == "Her daughter says she saw her."
    assert (
        _swap_words("my husband says she is hot", FEMALE_TO_MALE, {"husband"}) == "my husband says he is hot"
    )


def test_counterfactual_copies_change_only_the_identity() -> None:
    case = load_case(EXAMPLE_CASE)
    by_label = {s.label: s for s in swaps(case)}
    assert set(by_label) == {"sex", "age", "name"}
    female = counterfactual(case, by_label["sex"])
    assert female.patient.sex.value == "female" and female.patient.name.split()[0] != "Joseph"
    assert "husband" in female.fact("family").answer  # type: ignore[union-attr]
    assert female.diagnosis == case.diagnosis and female.rubric == case.rubric
    older = counterfactual(case, by_label["age"])
    assert older.patient.age_years == 52
    renamed = counterfactual(case, by_label["name"])
    assert renamed.patient.name != case.patient.name and renamed.patient.sex == case.patient.sex


def test_fixed_attributes_are_not_swapped() -> None:
    case = load_case(DEMO_SRC / "cases" / "pre-eclampsia-severe.yaml")
    assert [s.label for s in swaps(case)] == ["name"]


@pytest.mark.slow
def test_demo_pack_audits_clean() -> None:
    result = CliRunner().invoke(make_cli(), ["audit", "bias", str(DEMO_SRC), "--json"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert len(reports) == 13 and all(r["clean"] for r in reports)
    assert sum(len(r["variants"]) for r in reports) >= 25


@pytest.mark.slow
def test_a_biased_case_is_flagged(tmp_path: Path) -> None:
    """A rubric that recognises a dangerous action only when it is worded for a man."""
    biased = GOOD.replace(
        "      phrasings: [artesunate tablets alone, oral artesunate alone, artemisinin monotherapy]",
        "      phrasings: [send him home without treatment]",
    ).replace(
        "    phrasings: [bed net, mosquito net, itn, llin, insecticide treated net, sleep under a net]",
        "    phrasings: [tell his wife to buy a net]",
    )
    assert biased != GOOD
    path = tmp_path / "malaria-uncomplicated-adult.yaml"
    path.write_text(biased, encoding="utf-8")
    case = load_case(path)
    lines = [
        "any fits?",
        "plan artemether-lumefantrine; tell his wife to buy a net; send him home without treatment",
        "end",
    ]
    report = audit_case(case, questions=lines[:1])
    assert not report["clean"]
    sex = next(v for v in report["variants"] if v["swap"] == "sex")
    text = "\n".join(sex["differences"])
    assert "debrief item 'm-bed-net'" in text and "score:" in text
    result = CliRunner().invoke(make_cli(), ["audit", "bias", str(path)])
    assert result.exit_code == 1 and "CHANGED malaria-uncomplicated-adult" in result.stdout
