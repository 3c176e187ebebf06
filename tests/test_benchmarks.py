"""Benchmarks must keep running: each is run here on a small input (figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_packs_runs_and_reports() -> None:
    result = _load("bench_packs").main(["--cases", "12", "--repeat", "1", "--json"])
    assert result["cases"] == 12
    assert result["verify_s"] > 0 and result["baseline_s"] > 0 and result["install_s"] > 0


def test_bench_retrieval_reports_every_case() -> None:
    result = _load("bench_retrieval").evaluate()
    s = result["summary"]
    assert s["cases"] == 13 and s["questions"] >= 13 * 26
    assert s["answerable"] + s["none_expected"] == s["questions"]
    assert 0 <= s["top1_accuracy"] <= 1 and s["top1"] <= s["answerable"]
    assert len(result["per_case"]) == 13


@pytest.mark.slow
def test_bench_speed_runs_against_raw_llama(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bench = _load("bench_speed")
    monkeypatch.setattr(bench, "QUESTIONS", bench.QUESTIONS[:3])
    result = bench.run(None, "malaria-uncomplicated-adult")
    assert result["turns"] == 3 and result["model"] == "SmolLM2-135M-Instruct.Q4_1"
    ours, raw = result["edgetutor"], result["raw"]
    assert ours["evaluated_turn1"] > ours["evaluated_later_median"] > 0
    assert ours["ttft_turn1_ms"] > 0 and raw["ttft_turn1_ms"] > 0 and result["peak_rss_mb"] > 0


def test_bench_guard_reports_time_per_turn() -> None:
    result = _load("bench_guard").main(["--limit", "6", "--json"])
    assert result["turns"] > 0 and 0 < result["guard_ms_median"] <= result["guard_ms_max"]
    assert result["accepted"] < result["turns"]  # the invented sentences are rejected


@pytest.mark.slow
def test_bench_fidelity_reports_per_model() -> None:
    result = _load("bench_fidelity").main(["--model", "embedded", "--case", "snakebite-adult", "--json"])
    report = result["SmolLM2-135M-Instruct.Q4_1"]
    assert set(report) == {"total", "held-out"}
    total = report["total"]
    assert total["accepted"] + total["rejected"] == total["drafts"] > 0
    assert total["violations"] == 0, total["violation_examples"]


@pytest.mark.slow
def test_bench_startup_times_every_demo_case_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # The benchmark sets these for itself (its own home, removed after): restored after the test.
    for name in ("EDGETUTOR_HOME", "EDGETUTOR_CACHE", "EDGETUTOR_UNQUALIFIED"):
        monkeypatch.setenv(name, "unused")
    result = _load("bench_startup").run(no_model=False)
    assert result["model"] == "SmolLM2-135M-Instruct.Q4_1"
    first, second = result["passes"]
    assert first["cases"] == second["cases"] == 13
    for p in (first, second):
        assert 0 < p["start_median_s"] <= p["start_max_s"] and p["ready_median_s"] >= p["start_median_s"] > 0
