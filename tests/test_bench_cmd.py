"""`edgetutor bench` with the REAL embedded model: JSON against its schema, the table, failures.

Speed figures are never asserted (they vary with the machine); what is checked is that they are
measured, consistent with each other, and that the verdict follows from them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.bench import speed
from edgetutor.bench.commands import STANDARD_QUESTIONS
from edgetutor.bench.report import (
    FIRST_TOKEN_S_MAX,
    SCHEMA_FILE,
    TOKENS_PER_S_MIN,
    BenchReport,
    Ours,
    verdict,
)
from edgetutor.cli import make_cli
from edgetutor.errors import ModelError
from edgetutor.patient import models

EMBEDDED = models.embedded_model_path()


pytestmark = pytest.mark.usefixtures("isolated")  # conftest: cwd and models/ of this test only


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(make_cli(), ["bench", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_json_output_validates_against_the_schema(home: Path) -> None:
    code, out, err = invoke("--json", "--turns", "3", "--model", "embedded")
    assert code == 0, out + err
    report = BenchReport.model_validate_json(out)  # extra keys or wrong types fail here
    assert report.questions == 3 and report.case == "malaria-uncomplicated-adult"
    assert report.machine.threads >= 1 and report.machine.memory_read_gbs
    (m,) = report.models
    assert m.name == "SmolLM2-135M-Instruct.Q4_1" and m.origin == "embedded" and m.error is None
    ours, raw, ratio = m.edgetutor, m.raw, m.ratio
    assert ours is not None and raw is not None and ratio is not None
    assert len(ours.turns) == len(raw.turns) == 3
    assert ours.retrieval == "hybrid"  # the embedding model is installed in the dev environment
    for side in (ours, raw):
        assert side.load_s > 0 and side.ttft_turn1_ms > 0 and side.tokens_per_s > 0
        assert side.ttft_later_ms is not None and side.ttft_later_ms > 0
        assert side.peak_rss_mb > m.size_bytes / 1e6 / 2  # part of the model is resident
    # The case's prefix state is loaded at case start: turn 1 evaluates only its own new tokens
    # (raw llama-cpp-python evaluates the whole prompt), later turns the same as raw.
    assert ours.prefix == "loaded" and ours.prefix_tokens > 100 and ours.prefix_build_s
    assert raw.evaluated_turn1 == raw.turns[0].prompt_tokens
    assert ours.evaluated_turn1 <= ours.turns[0].prompt_tokens - ours.prefix_tokens + 8
    assert ours.evaluated_later_median is not None and ours.evaluated_later_median < raw.evaluated_turn1 / 2
    # Our accounting of evaluated tokens agrees with llama.cpp's own counters on the same chats.
    assert [t.evaluated_tokens for t in ours.turns[1:]] == [t.evaluated_tokens for t in raw.turns[1:]]
    assert [t.prompt_tokens for t in ours.turns] == [t.prompt_tokens for t in raw.turns]
    assert ours.memory is not None and ours.memory.model_mb > 0 and ours.memory.app_mb > 0
    assert all(t.weights_read_mb and t.weights_read_mb > 0 for t in ours.turns)
    assert ratio.tokens_per_s == round(ours.tokens_per_s / raw.tokens_per_s, 2)
    assert m.ceiling_tokens_per_s == round(report.machine.memory_read_gbs * 1e9 / m.size_bytes, 0)
    expect = (
        ours.ttft_turn1_ms < FIRST_TOKEN_S_MAX * 1000
        and ours.ttft_later_ms < FIRST_TOKEN_S_MAX * 1000
        and ours.tokens_per_s >= TOKENS_PER_S_MIN
    )
    assert m.fast_enough is expect
    assert m.verdict.startswith("Fast enough to talk to" if expect else "Too slow to talk to")
    assert not home.exists()  # a benchmark writes nothing


def test_schema_file_is_current_and_describes_the_output() -> None:
    on_disk = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert on_disk == BenchReport.model_json_schema(), "run: python -m edgetutor.bench.report"
    assert on_disk["additionalProperties"] is False
    assert {"machine", "models", "criteria"} <= set(on_disk["required"])


@pytest.mark.slow
def test_text_report_has_both_columns_and_a_verdict() -> None:
    code, out, err = invoke("--turns", "2")
    assert code == 0, out + err
    assert "Measuring SmolLM2-135M-Instruct.Q4_1" in err
    assert "edgetutor" in out and "raw llama-cpp" in out
    for label in ("first token, turn 1 (ms)", "first token, later (ms)", "tokens/s", "peak RSS (MB)"):
        assert label in out
    assert "Fast enough to talk to" in out or "Too slow to talk to" in out
    assert "memory-bandwidth ceiling" in out


def test_unknown_model_is_one_line_error_and_writes_nothing(home: Path) -> None:
    code, out, err = invoke("--model", "no-such-model")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "Error: --model no-such-model: no such model file or name (known models: SmolLM2-135M-Instruct.Q4_1)"
    ]
    assert not home.exists()


@pytest.mark.slow
def test_broken_model_is_reported_and_the_others_still_measured(home: Path) -> None:
    folder = home / "models"
    folder.mkdir(parents=True)
    assert EMBEDDED is not None
    (folder / "half.gguf").write_bytes(EMBEDDED.read_bytes()[:4096])
    before = sorted(p.name for p in home.rglob("*"))
    code, out, err = invoke("--turns", "1", "--json")
    assert code == 1
    assert err.strip().splitlines()[-1] == "Error: 1 of 2 model(s) could not be measured: half"
    report = BenchReport.model_validate_json(out)
    by_name = {m.name: m for m in report.models}
    assert by_name["half"].error and "truncated" in by_name["half"].error
    assert by_name["half"].edgetutor is None and by_name["half"].fast_enough is None
    assert by_name["half"].verdict.startswith("Cannot be measured: ")
    ok = by_name["SmolLM2-135M-Instruct.Q4_1"]
    assert ok.error is None and ok.edgetutor is not None and ok.edgetutor.ttft_later_ms is None  # 1 turn
    assert sorted(p.name for p in home.rglob("*")) == before  # nothing written, nothing lost


def test_turns_out_of_range_is_refused() -> None:
    code, out, err = invoke("--turns", "0")
    assert code == 2 and "Invalid value for '--turns'" in err


def test_verdict_names_what_is_too_slow() -> None:
    def ours(turn1: float, later: float, tps: float) -> Ours:
        return Ours(
            load_s=1.0,
            ttft_turn1_ms=turn1,
            ttft_later_ms=later,
            tokens_per_s=tps,
            evaluated_turn1=300,
            evaluated_later_median=40,
            prompt_tokens_median=300,
            peak_rss_mb=900,
            turns=[],
            encoder_load_s=0.1,
            retrieval="hybrid",
            replies_from_model=1,
        )

    assert verdict(ours(900, 150, 100))[0] is True
    fast, words = verdict(ours(4200, 600, 5))
    assert fast is False
    assert "the first reply starts too late" in words and "slower than reading speed" in words
    assert "later replies" not in words and "after 4.20 s, later ones after 0.60 s" in words
    assert verdict(ours(1000, 1600, 20)) == (
        False,
        "Too slow to talk to on this machine: later replies start too late: the first reply starts "
        "after 1.00 s, later ones after 1.60 s, and it speaks 20 tokens/s (needs a first token under "
        "1.5 s and 8+ tokens/s).",
    )


def test_each_measurement_runs_in_its_own_process_and_a_crash_is_a_model_error() -> None:
    assert speed.run_in_child(os.getpid) != os.getpid()
    with pytest.raises(ModelError, match="the measuring process died"):
        speed.run_in_child(os._exit, 3)


def test_option_range_matches_the_standard_questions() -> None:
    assert STANDARD_QUESTIONS == len(speed.QUESTIONS)


def test_command_module_imports_only_click() -> None:
    code = (
        "import sys, edgetutor.bench.commands; "
        "print(sorted(m for m in ('numpy', 'llama_cpp', 'pydantic', 'edgetutor.bench.report') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
