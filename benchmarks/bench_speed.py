"""Speed of the patient on the real model, next to raw llama-cpp-python in the same run.

The measuring code is `edgetutor.bench` (also behind `edgetutor bench`): a standard encounter is
played through Encounter (retrieval, prompt, KV-prefix reuse, guard) and the very same chat
messages are sent straight to `llama_cpp.Llama.create_chat_completion`, each in its own process.
For each: time to first token on turn 1 and on later turns, generation tokens/s, tokens evaluated
per turn and peak RSS. Ratios ours/raw show our overhead (target: under 10%).

This script plays one case of the demo pack's sources (any case, `--case`) on one model, where
`edgetutor bench` uses its frozen standard case on every model.

Usage: python benchmarks/bench_speed.py [--model M] [--case ID] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

# As `edgetutor` itself does (cli.main): idle OpenBLAS threads spinning after an embedding would
# otherwise steal the cores llama.cpp is about to use.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from edgetutor.bench.speed import QUESTIONS  # noqa: E402 - the one standard question list

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "casepacks" / "demo" / "cases"


def run(model: str | None, case_id: str) -> dict[str, Any]:
    from edgetutor.bench.report import format_report, run_bench
    from edgetutor.patient.models import select

    # The model in use (as `edgetutor run` would pick it), named by its file so only it is measured.
    path = str(select(model).path)
    report = run_bench(path, questions=QUESTIONS, case_file=str(CASES / f"{case_id}.yaml"))
    (m,) = report.models
    if m.edgetutor is None or m.raw is None or m.ratio is None:
        raise SystemExit(f"bench_speed: {m.verdict}")
    o, r = m.edgetutor, m.raw
    return {
        "model": m.name,
        "case": report.case,
        "turns": len(o.turns),
        "load_s": o.load_s,
        "threads": report.machine.threads,
        "edgetutor": {
            "ttft_turn1_ms": o.ttft_turn1_ms,
            "ttft_later_ms": o.ttft_later_ms,
            "tokens_per_s": o.tokens_per_s,
            "evaluated_turn1": o.evaluated_turn1,
            "evaluated_later_median": o.evaluated_later_median,
            "prompt_tokens_median": o.prompt_tokens_median,
            "answered_by_model": o.replies_from_model,
        },
        "raw": {
            "ttft_turn1_ms": r.ttft_turn1_ms,
            "ttft_later_ms": r.ttft_later_ms,
            "tokens_per_s": r.tokens_per_s,
        },
        "ratio_ttft_later": m.ratio.ttft_later,
        "ratio_tokens_per_s": m.ratio.tokens_per_s,
        "peak_rss_mb": o.peak_rss_mb,
        "raw_peak_rss_mb": r.peak_rss_mb,
        "report": format_report(report),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Patient speed vs raw llama-cpp-python")
    parser.add_argument("--model", default=None)
    parser.add_argument("--case", default="malaria-uncomplicated-adult")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.model, args.case)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "report"}))
    else:
        print(result["report"])
    return result


if __name__ == "__main__":
    main()
