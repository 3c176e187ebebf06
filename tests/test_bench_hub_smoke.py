"""The hub benchmark must keep running: run here on a tiny input (figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_hub_runs_and_reports() -> None:
    spec = importlib.util.spec_from_file_location("bench_hub", ROOT / "benchmarks" / "bench_hub.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        ["--devices", "3", "--events-per-device", "20", "--batch", "10", "--clients", "3", "--json"]
    )
    assert (result["events"], result["batch"]) == (60, 10)
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["events_per_s"] > 0 and result["replay_events_per_s"] > 0
    assert result["batch_ms_p95"] >= result["batch_ms_median"] > 0 and result["db_bytes_per_event"] > 0


# Two workers spend the same buckets (the limit is the hub's): the rate is hit as with one.
@pytest.mark.parametrize(
    ("engine", "workers", "rate"), [("sqlite", "1", "20/s:20"), ("postgresql", "2", "5/s:5")]
)
def test_bench_hub_load_stores_every_event_once_and_meets_the_limit(
    engine: str, workers: str, rate: str
) -> None:
    spec = importlib.util.spec_from_file_location("bench_hub_load", ROOT / "benchmarks" / "bench_hub_load.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # 12 devices sending 20 results in batches of at most 6 (6, 6, 6, 2) through a per-address
    # limit: some answers are 429, every result still arrives exactly once.
    result = bench.main(["--devices", "12", "--events", "20", "--batch", "6", "--clients", "6",
                         "--per-address", rate, "--engine", engine, "--workers", workers,
                         "--json"])  # fmt: skip
    assert (result["engine"], result["workers"]) == (engine, int(workers))
    assert result["events_sent"] == result["events_stored"] == 240
    assert (result["lost"], result["stored_twice"]) == (0, 0)
    assert result["limited_answers"] > 0 and result["first_limit_s"] is not None
