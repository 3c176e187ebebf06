"""The AgentClinic importer: every record converts and lints clean, the conversion is faithful,
and a file with bad records imports the good ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from edgetutor.cases.lint import lint_source, norm
from edgetutor.cases.schema import Case
from edgetutor.cli import make_cli
from edgetutor.errors import CaseFormatError, EdgeTutorError
from edgetutor.importers.agentclinic import (
    ImportReport,
    Voice,
    denial_items,
    first_person,
    import_agentclinic,
    negative_answer,
    parse_demographics,
)
from edgetutor.importers.agentclinic.facts import OFFERED_SYMPTOMS

# The AgentClinic MedQA file, vendored with its MIT licence and attribution (tests/data/agentclinic/).
DATA = Path(__file__).resolve().parent / "data" / "agentclinic" / "agentclinic_medqa.jsonl"
RECORDS = 107


@pytest.fixture(scope="module")
def data() -> Path:
    return DATA


# Importing and linting all 107 records takes ~25 s (ruamel's round-trip YAML, for line numbers):
# the tests that need the whole data set are marked slow; the small-file tests below are not.
@pytest.fixture(scope="module")
def imported(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportReport, list[Case]]:
    out = tmp_path_factory.mktemp("agentclinic") / "pack"
    report = import_agentclinic(data, out)
    cases, problems = lint_source(out)
    assert problems == [], "\n".join(str(p) for p in problems)
    return out, report, cases


def _case(cases: list[Case], record: int) -> Case:
    return next(c for c in cases if c.id == f"agentclinic-medqa-{record:03d}")


def _spoken(case: Case) -> list[str]:
    persona = case.patient.persona.model_dump().values()
    return [
        case.patient.opening_statement,
        case.patient.unknown_answer,
        *persona,
        *(f.answer for f in case.facts),
    ]


# --- the whole data set ---------------------------------------------------------------------


@pytest.mark.slow
def test_all_records_import_and_lint_with_no_errors_or_warnings(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    out, report, cases = imported
    assert len(cases) == RECORDS
    assert len(report.cases) == RECORDS
    assert len(list((out / "cases").glob("*.yaml"))) == RECORDS
    assert report.lint_problems == 0
    assert lint_source(out)[1] == []  # errors and warnings alike


@pytest.mark.slow
def test_every_imported_fact_is_tagged_with_history_topics(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    """Unscripted questions find imported facts through their topics (tagged from the fact's words)."""
    _, _, cases = imported
    untagged = [(c.id, f.id) for c in cases for f in c.facts if not f.topics]
    assert untagged == []
    assert sum(len(c.facts) for c in cases) > 1000


@pytest.mark.slow
def test_the_patient_never_reports_what_only_an_examination_finds(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    """Record 10's history says "she also mentions a decrease in bowel sounds": a finding of the
    examination (kept there), never something the patient says."""
    import re

    from edgetutor.importers.agentclinic.sentences import EXAMINER_TERMS

    _, report, cases = imported
    examiner = re.compile(rf"\b(?:{EXAMINER_TERMS})\b", re.I)
    said = [(c.id, t) for c in cases for t in _spoken(c) if examiner.search(t)]
    assert said == []
    case = _case(cases, 10)
    assert any("bowel sounds" in f.finding.lower() for f in case.examination)
    assert any("bowel sounds" in d for d in report.cases[9].dropped_observation)


@pytest.mark.slow
def test_the_patient_never_names_the_diagnosis(imported: tuple[Path, ImportReport, list[Case]]) -> None:
    _, _, cases = imported
    for case in cases:
        names = [norm(n) for n in (case.diagnosis.primary.name, *case.diagnosis.primary.synonyms)]
        for text in _spoken(case):
            said = f" {norm(text)} "
            assert not any(f" {n} " in said for n in names), (case.id, text)
        assert not any(norm(k) in names for f in case.facts for k in f.keywords), case.id
        assert not any(f" {n} " in f" {norm(case.title)} " for n in names), case.id


@pytest.mark.slow
def test_pack_metadata_and_attribution_are_kept(
    data: Path, imported: tuple[Path, ImportReport, list[Case]]
) -> None:
    out, _, _ = imported
    meta = YAML(typ="safe").load((out / "pack.yaml").read_text(encoding="utf-8"))
    assert meta["id"] == "agentclinic-medqa" and meta["version"] == 1
    assert meta["license"] == "MIT (AgentClinic, 2024 Samuel Schmidgall)"
    assert "NOT adapted to low-resource" in meta["description"] and "MedQA" in meta["description"]
    assert (out / "ATTRIBUTION.md").read_text(encoding="utf-8") == (data.parent / "README.md").read_text(
        encoding="utf-8"
    )
    assert (out / "LICENSE").read_text(encoding="utf-8") == (data.parent / "LICENSE").read_text(
        encoding="utf-8"
    )


@pytest.mark.slow
def test_every_case_is_hospital_level_with_no_management(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    _, _, cases = imported
    for case in cases:
        assert case.management == [] and case.management_note
        assert case.rubric.pass_mark == 0.6 and case.rubric.critical_errors == []
        assert any(item.diagnosis == "primary" for item in case.rubric.items)
        assert all(t.available for t in case.investigations)
        assert case.difficulty.value == "intermediate" and case.language == "en"
        assert case.author == "Imported from AgentClinic (MIT)"
        assert {s.year for s in case.sources} == {2024, 2021}
        volunteered = [f.category.value for f in case.facts if f.disclosure.value == "volunteered"]
        # The complaint, and up to OFFERED_SYMPTOMS secondary symptoms offered to "anything else?"
        assert volunteered.count("presenting_complaint") == 1
        assert len(volunteered) <= 1 + OFFERED_SYMPTOMS and set(volunteered) <= {
            "presenting_complaint",
            "hpi",
        }


# --- spot checks on known records -------------------------------------------------------------


@pytest.mark.slow
def test_record_1_myasthenia_gravis(imported: tuple[Path, ImportReport, list[Case]]) -> None:
    _, _, cases = imported
    case = _case(cases, 1)
    assert case.id == "agentclinic-medqa-001"  # opaque: the id never gives the diagnosis away
    assert (case.patient.age_years, case.patient.sex.value) == (35, "female")
    assert case.patient.informant is None
    assert case.patient.occupation == "graphic designer"
    v = case.vitals
    assert (v.bp_systolic, v.bp_diastolic, v.temperature_c, v.heart_rate, v.resp_rate) == (
        125,
        80,
        36.6,
        72,
        16,
    )
    ros = [f for f in case.facts if f.category.value == "systems_review" and f.negative]
    assert any("chest pain" in f.answer and f.answer.startswith("No") for f in ros)
    assert not any("myasthenia" in f.answer.lower() for f in case.facts)
    opening = case.patient.opening_statement
    assert "double vision" in opening and "I've" in opening
    history = " ".join(f.answer for f in case.facts if f.category.value == "hpi")
    assert "my hair" in history and "her hair" not in history  # third person turned into first
    assert {e.code for e in case.examination} >= {"neuro.cranial_nerves", "neuro.motor", "neuro.reflexes"}
    assert next(e for e in case.examination if e.code == "neuro.cranial_nerves").abnormal
    assert {t.code for t in case.investigations} == {"sero.antibodies", "neuro.emg", "img.ct"}
    assert next(t for t in case.investigations if t.code == "img.ct").cost.value == "high"


@pytest.mark.slow
def test_a_child_is_spoken_for_by_a_parent(imported: tuple[Path, ImportReport, list[Case]]) -> None:
    _, _, cases = imported
    case = _case(cases, 3)  # "8-month-old boy", Hirschsprung disease
    assert (case.patient.age_years, case.patient.age_months, case.patient.sex.value) == (0, 8, "male")
    assert case.patient.informant is not None and case.patient.informant.relation == "mother"
    assert "my baby" in case.patient.opening_statement
    newborn = _case(cases, 8)  # "Newborn, female"
    assert (newborn.patient.age_years, newborn.patient.age_months, newborn.patient.sex.value) == (
        0,
        0,
        "female",
    )
    toddler = _case(cases, 81)  # "18-month-old boy"
    assert (toddler.patient.age_years, toddler.patient.age_months) == (1, 6)


@pytest.mark.slow
def test_an_imported_childs_signs_are_told_not_denied(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.encounter import Encounter

    _, _, cases = imported
    case = _case(cases, 3)  # "fussy", "distended abdomen": tagged so that questions on them find them
    encoder = load_encoder()
    for said, fact in (
        ("is his tummy swollen?", "hpi-distended-abdomen"),
        ("how long has he been fussy?", "hpi-fussy"),
        ("does he cry a lot?", "hpi-fussy"),
    ):
        reply = Encounter(case, None, encoder).act(said)
        assert reply.matched == [fact] and not reply.text.startswith("No"), (said, reply.text)


@pytest.mark.slow
def test_prose_vitals_go_to_the_note_and_are_reported(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    _, report, cases = imported
    case = _case(cases, 2)  # every vital sign is "Within normal range"
    assert case.vitals.bp_systolic is None and case.vitals.heart_rate is None
    assert case.vitals.note and "Within normal range" in case.vitals.note
    assert any("Within normal range" in v for v in report.cases[1].vitals_prose)
    fahrenheit = _case(cases, 10)  # "102°F (38.9°C)", SpO2 "98% on room air"
    assert (fahrenheit.vitals.temperature_c, fahrenheit.vitals.spo2) == (38.9, 98)


@pytest.mark.slow
def test_drifting_keys_are_normalised(imported: tuple[Path, ImportReport, list[Case]]) -> None:
    _, _, cases = imported
    raw = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    spelled = {
        r: next(iter(k for k in raw[r - 1]["OSCE_Examination"]["Test_Results"] if "Chest_X" in k))
        for r in (25, 45)
    }
    assert spelled == {25: "Chest_X-Ray", 45: "Chest_X-ray"}
    for record in spelled:
        assert "img.cxr" in {t.code for t in _case(cases, record).investigations}
    # Neurological_Examination (record 1) and Neurologic_Examination (record 7) both give neuro codes.
    for record in (1, 7):
        assert {"neuro.cranial_nerves", "neuro.reflexes"} <= {
            e.code for e in _case(cases, record).examination
        }
    # Optional sections: a medication list, a drug history string, a social history given as a dict.
    assert any(
        f.category.value == "medication" and "mesalamine" in f.answer.lower() for f in _case(cases, 18).facts
    )
    assert any(f.category.value == "medication" and "captopril" in f.answer for f in _case(cases, 98).facts)
    assert any("marijuana" in f.answer for f in _case(cases, 89).facts)


@pytest.mark.slow
def test_report_lists_what_could_not_be_mapped(imported: tuple[Path, ImportReport, list[Case]]) -> None:
    _, report, _ = imported
    assert report.tests_mapped > report.tests_local > 0
    hirschsprung = report.cases[2]
    assert any(t.startswith("x.barium-enema") for t in hirschsprung.tests_local)
    assert any("x.barium-enema" in line for line in hirschsprung.unmapped())
    assert report.dropped_for_diagnosis >= 1
    seizure = report.cases[11]  # "No prior seizures" would hint at "Complex partial seizure"
    assert any("seizure" in s for s in seizure.dropped_diagnosis)
    summary = report.summary()
    assert f"Imported {RECORDS} AgentClinic cases" in summary
    assert "case-local" in summary and "agentclinic-medqa-003 (Hirschsprung disease, line 3)" in summary
    assert "Skipped" not in summary


# --- failure and determinism ------------------------------------------------------------------


def _mixed_file(data: Path, folder: Path) -> Path:
    """Five lines: good, a record with no primary symptom, good, broken JSON, good."""
    good = data.read_text(encoding="utf-8").splitlines()
    no_symptom = json.loads(good[1])
    no_symptom["OSCE_Examination"]["Patient_Actor"]["Symptoms"] = {"Secondary_Symptoms": []}
    src = folder / "agentclinic_medqa.jsonl"
    folder.mkdir()
    lines = [good[0], json.dumps(no_symptom), good[2], '{"OSCE_Examination": {', good[4]]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(data.parent / "LICENSE", folder / "LICENSE")
    return src


def test_bad_records_are_skipped_with_line_and_reason_and_the_rest_imported(
    data: Path, tmp_path: Path
) -> None:
    src = _mixed_file(data, tmp_path / "data")
    out = tmp_path / "pack"
    result = CliRunner().invoke(make_cli(), ["pack", "import-agentclinic", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Imported 3 AgentClinic cases" in result.output
    assert "Skipped 2 of 5 records" in result.output
    assert "line 2: missing Patient_Actor.Symptoms.Primary_Symptom" in result.output
    assert "line 4: invalid JSON: Expecting property name enclosed in double quotes" in result.output
    # Ids follow the record's place in the file: fixing record 2 later will not rename record 3.
    assert sorted(p.stem for p in (out / "cases").glob("*.yaml")) == [
        "agentclinic-medqa-001",
        "agentclinic-medqa-003",
        "agentclinic-medqa-005",
    ]
    cases, problems = lint_source(out)
    assert problems == [] and len(cases) == 3
    meta = YAML(typ="safe").load((out / "pack.yaml").read_text(encoding="utf-8"))
    assert meta["description"].startswith("3 AgentClinic MedQA")


def test_the_report_lists_each_skipped_record(data: Path, tmp_path: Path) -> None:
    src = _mixed_file(data, tmp_path / "data")
    lines = src.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "")  # blank lines are not records and do not shift the numbering
    lines.insert(3, json.dumps({"OSCE_Examination": {"Correct_Diagnosis": "Gout"}}))
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_agentclinic(src, tmp_path / "pack")
    assert [(s.record, s.line, s.reason) for s in report.skipped] == [
        (2, 2, "missing Patient_Actor.Symptoms.Primary_Symptom"),
        (3, 4, "missing OSCE_Examination.Patient_Actor"),
        (5, 6, "invalid JSON: Expecting property name enclosed in double quotes (column 23)"),
    ]
    assert [c.case_id for c in report.cases] == [
        "agentclinic-medqa-001",
        "agentclinic-medqa-004",
        "agentclinic-medqa-006",
    ]
    assert report.records == 6


def test_a_record_the_case_format_cannot_hold_is_skipped(data: Path, tmp_path: Path) -> None:
    good = data.read_text(encoding="utf-8").splitlines()
    record = json.loads(good[0])
    record["OSCE_Examination"]["Patient_Actor"]["Demographics"] = "130-year-old female"
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(data.parent / "LICENSE", folder / "LICENSE")
    src = folder / "cases.jsonl"
    src.write_text(json.dumps(record) + "\n" + good[1] + "\n", encoding="utf-8")
    report = import_agentclinic(src, tmp_path / "pack")
    assert [c.case_id for c in report.cases] == ["agentclinic-medqa-002"]
    (skipped,) = report.skipped
    assert skipped.line == 1
    assert skipped.reason.startswith("cannot convert this record (patient.age_years: ")


def test_nothing_imported_exits_1_and_writes_nothing(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(data.parent / "LICENSE", folder / "LICENSE")
    src = folder / "agentclinic_medqa.jsonl"
    src.write_text('{"OSCE_Examination": {\n[1, 2]\n', encoding="utf-8")
    out = tmp_path / "pack"
    result = CliRunner().invoke(make_cli(), ["pack", "import-agentclinic", str(src), "--out", str(out)])
    assert result.exit_code == 1
    assert "agentclinic_medqa.jsonl:1: invalid JSON" in result.output
    assert "nothing imported: all 2 records were skipped" in result.output
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} <= {"data", "home"}  # no temporary folder left behind

    src.write_text("\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(CaseFormatError, match=r":2: a record must be a JSON object \(nothing imported"):
        import_agentclinic(src, out)
    src.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CaseFormatError, match=r"no records \(expected one JSON object per line\)"):
        import_agentclinic(src, out)
    assert not out.exists()


def test_strict_writes_nothing_if_any_record_is_skipped(data: Path, tmp_path: Path) -> None:
    src = _mixed_file(data, tmp_path / "data")
    out = tmp_path / "pack"
    args = ["pack", "import-agentclinic", str(src), "--out", str(out), "--strict"]
    result = CliRunner().invoke(make_cli(), args)
    assert result.exit_code == 1
    assert "agentclinic_medqa.jsonl:2: missing Patient_Actor.Symptoms.Primary_Symptom" in result.output
    assert "strict import: 2 of 5 records skipped, nothing written" in result.output
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} <= {"data", "home"}

    with pytest.raises(CaseFormatError, match=r"agentclinic_medqa\.jsonl:2: missing"):
        import_agentclinic(src, out, strict=True)
    assert not out.exists()
    # A clean file imports the same with or without --strict.
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(data.parent / "LICENSE", clean / "LICENSE")
    (clean / "ok.jsonl").write_text("\n".join(data.read_text(encoding="utf-8").splitlines()[:2]) + "\n")
    assert len(import_agentclinic(clean / "ok.jsonl", out, strict=True).cases) == 2


@pytest.mark.slow
def test_case_ids_do_not_reveal_the_diagnosis(imported: tuple[Path, ImportReport, list[Case]]) -> None:
    _, _, cases = imported
    for number, case in enumerate(cases, start=1):
        assert case.id == f"agentclinic-medqa-{number:03d}"


def test_refuses_a_non_empty_output_folder(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "pack"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(EdgeTutorError, match="not empty"):
        import_agentclinic(data, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_importing_twice_gives_identical_files(
    data: Path, tmp_path: Path, imported: tuple[Path, ImportReport, list[Case]]
) -> None:
    first, _, _ = imported
    second = tmp_path / "again"
    second.mkdir()  # an empty folder is fine
    import_agentclinic(data, second)

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(first) == files(second)


# --- conversion rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "years", "months", "sex"),
    [
        ("35-year-old female", 35, None, "female"),
        ("2-month-old boy", 0, 2, "male"),
        ("18-month-old boy", 1, 6, "male"),
        ("Newborn, female", 0, 0, "female"),
        ("2-day-old male infant", 0, 0, "male"),
        ("32-year-old woman, gravida 2, para 1, at 38 weeks' gestation", 32, None, "female"),
        ("42-year-old Caucasian male", 42, None, "male"),
    ],
)
def test_demographics(text: str, years: int, months: int | None, sex: str) -> None:
    demo = parse_demographics(text, "")
    assert (demo.age_years, demo.age_months, demo.sex) == (years, months, sex)


def test_sex_missing_from_demographics_is_read_from_the_history() -> None:
    assert parse_demographics("9-month-old infant", "Her immunizations are up to date.").sex == "female"
    assert parse_demographics("23-year-old college student", "He was recently diagnosed.").sex == "male"


WOMAN = Voice(sex="female", child=False, parent="mother", noun="my daughter", he="she", his="her", him="her")
BOY = Voice(sex="male", child=True, parent="mother", noun="my son", he="he", his="his", him="him")


@pytest.mark.parametrize(
    ("voice", "source", "answer"),
    [
        (
            WOMAN,
            "She notes that these symptoms tend to worsen after physical activity.",
            "These symptoms tend to worsen after physical activity.",
        ),
        (
            WOMAN,
            "The patient reports a 2-week history of rectal bleeding.",
            "For the past 2 weeks, I've had rectal bleeding.",
        ),
        (WOMAN, "Non-smoker", "I don't smoke."),
        (WOMAN, "Works as a graphic designer.", "I work as a graphic designer."),
        (
            WOMAN,
            "The patient's husband reports that she initially complained of abdominal pain.",
            "My husband says that I initially complained of abdominal pain.",
        ),
        (BOY, "The patient has been very fussy.", "My son has been very fussy."),
        (
            BOY,
            "She also notes that the infant's abdomen appears distended.",
            "I also note that my son's abdomen appears distended.",
        ),
    ],
)
def test_first_person(voice: Voice, source: str, answer: str) -> None:
    assert first_person(source, voice)[0] == answer


def test_denials_become_one_negative_answer_per_item() -> None:
    items = denial_items("Patient denies experiencing any chest pain, palpitations, or recent infections.")
    assert items == ["chest pain", "palpitations", "recent infections"]
    assert negative_answer("chest pain", WOMAN) == "No, I haven't had any chest pain."
    assert negative_answer("fever", BOY) == "No, he hasn't had any fever."
    assert denial_items("No skin or nipple changes") == ["skin changes", "nipple changes"]
    assert denial_items("The patient reports a cough.") is None


def test_lookup_tables_are_validated_at_load() -> None:
    from pydantic import ValidationError

    from edgetutor.importers.agentclinic import tables

    def table(name: str) -> dict:
        return YAML(typ="safe").load((Path(tables.__file__).parent / name).read_text(encoding="utf-8"))

    tests = table("investigations.yaml")
    tests["test_names"]["full blood picture"] = "haem.no-such-code"
    with pytest.raises(ValidationError, match="haem.no-such-code"):
        tables.Investigations.model_validate(tests)
    exams = table("examination.yaml")
    exams["system_rules"]["abdo"]["rules"].append(["bowel (sounds", "abdo.auscultation"])
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        tables.Examination.model_validate(exams)
    exams = table("examination.yaml")
    exams["section_system"]["flank"] = "kidneys"
    with pytest.raises(ValidationError, match="systems without system_rules: \\['kidneys'\\]"):
        tables.Examination.model_validate(exams)
    language = table("language.yaml")
    language["stop_word"] = "typo"
    with pytest.raises(ValidationError, match="stop_word"):
        tables.Language.model_validate(language)
    records = table("records.yaml")
    records["osce"]["Test_Results"].append("Diagnosis")  # already a name of Correct_Diagnosis
    with pytest.raises(ValidationError, match="names given for two fields, or twice: \\['diagnosis'\\]"):
        tables.Records.model_validate(records)


# --- records written by others ---------------------------------------------------------------


def _record(**osce: object) -> str:
    return json.dumps({"OSCE_Examination": osce})


def test_other_writers_shapes_are_imported(data: Path, tmp_path: Path) -> None:
    """A diagnosis as a list, symptoms as a list or a comma-separated string, an examination and
    test results as plain text, ages written "68 y/o M" or "F, 34": imported, not skipped."""
    src = tmp_path / "other" / "records.jsonl"
    src.parent.mkdir()
    shutil.copy(data.parent / "LICENSE", src.parent / "LICENSE")
    actor = {"History": "Sudden weakness of the left arm and leg two hours ago."}
    src.write_text(
        "\n".join(
            [
                _record(
                    Patient_Actor={
                        **actor,
                        "Demographics": "68 y/o M",
                        "Symptoms": ["Left-sided weakness", "Slurred speech"],
                    },
                    Physical_Examination_Findings="Left hemiparesis and facial droop.",
                    Test_Results="CT head: no haemorrhage.",
                    Correct_Diagnosis=["Ischaemic stroke", "Stroke"],
                ),
                _record(
                    Patient_Actor={
                        "Demographics": "F, 34",
                        "History": "Burning when passing urine for two days.",
                        "Symptoms": {
                            "Primary_Symptom": "Dysuria",
                            "Secondary_Symptoms": "frequency, urgency",
                        },
                    },
                    Correct_Diagnosis="Cystitis",
                ),
                _record(
                    Patient_Actor={
                        "Demographics": "22-year-old woman at 30 weeks gestation",
                        "History": "Headache and blurred vision since yesterday.",
                        "Symptoms": {"Primary_Symptom": "Headache"},
                    },
                    Correct_Diagnosis="Pre-eclampsia with severe features",
                ),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "pack"
    result = CliRunner().invoke(make_cli(), ["pack", "import-agentclinic", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Imported 3 AgentClinic cases" in result.output and "Skipped" not in result.output
    cases, problems = lint_source(out)
    assert problems == []
    stroke, cystitis, pregnant = sorted(cases, key=lambda c: c.id)
    assert (stroke.patient.age_years, stroke.patient.sex.value, stroke.patient.informant) == (
        68,
        "male",
        None,
    )
    assert stroke.diagnosis.primary.name == "Ischaemic stroke"
    assert (cystitis.patient.age_years, cystitis.patient.sex.value) == (34, "female")
    assert not cystitis.patient.pregnant and pregnant.patient.pregnant


def _respelled(record: dict[str, Any]) -> dict[str, Any]:
    """The record as another writer might key it: no OSCE_Examination around it, names in lower
    case with spaces or in camelCase, and common synonyms."""
    osce = dict(record["OSCE_Examination"])
    actor = dict(osce.pop("Patient_Actor"))
    symptoms = actor.pop("Symptoms")
    exam = dict(osce.pop("Physical_Examination_Findings"))
    if "Vital_Signs" in exam:
        exam["vital signs"] = exam.pop("Vital_Signs")
    return {
        "patientActor": {
            **{k.replace("_", " ").lower(): v for k, v in actor.items()},
            "Symptoms": {"Chief Complaint": symptoms["Primary_Symptom"], "associated symptoms": symptoms["Secondary_Symptoms"]},
        },
        "physical exam": exam,
        "Investigations": osce.pop("Test_Results"),
        "Final Diagnosis": osce.pop("Correct_Diagnosis"),
        **{k.lower(): v for k, v in osce.items()},
    }  # fmt: skip


def test_records_keyed_in_other_spellings_import_as_the_usual_ones(data: Path, tmp_path: Path) -> None:
    """Key names drift between writers: the same eight records keyed another way (`_respelled`)
    import to exactly the files the usual keys give; age and sex given apart make demographics."""
    lines = data.read_text(encoding="utf-8").splitlines()[:8]
    outs = []
    for name, rows in (
        ("usual", lines),
        ("respelled", [json.dumps(_respelled(json.loads(x))) for x in lines]),
    ):
        src = tmp_path / name / "records.jsonl"
        src.parent.mkdir()
        shutil.copy(data.parent / "LICENSE", src.parent / "LICENSE")
        src.write_text("\n".join(rows) + "\n", encoding="utf-8")
        report = import_agentclinic(src, tmp_path / name / "pack")
        assert not report.skipped, report.summary()
        outs.append(
            {
                p.name: p.read_text(encoding="utf-8")
                for p in (tmp_path / name / "pack" / "cases").glob("*.yaml")
            }
        )
    assert len(outs[0]) == 8 and outs[0] == outs[1]
    # {"Age": 30, "Sex": "Female"} instead of a Demographics line.
    src = tmp_path / "apart" / "records.jsonl"
    src.parent.mkdir()
    shutil.copy(data.parent / "LICENSE", src.parent / "LICENSE")
    actor = {
        "Age": 30,
        "Sex": "Female",
        "History": "Fever and chills for two days.",
        "Symptoms": {"Primary_Symptom": "Fever"},
    }
    src.write_text(_record(Patient_Actor=actor, Correct_Diagnosis="Malaria") + "\n", encoding="utf-8")
    import_agentclinic(src, tmp_path / "apart" / "pack")
    (case,), problems = lint_source(tmp_path / "apart" / "pack")
    assert problems == [] and (case.patient.age_years, case.patient.sex.value) == (30, "female")


@pytest.mark.parametrize(
    ("said", "age", "months", "sex"),
    [
        ("35-year-old female", 35, None, "female"),
        ("68 y/o M", 68, None, "male"),
        ("72 yrs, F", 72, None, "female"),
        ("aged 40, male", 40, None, "male"),
        ("F, 34", 34, None, "female"),
        ("18 months old girl", 1, 6, "female"),
        ("3 weeks old female", 0, 0, "female"),
        ("A 4-year-old boy brought by his mother", 4, None, "male"),
        ("Newborn, born at 33 weeks of gestation", 0, 0, ""),
    ],
)
def test_ages_and_sexes_as_records_write_them(said: str, age: int, months: int | None, sex: str) -> None:
    from edgetutor.importers.agentclinic.voice import parse_demographics

    got = parse_demographics(said, "")
    assert (got.age_years, got.age_months, got.sex) == (age, months, sex)


@pytest.mark.slow
def test_the_same_records_import_to_the_same_bytes_in_every_run(data: Path, tmp_path: Path) -> None:
    """Topic tags used to depend on the order of a set of words, which changes with Python's
    hash seed: two imports of one file could differ. Two processes with different seeds agree."""
    import os
    import subprocess
    import sys

    src = tmp_path / "src" / "records.jsonl"
    src.parent.mkdir()
    shutil.copy(data.parent / "LICENSE", src.parent / "LICENSE")
    shutil.copy(data, src)  # seeds 1 and 2 gave record 104 different tags before the fix
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        subprocess.run(
            [sys.executable, "-m", "edgetutor", "pack", "import-agentclinic", str(src), "--out", str(out)],
            check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        outs.append({p.name: p.read_bytes() for p in sorted((out / "cases").glob("*.yaml"))})
    assert len(outs[0]) == RECORDS and outs[0] == outs[1]


@pytest.mark.parametrize(
    ("category", "answer", "adult", "wanted", "unwanted"),
    [
        # Each thing a fact lists is found, not only the one that dominates the sentence.
        ("social", "I don't smoke, drink alcohol, or use illicit drugs.", True,
         {"soc.smoking", "soc.alcohol", "soc.drugs"}, set()),
        ("hpi", "My baby has been very fussy and has shown decreased interest in feeding for the past few days.",
         False, {"paed.irritable"}, set()),
        # A word that matches another topic's by accident is not enough: "course" is not a course
        # of antibiotics, "motion" not a stool, "period" not a menstrual one.
        ("hpi", "I experienced a prolonged course during labor.", True, {"obs.labour_course"},
         {"med.recent_antibiotics"}),
        ("hpi", "I've also had pain at extremes of motion.", True, set(), {"ros.diarrhoea"}),
        ("hpi", "I'm in the postpartum period after delivering an 11 pound boy vaginally at 40 weeks gestation.",
         True, set(), {"obs.menarche", "obs.lmp"}),
        ("hpi", "I've also had difficulty concentrating.", True, {"ros.concentration"}, {"ros.dark_urine"}),
        # The patient's own history is not the family's, and the family's is only the family's.
        ("past_history", "Hypertension, Diabetes Type 2, Hyperlipidemia.", True,
         {"pmh.hypertension", "pmh.diabetes"}, {"fam.diabetes", "fam.hypertension"}),
        ("family", "My father had diabetes.", True, {"fam.diabetes"}, {"pmh.diabetes"}),
        # A past illness's severity is not this illness's ("how bad is it out of 10?").
        ("past_history", "I have a significant history of Crohn disease diagnosed 2 years ago, which has escalated in severity.",
         True, set(), {"hpc.severity"}),
        # Being told a diagnosis is not what the patient thinks or fears (ICE).
        ("past_history", "I was diagnosed with influenza recently but did not adhere to the treatment plan provided.",
         True, set(), {"ice.knowledge", "ice.expectations", "ice.ideas"}),
        # A presenting complaint answers "what brings you here?" first.
        ("presenting_complaint", "My main worry is bilious vomiting.", True,
         {"hpc.main_complaint", "ros.vomiting"}, set()),
    ],
)  # fmt: skip
def test_imported_facts_are_tagged_by_meaning_as_well_as_words(
    category: str, answer: str, adult: bool, wanted: set[str], unwanted: set[str]
) -> None:
    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.topics import TAG_LIMIT, WHEN_TOPICS, tag_fact

    encoder = load_encoder()
    assert encoder is not None
    topics = tag_fact(category, answer, [], [], adult, encoder)
    assert wanted <= set(topics) and not unwanted & set(topics), topics
    assert 1 <= len(set(topics) - set(WHEN_TOPICS)) <= TAG_LIMIT
    # "for the past few days": the fact also tells when it started and how long it has lasted
    assert set(WHEN_TOPICS) <= set(topics) if "days" in answer else not set(WHEN_TOPICS) & set(topics)
    if category == "presenting_complaint":
        assert topics[0] == "hpc.main_complaint"
    if category == "family":
        assert all(t.startswith("fam.") for t in topics)
    assert not any(t.startswith("ice.") for t in topics)


def test_the_import_tags_each_fact_as_tagging_it_alone_would(data: Path, tmp_path: Path) -> None:
    """The importer encodes a record's facts in one call; the tags are those of one fact at a time."""
    from edgetutor.cases import load_case
    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.topics import tag_fact

    one = tmp_path / "one.jsonl"
    one.write_text(data.read_text(encoding="utf-8").splitlines()[9] + "\n")
    (tmp_path / "LICENSE").write_text((data.parent / "LICENSE").read_text(encoding="utf-8"))
    import_agentclinic(one, tmp_path / "out")
    case = load_case(next((tmp_path / "out" / "cases").glob("*.yaml")))
    encoder = load_encoder()
    adult = case.patient.age_years >= 16
    complaint = " ".join(next(f.keywords for f in case.facts if f.category == "presenting_complaint"))
    for fact in case.facts:
        asked = [str(q) for q in fact.questions]
        alone = tag_fact(
            fact.category, fact.answer, list(fact.keywords), asked, adult, encoder, None, complaint
        )
        assert fact.topics == alone


@pytest.mark.slow
def test_an_imported_patient_offers_other_symptoms_when_invited(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    """ "Any other symptoms?" gets the source's first secondary symptoms, one at a time, then
    "that's all", and earns no history credit; a direct question still does."""
    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.encounter import Encounter

    _, _, cases = imported
    case = _case(cases, 66)  # fatigue; secondary: lower leg swelling, unintentional weight loss...
    offered = [
        f for f in case.facts if f.disclosure.value == "volunteered" and f.category != "presenting_complaint"
    ]
    assert len(offered) == 2 and all(f.answer.startswith("I've also") for f in offered)
    encounter = Encounter(case, None, load_encoder())
    encounter.told.update(f.id for f in case.facts if f.category == "presenting_complaint")
    said = [encounter.act(q) for q in ("Any other symptoms?", "Anything else?", "Anything else?")]
    assert [r.text for r in said] == [offered[0].answer, offered[1].answer, "That's all I can think of."]
    assert all(r.matched == [] for r in said)
    asked = encounter.act("Have you lost any weight?")
    assert asked.matched and not asked.text.startswith("No")


@pytest.mark.slow
def test_an_imported_patient_says_when_the_complaint_started(
    imported: tuple[Path, ImportReport, list[Case]],
) -> None:
    """ "When did it start?" is answered from the complaint's own timing in the history, not with
    "I'm not sure" and not with the timing of another symptom."""
    from edgetutor.patient.embed import load_encoder
    from edgetutor.patient.encounter import Encounter

    _, _, cases = imported
    encoder = load_encoder()
    for record, when, not_this in (
        (23, "2 months ago", None),  # skin lesion on the chest
        (66, "past 10 days", "6 months"),  # fatigue; weight loss over 6 months is another symptom
    ):
        for asked in ("When did it start?", "How long have you had it?"):
            reply = Encounter(_case(cases, record), None, encoder).act(asked)
            assert when in reply.text and reply.matched, (record, asked, reply.text)
            assert not_this is None or not_this not in reply.text, (record, asked, reply.text)
