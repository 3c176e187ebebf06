"""bench_sync must keep running: a tiny run against a real hub (figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_sync_sends_everything_once(capsys) -> None:  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_sync", ROOT / "benchmarks" / "bench_sync.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--events", "60", "--batch-size", "25", "--json"])
    assert (result["events"], result["sent"], result["hub_events"]) == (60, 60, 60)
    assert (result["resent"], result["pending_after"]) == (0, 0)
    assert result["sync_s"] > 0 and result["seal_s"] > 0 and result["event_bytes"] > 500
    assert '"sync_per_s"' in capsys.readouterr().out
