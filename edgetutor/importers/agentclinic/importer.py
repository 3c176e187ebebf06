"""The entry point: read the JSONL file, convert each record, write the pack source folder."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ...cases.lint import lint_case_text
from ...cases.packmeta import PackMeta
from ...errors import CaseFormatError, EdgeTutorError
from ...patient.embed import load_encoder
from .case import PACK_ID, PACK_LICENSE, convert_record
from .report import ImportReport, RecordError, SkippedRecord
from .tables import RECORDS, plain_key


def import_agentclinic(jsonl: Path, out: Path, *, strict: bool = False) -> ImportReport:
    """Convert every valid record of `jsonl` into a pack source folder at `out`.

    A record that cannot be read or converted is skipped and listed in `report.skipped` with its
    line and the reason; the others are imported. Raises CaseFormatError, and writes nothing, when
    no record could be imported, when `strict` and any record was skipped, or when the file or
    its LICENSE cannot be read. Refuses (EdgeTutorError) if `out` exists and is not an empty
    folder.
    """
    _check_target(out)
    data_dir = jsonl.parent
    license_path = data_dir / "LICENSE"
    if not license_path.is_file():
        raise CaseFormatError(f"{license_path}: missing; the MIT licence notice must ship with the pack")
    try:
        raw = jsonl.read_bytes()
    except OSError as err:
        raise CaseFormatError(f"{jsonl}: cannot read: {err.strerror or err}") from err

    report = ImportReport(source=jsonl, out=out)
    files: dict[str, str] = {}
    # Facts are tagged with history topics by meaning when the sentence encoder is installed (it
    # is by scripts/setup), else by their words alone: fewer unscripted questions then find them.
    encoder = load_encoder()
    for number, line, text in _lines(raw):
        try:
            record = _parse_record(text)
            case, info = convert_record(record, number, line, encoder)
        except RecordError as err:
            report.skipped.append(SkippedRecord(record=number, line=line, reason=str(err)))
            continue
        yaml_text = _dump_yaml(case)
        _, problems = lint_case_text(yaml_text, f"cases/{info.case_id}.yaml")
        info.lint = [str(p) for p in problems]
        report.cases.append(info)
        files[f"cases/{info.case_id}.yaml"] = yaml_text

    if not report.cases:
        if not report.skipped:
            raise CaseFormatError(f"{jsonl}: no records (expected one JSON object per line)")
        first = report.skipped[0]
        raise CaseFormatError(
            f"{jsonl}:{first.line}: {first.reason} (nothing imported: all {len(report.skipped)} "
            "records were skipped)"
        )
    if strict and report.skipped:
        first = report.skipped[0]
        raise CaseFormatError(
            f"{jsonl}:{first.line}: {first.reason} (strict import: {len(report.skipped)} of "
            f"{report.records} records skipped, nothing written)"
        )

    meta = _pack_meta(len(report.cases))
    PackMeta.model_validate(meta)  # a bug here is ours, not the data's: let it raise
    files["pack.yaml"] = _dump_yaml(meta)
    readme = data_dir / "README.md"
    try:
        files["ATTRIBUTION.md"] = (
            readme.read_text(encoding="utf-8") if readme.is_file() else _FALLBACK_ATTRIBUTION
        )
        files["LICENSE"] = license_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CaseFormatError(f"{data_dir}: cannot read the attribution files: {err}") from err
    _write_atomically(out, files)
    return report


_FALLBACK_ATTRIBUTION = """# AgentClinic MedQA OSCE cases (third-party data, MIT)

Imported from the AgentClinic project (SamuelSchmidgall/AgentClinic, `agentclinic_medqa.jsonl`),
MIT licence, copyright 2024 Samuel Schmidgall; see `LICENSE`. The cases are MedQA (USMLE)
vignettes expanded into OSCE form.
"""


def _pack_meta(count: int) -> dict[str, Any]:
    return {
        "id": PACK_ID,
        "version": 1,
        "title": "AgentClinic MedQA OSCE cases (imported)",
        "description": (
            f"{count} AgentClinic MedQA (USMLE) OSCE cases, imported automatically from the public "
            "AgentClinic data set. They describe a well-equipped hospital and are NOT adapted to "
            "low-resource settings; the source has no management plans, so the cases are scored on "
            "history, examination, investigations and diagnosis. Review before teaching with them."
        ),
        "publisher": "EdgeTutor (automatic import of AgentClinic data)",
        "license": PACK_LICENSE,
    }


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EdgeTutorError(f"{out}: already exists and is not empty; choose a new folder")


def _write_atomically(out: Path, files: dict[str, str]) -> None:
    """Write into a temporary sibling folder, then rename it into place: never a half pack."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        # mkdtemp makes a private (0700) folder; the pack should get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        _check_target(out)  # someone may have created it meanwhile
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _lines(raw: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(record number, line number, bytes) for every non-blank line.

    Records are numbered by their place among the non-blank lines, bad ones included, so a
    case's id does not change when a record before it is fixed or removed.
    """
    number = 0
    for line, chunk in enumerate(raw.split(b"\n"), start=1):
        if chunk.strip():
            number += 1
            yield number, line, chunk


def _parse_record(chunk: bytes) -> dict[str, Any]:
    """One line as a record. Raises RecordError with the reason it cannot be used."""
    try:
        text = chunk.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise RecordError(f"not UTF-8 text (byte {err.start + 1})") from err
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"invalid JSON: {err.msg} (column {err.colno})") from err
    except (ValueError, RecursionError) as err:  # a 5,000-digit number, 100,000 nested lists
        raise RecordError(f"invalid JSON: {str(err)[:100]}") from err
    record = _tolerate(record)
    _check_record(record)
    return record


def _text_of(value: Any) -> str | None:
    """A list of plain values as one line of text; None for anything else."""
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "; ".join(str(v).strip() for v in value if str(v).strip())
    return None


# Key names other writers of these records use, by level (records.yaml).
_KEYS = {level: RECORDS.usual(level) for level in ("record", "osce", "actor", "symptoms", "exam")}


def _usual_keys(obj: Any, level: str) -> Any:
    """`obj` with the keys of `level` renamed to the usual ones (in place). A key already present
    under its usual name wins: nothing is overwritten."""
    if isinstance(obj, dict):
        for key in list(obj):
            usual = _KEYS[level].get(plain_key(key)) if isinstance(key, str) else None
            if usual is not None and usual != key and usual not in obj:
                obj[usual] = obj.pop(key)
    return obj


def _tolerate(record: Any) -> Any:
    """Bring the shapes other writers of these records use to the usual one, in place: key names
    in another case or spacing, or common synonyms (records.yaml); a record that is the examination
    itself, without the OSCE_Examination around it; a diagnosis given as a list (its first
    entry), symptoms as a list (the first is the main one), an examination or test results as
    plain text (one finding or result). History fields may already be text, lists or objects.
    Anything else is left for the checks."""
    record = _usual_keys(record, "record")
    if isinstance(record, dict) and "OSCE_Examination" not in record:
        bare = _usual_keys(dict(record), "osce")
        if isinstance(bare.get("Patient_Actor"), dict):
            record = {"OSCE_Examination": bare}
    osce = _usual_keys(record.get("OSCE_Examination") if isinstance(record, dict) else None, "osce")
    if not isinstance(osce, dict):
        return record
    _usual_keys(osce.get("Physical_Examination_Findings"), "exam")
    actor = _usual_keys(osce.get("Patient_Actor"), "actor")
    if isinstance(actor, dict):
        _usual_keys(actor.get("Symptoms"), "symptoms")
        if "Demographics" not in actor:
            # {"Age": 45, "Sex": "Male"} -> "45-year-old male" (parse_demographics reads it)
            keys = {plain_key(k): k for k in actor if isinstance(k, str)}
            age_key, sex_key = keys.get("age"), keys.get("sex", keys.get("gender"))
            age, sex = actor.get(age_key), actor.get(sex_key)
            if isinstance(age, int | float) and not isinstance(age, bool):
                age = f"{age:g}-year-old"
            if isinstance(age, str) and isinstance(sex, str) and age.strip() and sex.strip():
                actor["Demographics"] = f"{age.strip()} {sex.strip().lower()}"
                del actor[age_key], actor[sex_key]  # now said once, in Demographics
    dx = osce.get("Correct_Diagnosis")
    if isinstance(dx, list):
        named = [d for d in dx if isinstance(d, str) and d.strip()]
        if named:
            osce["Correct_Diagnosis"] = named[0]
    for key, label in (("Physical_Examination_Findings", "General"), ("Test_Results", "Results")):
        value = osce.get(key)
        if isinstance(value, str) and value.strip():
            osce[key] = {label: value}
        elif isinstance(value, list) and (text := _text_of(value)):
            osce[key] = {label: text}
    actor = osce.get("Patient_Actor")
    if not isinstance(actor, dict):
        return record
    symptoms = actor.get("Symptoms")
    if isinstance(symptoms, list):
        named = [s for s in symptoms if isinstance(s, str) and s.strip()]
        if named:
            actor["Symptoms"] = {"Primary_Symptom": named[0], "Secondary_Symptoms": named[1:]}
    elif isinstance(symptoms, str) and symptoms.strip():
        actor["Symptoms"] = {"Primary_Symptom": symptoms}
    elif isinstance(symptoms, dict) and isinstance(symptoms.get("Secondary_Symptoms"), str):
        parts = [p.strip() for p in re.split(r"[;,]", symptoms["Secondary_Symptoms"]) if p.strip()]
        symptoms["Secondary_Symptoms"] = parts
    return record


def _check_record(record: Any) -> None:
    """The few keys every conversion needs; everything else is optional and drifts."""

    def need(obj: Any, key: str, kind: type, path: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise RecordError(f"missing {path}")
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            raise RecordError(f"{path} must be a non-empty {kind.__name__}")
        return value

    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    osce = need(record, "OSCE_Examination", dict, "OSCE_Examination")
    need(osce, "Correct_Diagnosis", str, "OSCE_Examination.Correct_Diagnosis")
    actor = need(osce, "Patient_Actor", dict, "OSCE_Examination.Patient_Actor")
    need(actor, "Demographics", str, "Patient_Actor.Demographics")
    symptoms = actor.get("Symptoms", {})
    if not isinstance(symptoms, dict):
        raise RecordError("Patient_Actor.Symptoms must be an object")
    need(symptoms, "Primary_Symptom", str, "Patient_Actor.Symptoms.Primary_Symptom")
    for key in ("Physical_Examination_Findings", "Test_Results"):
        if not isinstance(osce.get(key, {}), dict):
            raise RecordError(f"OSCE_Examination.{key} must be an object")


def _dump_yaml(data: dict[str, Any]) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(data, buf)
    # ruamel leaves a space where it wraps a long plain scalar; YAML folding drops it anyway.
    return re.sub(r"[ \t]+\n", "\n", buf.getvalue())
