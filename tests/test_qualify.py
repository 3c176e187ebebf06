"""Model qualification: signed records, thresholds, the gate in front of the model, the real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgetutor.cli import make_cli
from edgetutor.errors import ModelError
from edgetutor.patient.fidelity_check import case_violations
from edgetutor.patient.models import embedded_model_path
from edgetutor.service import qualify
from edgetutor.service.session import load_model

from .test_models import STRING, gguf_bytes, write

EMBEDDED = embedded_model_path()


def passing(path: Path, **changes: Any) -> dict[str, Any]:
    """A record whose measurements meet every threshold (for the file at `path`)."""
    record: dict[str, Any] = {
        "kind": "edgetutor-model-qualification",
        "model": {"file": path.name, "sha256": qualify.file_sha256(path), "size": path.stat().st_size},
        "date": "2026-01-01T00:00:00+00:00",
        "complete_suite": True,
        "fidelity": {"drafts": 100, "accepted": 40, "acceptance": 0.4, "violations": 0},
        "speed": {"first_token_s": 0.2, "tokens_per_s": 90.0},
    }
    record.update(changes)
    return record


def test_signed_record_qualifies_and_thresholds_say_why_not(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF pretend model")
    assert qualify.status(model).reason == "not qualified yet"
    qualify.write_record(passing(model))
    state = qualify.status(model)
    assert state.qualifies and state.label == "yes", state.reason
    slow = passing(model, speed={"first_token_s": 3.0, "tokens_per_s": 4.0})
    slow["fidelity"] |= {"violations": 2, "acceptance": 0.1}
    qualify.write_record(slow)
    state = qualify.status(model)
    assert not state.qualifies
    for why in ("2 violating replies", "acceptance 10%", "first token 3.0 s", "4.0 tokens/s"):
        assert why in state.reason
    qualify.write_record(passing(model, complete_suite=False))
    assert "part of the suite" in qualify.status(model).reason


def test_altered_or_foreign_records_do_not_count(tmp_path: Path, home: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF pretend model")
    path = qualify.write_record(
        passing(model, fidelity={"drafts": 100, "accepted": 5, "acceptance": 0.05, "violations": 3})
    )
    doc = json.loads(path.read_text())
    doc["fidelity"] |= {"violations": 0, "acceptance": 0.9}  # edited by hand
    path.write_text(json.dumps(doc))
    state = qualify.status(model)
    assert not state.qualifies and "altered" in state.reason
    qualify.write_record(passing(model))
    (home / "device" / "device.key").unlink()  # another device's key from now on
    (home / "device" / "device.pub").unlink(missing_ok=True)
    from edgetutor.sync.device import load_or_create

    load_or_create()
    state = qualify.status(model)
    assert not state.qualifies and "another device" in state.reason
    # A changed model file is another model: its hash has no record.
    model.write_bytes(b"GGUF another pretend model")
    assert qualify.status(model).reason == "not qualified yet"


def test_only_a_qualified_model_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EMBEDDED is not None
    monkeypatch.delenv("EDGETUTOR_UNQUALIFIED", raising=False)
    backend, choice = load_model(None)
    assert backend is None and choice.note == "SmolLM2-135M-Instruct.Q4_1 not qualified"
    assert choice.error and "not qualified yet" in choice.error and "\n" not in choice.error
    qualify.write_record(passing(EMBEDDED))
    backend, choice = load_model(None)
    try:
        assert backend is not None and choice.error is None and choice.note is None
    finally:
        backend.close()  # type: ignore[union-attr]
    listed = CliRunner().invoke(make_cli(), ["models"])
    assert "qualified: yes" in listed.output


def test_bad_model_files_get_one_line_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert EMBEDDED is not None
    monkeypatch.delenv("EDGETUTOR_UNQUALIFIED", raising=False)
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is not a model")
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(EMBEDDED.read_bytes()[:4096])
    no_template = write(tmp_path / "base.gguf", gguf_bytes([("general.architecture", STRING, "llama")]))
    for bad, reason in (
        (not_gguf, "not a GGUF file"),
        (truncated, "truncated"),
        (no_template, "no chat template"),
    ):
        backend, choice = load_model(str(bad))
        assert backend is None and choice.error and reason in choice.error and "\n" not in choice.error
        result = CliRunner().invoke(make_cli(), ["models", "qualify", str(bad)])
        assert result.exit_code == 1 and reason in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # the note and the error


@pytest.mark.slow
def test_real_model_replies_are_checked_and_counted() -> None:
    """The embedded model on part of the suite: some replies are the model's own, none violates."""
    assert EMBEDDED is not None
    record, path = qualify.qualify(EMBEDDED, cases_only=["malaria-uncomplicated-adult"], per_case=8)
    f = record["fidelity"]
    assert path.exists() and not record["qualifies"]  # part of the suite never qualifies
    assert f["drafts"] >= 6 and f["accepted"] >= 1, f
    assert f["accepted"] + f["rejected"] == f["drafts"]
    assert sum(f["rejected_by_reason"].values()) == f["rejected"]
    assert f["violations"] == 0, f["violation_examples"]
    cases = qualify.demo_cases(["malaria-uncomplicated-adult"])
    from_model = [t for t in record["turns"] if t["source"] == "model"]
    assert from_model
    for turn in from_model:
        assert not case_violations(cases[turn["case"]], turn["reply"], turn["matched"]), turn
    assert record["speed"]["tokens_per_s"] > 0 and record["speed"]["first_token_s"] > 0
    assert "part of the suite" in qualify.status(EMBEDDED).reason


def test_suite_is_fixed_and_covers_the_demo_cases() -> None:
    digest, items = qualify.load_suite()
    assert len(digest) == 16 and len(items) >= 150
    assert {i.split for i in items} == {"tuning", "held-out"}
    assert len({i.case for i in items}) >= 13


def test_model_error_from_a_record_is_one_line(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF pretend model")
    path = qualify.records_dir() / f"{qualify.file_sha256(model)}.json"
    path.write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        qualify.read_record(qualify.file_sha256(model))
    assert "unreadable" in qualify.status(model).reason
