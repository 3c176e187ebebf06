"""Speed of the patient on the real model, next to raw llama-cpp-python in the same run.

A standard encounter (the questions of one demo case) is played twice on the same model:
- `edgetutor`: through Encounter (retrieval, prompt, KV-prefix accounting, guard);
- `raw`: the very same chat messages sent straight to `llama_cpp.Llama.create_chat_completion`
  (streamed, same sampling, same context size and threads), with nothing of ours around it.
For each: time to first token on turn 1 and on later turns, generation tokens/s, and tokens
evaluated per turn (ours: counted from llama.cpp's KV cache). Ratios ours/raw show our overhead
(target: under 10%). Peak RSS of the process is printed at the end.

Usage: python benchmarks/bench_speed.py [--model M] [--case ID] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

# As `edgetutor` itself does (cli.main): idle OpenBLAS threads spinning after an embedding would
# otherwise steal the cores llama.cpp is about to use.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "casepacks" / "demo" / "cases"
QUESTIONS = [
    "What brings you here today?",
    "How long have you had the fever?",
    "Any fits or jerking?",
    "Have you taken any medicine for this?",
    "Do you sleep under a mosquito net?",
    "Are you able to eat and drink?",
    "Any problems passing urine?",
    "Do you drink alcohol or smoke?",
]


def run(model: str | None, case_id: str) -> dict[str, Any]:
    from edgetutor.cases import load_case
    from edgetutor.patient.encounter import MAX_TOKENS, Encounter
    from edgetutor.patient.llm import LlamaBackend
    from edgetutor.patient.models import select
    from edgetutor.patient.prompt import messages
    from edgetutor.patient.session import load_encoder

    case = load_case(CASES / f"{case_id}.yaml")
    entry = select(model)
    start = time.perf_counter()
    backend = LlamaBackend(entry.path)
    load_s = time.perf_counter() - start
    encounter = Encounter(case, backend, load_encoder())

    ours: list[dict[str, Any]] = []
    sent: list[list[dict[str, str]]] = []
    for q in QUESTIONS:
        found = encounter.index.search(q)
        facts = [m.fact for m in found.matches]
        if not facts:
            continue
        sent.append(messages(case, q, facts))
        first_at: list[float] = []
        t0 = time.perf_counter()

        # As the trainee sees it: from the question to the first streamed piece, so retrieval,
        # prompt building and tokenising count; the guard runs after the reply and does not.
        def mark(_piece: str, sink: list[float] = first_at) -> None:
            if not sink:
                sink.append(time.perf_counter())

        reply = encounter.act(q, on_token=mark)
        wall = time.perf_counter() - t0
        last = backend.last
        ours.append(
            {
                "ttft_s": (first_at[0] - t0) if first_at else wall,
                "tokens_per_s": last.tokens_per_s,
                "evaluated": last.evaluated_tokens,
                "prompt": last.prompt_tokens,
                "generated": last.generated_tokens,
                "wall_s": wall,
                "source": reply.source,
            }
        )
    backend.close()

    # Raw llama-cpp-python: a fresh model, the same messages, nothing of ours in between.
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(entry.path), n_ctx=backend.n_ctx, n_threads=backend.n_threads, verbose=False, seed=0
    )
    raw: list[dict[str, Any]] = []
    for msgs in sent:
        t0 = time.perf_counter()
        first = None
        n = 0
        for chunk in llm.create_chat_completion(
            messages=msgs,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            temperature=0.0,
            stop=["\n"],
            stream=True,
        ):
            delta = chunk["choices"][0]["delta"]  # type: ignore[index]
            if delta.get("content"):
                n += 1
                if first is None:
                    first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        first = first or total
        raw.append(
            {"ttft_s": first, "tokens_per_s": (n - 1) / (total - first) if n > 1 and total > first else 0.0}
        )

    def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
        later = rows[1:] or rows
        speeds = [r["tokens_per_s"] for r in rows if r["tokens_per_s"] > 0]
        return {
            "ttft_turn1_ms": round(rows[0]["ttft_s"] * 1000, 1),
            "ttft_later_ms": round(statistics.median(r["ttft_s"] for r in later) * 1000, 1),
            "tokens_per_s": round(statistics.median(speeds), 1) if speeds else 0.0,
        }

    o, r = summary(ours), summary(raw)
    return {
        "model": entry.name,
        "case": case_id,
        "turns": len(ours),
        "load_s": round(load_s, 3),
        "threads": backend.n_threads,
        "edgetutor": o
        | {
            "evaluated_turn1": ours[0]["evaluated"],
            "evaluated_later_median": statistics.median(t["evaluated"] for t in ours[1:]),
            "prompt_tokens_median": statistics.median(t["prompt"] for t in ours),
            "answered_by_model": sum(t["source"] == "model" for t in ours),
        },
        "raw": r,
        "ratio_ttft_later": round(o["ttft_later_ms"] / r["ttft_later_ms"], 2) if r["ttft_later_ms"] else None,
        "ratio_tokens_per_s": round(o["tokens_per_s"] / r["tokens_per_s"], 2) if r["tokens_per_s"] else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Patient speed vs raw llama-cpp-python")
    parser.add_argument("--model", default=None)
    parser.add_argument("--case", default="malaria-uncomplicated-adult")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.model, args.case)
    if args.json:
        print(json.dumps(result))
        return result
    o, r = result["edgetutor"], result["raw"]
    print(
        f"model {result['model']} ({result['threads']} threads), loaded in {result['load_s']:.2f} s; {result['turns']} turns"
    )
    print(f"{'':26}{'edgetutor':>12}{'raw llama-cpp':>15}{'ratio':>8}")
    print(f"{'first token, turn 1 (ms)':26}{o['ttft_turn1_ms']:>12}{r['ttft_turn1_ms']:>15}")
    print(
        f"{'first token, later (ms)':26}{o['ttft_later_ms']:>12}{r['ttft_later_ms']:>15}{result['ratio_ttft_later']!s:>8}"
    )
    print(f"{'tokens/s':26}{o['tokens_per_s']:>12}{r['tokens_per_s']:>15}{result['ratio_tokens_per_s']!s:>8}")
    print(
        f"tokens evaluated: turn 1 {o['evaluated_turn1']}, later turns median {o['evaluated_later_median']} "
        f"(of a {o['prompt_tokens_median']}-token prompt)"
    )
    print(
        f"replies from the model: {o['answered_by_model']}/{result['turns']}; peak RSS {result['peak_rss_mb']} MB"
    )
    return result


if __name__ == "__main__":
    main()
