"""Benchmarks must keep running: each is run here on a small input (figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
