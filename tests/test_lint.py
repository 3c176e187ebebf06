"""`edgetutor pack lint`: every problem with file, field path and line number."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.cases.lint import lint_case_text, lint_source
from edgetutor.cases.loader import parse_case_text
from edgetutor.cli import make_cli
from edgetutor.errors import CaseFormatError

from .conftest import EXAMPLE_CASE, tree_state, write_source

GOOD = EXAMPLE_CASE.read_text(encoding="utf-8")


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth occurrence of needle in text."""
    starts = [m.start() for m in re.finditer(re.escape(needle), text)]
    return text.count("\n", 0, starts[nth]) + 1


def problems_for(text: str) -> list[str]:
    _, problems = lint_case_text(text, "case.yaml")
    return [str(p) for p in problems]


def test_example_case_is_clean() -> None:
    assert problems_for(GOOD) == []


def test_unknown_fact_in_rubric_has_line_and_path() -> None:
    text = GOOD.replace("fact: bed-net}", "fact: bednet}")
    line = line_of(text, "fact: bednet}")
    assert problems_for(text) == [f"case.yaml:{line}: error: rubric.items[7].fact: unknown fact 'bednet'"]


def test_unknown_exam_test_management_and_items() -> None:
    text = (
        GOOD.replace("exam: heent.eyes}", "exam: eyes.pallor}")
        .replace("test: malaria.rdt}", "test: malaria.pcr}")
        .replace("management: act}", "management: acts}")
        .replace("item: h-convulsions", "item: h-fits")
        .replace("  - test: micro.widal", "  - test: micro.widall")
    )
    found = "\n".join(problems_for(text))
    assert "rubric.items[11].exam: unknown exam 'eyes.pallor'" in found
    assert "rubric.items[13].test: unknown test 'malaria.pcr'" in found
    assert "rubric.items[16].management: unknown management 'acts'" in found
    assert "rubric.critical_errors[2].item: unknown rubric item 'h-fits'" in found
    assert "rubric.stewardship[0].test: unknown test 'micro.widall'" in found


def test_duplicate_codes_and_ids() -> None:
    text = GOOD.replace("code: haem.hb", "code: malaria.rdt").replace("  - id: chills", "  - id: fever")
    found = problems_for(text)
    assert (
        f"case.yaml:{line_of(text, 'code: malaria.rdt', 1)}: error: investigations[2].code: "
        "duplicate code 'malaria.rdt' (first at [0])"
    ) in found
    assert (
        f"case.yaml:{line_of(text, '- id: fever', 1)}: error: facts[1].id: duplicate id 'fever' (first at [0])"
        in found
    )


def test_diagnosis_synonym_as_keyword() -> None:
    text = GOOD.replace("keywords: [fever, hot, temperature", "keywords: [Malaria, hot, temperature")
    (found,) = problems_for(text)
    assert found == (
        f"case.yaml:{line_of(text, '[Malaria, hot')}: error: facts[0].keywords[0]: "
        "keyword 'Malaria' is also a diagnosis name ('malaria')"
    )


def test_alias_naming_two_exams() -> None:
    text = GOOD.replace("aliases: [heart sounds, cardiovascular", "aliases: [chest, cardiovascular")
    assert any(
        "examination[4].aliases[0]: 'chest' also names 'resp.auscultation'" in p for p in problems_for(text)
    )


def test_patient_naming_the_diagnosis_is_a_warning() -> None:
    text = GOOD.replace("It comes and goes, mostly in the evening.", "I think it is malaria.")
    (found,) = problems_for(text)
    assert "warning: facts[0].answer: the patient names the diagnosis ('malaria')" in found


def test_schema_errors_with_lines() -> None:
    text = GOOD.replace("age_years: 32", "age_years: old").replace("  sex: male", "  sex: man")
    text = text.replace(
        "    critical: true\n  - id: chills", "    critical: true\n    mood: sad\n  - id: chills"
    )
    found = problems_for(text)
    assert f"case.yaml:{line_of(text, 'age_years: old')}: error: patient.age_years:" in found[0]
    assert any(
        f"case.yaml:{line_of(text, 'sex: man')}: error: patient.sex: Input should be" in p for p in found
    )
    assert any(
        f"case.yaml:{line_of(text, 'mood: sad')}: error: facts[0].mood: unknown field" in p for p in found
    )


def test_missing_required_field_points_at_parent() -> None:
    text = GOOD.replace("  occupation: maize farmer\n", "")
    (found,) = problems_for(text)
    assert found == f"case.yaml:{line_of(text, 'patient:')}: error: patient.occupation: Field required"


def test_yaml_syntax_error_has_a_line() -> None:
    text = GOOD.replace("title: Fever and chills after the rains", "title: [unclosed")
    (found,) = problems_for(text)
    assert re.match(r"case\.yaml:\d+: error: YAML syntax error", found), found


def test_management_missing_without_note() -> None:
    start = GOOD.index("management:\n  - id: act")
    end = GOOD.index("rubric:\n")
    text = GOOD[:start] + "management: []\n" + GOOD[end:]
    text = re.sub(r"    - \{id: m-[^\n]*\n", "", text)
    text = text.replace("    - id: no-danger-sign-screen", "    - id: no-danger-sign-screen")
    found = problems_for(text)
    assert any("management: no management actions" in p for p in found)


def test_parse_case_text_raises_one_line_error() -> None:
    with pytest.raises(CaseFormatError) as info:
        parse_case_text(GOOD.replace("age_years: 32", "age_years: -4"), "x.yaml")
    assert "\n" not in str(info.value)
    assert re.match(
        r"x\.yaml:\d+: error: patient\.age_years: Input should be greater than or equal to 0", str(info.value)
    )


def test_lint_source_checks_pack_yaml_and_file_names(tmp_path: Path) -> None:
    src = write_source(tmp_path / "src")
    (src / "pack.yaml").write_text("id: Bad Id\nversion: 0\n")
    (src / "cases" / "renamed.yaml").write_text(GOOD)
    _, problems = lint_source(src)
    found = [str(p) for p in problems]
    assert any("pack.yaml:1: error: id:" in p for p in found)
    assert any("pack.yaml:2: error: version:" in p for p in found)
    assert any("pack.yaml" in p and "title: Field required" in p for p in found)
    assert any(
        "renamed.yaml:1: error: id: duplicate case id 'malaria-uncomplicated-adult'" in p for p in found
    )
    assert any(
        "renamed.yaml:1: error: id: file name should be malaria-uncomplicated-adult.yaml" in p for p in found
    )


def test_cli_lint_reports_all_and_fails(tmp_path: Path) -> None:
    src = write_source(tmp_path / "src")
    case = src / "cases" / EXAMPLE_CASE.name
    case.write_text(GOOD.replace("fact: bed-net}", "fact: bednet}").replace("test: malaria.rdt}", "test: x}"))
    before = tree_state(src)
    result = CliRunner().invoke(make_cli(), ["pack", "lint", str(src)])
    assert result.exit_code == 1
    assert (
        f"{case}:" in result.stdout
        and "unknown fact 'bednet'" in result.stdout
        and "unknown test 'x'" in result.stdout
    )
    assert "1 case(s) checked: 2 error(s), 0 warning(s)" in result.stderr
    assert tree_state(src) == before


def test_cli_lint_clean(tmp_path: Path) -> None:
    result = CliRunner().invoke(make_cli(), ["pack", "lint", str(write_source(tmp_path / "src"))])
    assert result.exit_code == 0 and "0 error(s), 0 warning(s)" in result.stderr


def test_build_refuses_a_source_with_lint_errors(tmp_path: Path, publisher: tuple[Path, Path]) -> None:
    src = write_source(tmp_path / "src")
    (src / "cases" / EXAMPLE_CASE.name).write_text(GOOD.replace("fact: bed-net}", "fact: bednet}"))
    out = tmp_path / "x.etpack"
    result = CliRunner().invoke(
        make_cli(), ["pack", "build", str(src), "--key", str(publisher[0]), "--out", str(out)]
    )
    assert (
        result.exit_code == 1
        and "1 lint error(s)" in result.stderr
        and "unknown fact 'bednet'" in result.stderr
    )
    assert not out.exists()


def test_build_refuses_symlinks_in_source(tmp_path: Path, publisher: tuple[Path, Path]) -> None:
    src = write_source(tmp_path / "src")
    (src / "secret.txt").symlink_to("/etc/hostname")
    out = tmp_path / "x.etpack"
    result = CliRunner().invoke(
        make_cli(), ["pack", "build", str(src), "--key", str(publisher[0]), "--out", str(out)]
    )
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr
    assert not out.exists()


def test_near_misses_the_scorer_would_credit_are_warned() -> None:
    text = GOOD.replace(
        "    - name: Severe malaria\n      synonyms: [complicated malaria]",
        "    - name: Severe malaria\n      synonyms: [complicated malaria, falciparum malaria]",
    ).replace("p falciparum malaria]", "p falciparum malaria, severe malaria]")
    found = "\n".join(problems_for(text))
    assert "warning: diagnosis.differentials[1].synonyms[1]: 'falciparum malaria' would be credited" in found
    assert "warning: diagnosis.primary.synonyms[5]: synonym 'severe malaria' says severe (severity)" in found
    assert "warning: diagnosis.primary.not_synonyms[1]: 'severe malaria' would be credited" in found


def test_dose_blocks_must_name_a_wrong_dose_error() -> None:
    text = GOOD.replace("wrong_dose_error: act-wrong-dose", "wrong_dose_error: chloroquine")
    found = "\n".join(problems_for(text))
    assert "critical error 'chloroquine' is not kind wrong_dose" in found
    assert "no management dose names this wrong_dose error" in found
    bad_unit = GOOD.replace("unit: tablet}", "unit: spoonful}")
    assert any("unknown dose unit 'spoonful'" in p for p in problems_for(bad_unit))


def test_competencies_come_from_the_controlled_list() -> None:
    assert "competencies: [fever-infection, safe-prescribing, test-stewardship]" in GOOD
    text = GOOD.replace("competencies: [fever-infection,", "competencies: [malaria,")
    (found,) = problems_for(text)
    line = line_of(text, "competencies: [malaria,")
    assert found.startswith(f"case.yaml:{line}: error: competencies[0]: ")
    assert "unknown competency 'malaria' (see edgetutor/cases/competencies.yaml)" in found
    none = problems_for(
        GOOD.replace("competencies: [fever-infection, safe-prescribing, test-stewardship]\n", "")
    )
    assert len(none) == 1 and "warning: competencies: no competencies" in none[0]
