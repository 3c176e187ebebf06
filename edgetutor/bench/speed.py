"""What one model does on this machine: our pipeline and raw llama-cpp-python, measured apart.

The standard encounter is the questions in `QUESTIONS`, asked of one case (by default the frozen
copy in `standard_case.yaml`). It is played twice on the same model, each time in a fresh process:

- `measure_ours`: through `Encounter` (retrieval with the embedding model when it is installed,
  the prompt, KV-prefix reuse, the guard), timed as the trainee sees it: from the question to the
  first streamed piece, so retrieval, prompt building and tokenising count;
- `measure_raw`: the very same chat messages sent straight to
  `llama_cpp.Llama.create_chat_completion` (streamed, greedy, same context size and threads),
  with nothing of ours around it.

Each runs in its own process (`run_in_child`) so that its peak RSS is its own: a model measured
earlier, or our embedding model, cannot hide or inflate another's memory. Raw tokens evaluated per
turn come from llama.cpp's own performance counters, not from our KV-prefix accounting, so the two
columns are independent measurements.

Nothing here is imported by `edgetutor` at start-up; llama-cpp-python is imported in the children.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..cases import load_case, parse_case_text
from ..errors import ModelError
from ..patient.embed import load_encoder
from ..patient.encounter import Encounter
from ..patient.llm import LlamaBackend
from ..patient.prompt import prefix_key, prefix_variants
from ..portable import current_rss_bytes, peak_rss_bytes

STANDARD_CASE = "standard_case.yaml"
# Questions a trainee asks early in the standard case; each retrieves at least one fact, so each
# is a turn for the model.
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

T = TypeVar("T")


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (0.0 where the system does not say)."""
    return round((peak_rss_bytes() or 0) / (1024 * 1024), 1)


def _rss_mb() -> float:
    return round((current_rss_bytes() or 0) / (1024 * 1024), 1)


def load_standard_case(path: str | Path | None = None) -> Any:
    """The case of the standard encounter (`path` replaces it). Raises CaseFormatError."""
    if path is not None:
        return load_case(Path(path))
    text = resources.files(__package__).joinpath(STANDARD_CASE).read_text(encoding="utf-8")
    return parse_case_text(text, STANDARD_CASE)


def measure_ours(
    model_path: str,
    questions: list[str],
    n_threads: int | None = None,
    case_file: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Play `questions` through the patient pipeline on the model at `model_path`.

    Questions the patient answers without the model are skipped; with `limit`, play stops once that
    many turns reached the model. Returns the load times,
    one row per turn, the chat messages each turn sent (for `measure_raw`) and the peak RSS.
    Raises ModelError if the model cannot be loaded.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `edgetutor` itself runs (cli.main)
    # This child's prefix state goes to a folder of its own, removed after: a benchmark leaves
    # nothing behind in the user's cache.
    scratch = tempfile.TemporaryDirectory(prefix="edgetutor-bench-")
    os.environ["EDGETUTOR_CACHE"] = scratch.name

    case = load_standard_case(case_file)
    # Imported before the clock starts, as measure_raw does: load times compare loading only.
    import llama_cpp  # noqa: F401

    rss = [_rss_mb()]  # app, then after the model, the embedding model, the turns
    start = time.perf_counter()
    backend = LlamaBackend(model_path, n_threads=n_threads)
    load_s = time.perf_counter() - start
    rss.append(_rss_mb())
    # The case was played before (or its pack installed with --warm): its prefix state is saved.
    # Saving it here is not timed; the encounter below loads it as every later start does.
    built = backend.prepare_prefix(prefix_key(case), prefix_variants(case))
    backend.reset()
    start = time.perf_counter()
    encoder = load_encoder()
    encoder_load_s = time.perf_counter() - start
    encounter = Encounter(case, backend, encoder)
    # The trainee reads the opening statement first; the preparation started with the encounter
    # (tables, the prefix state) finishes meanwhile. Waiting here stands for that reading.
    encounter.wait_ready()
    rss.append(_rss_mb())
    weights_mb = Path(model_path).stat().st_size / (1024 * 1024)
    n_batch = backend.n_batch

    turns: list[dict[str, Any]] = []
    sent: list[list[dict[str, str]]] = []
    # The chats the encounter really sends are what raw llama-cpp-python gets too (however the
    # encounter chose the facts: a question in several parts, a topic, a retried draft).
    asked: list[list[dict[str, str]]] = []
    streaming = backend.stream

    def recording(chat: list[dict[str, str]], **kw: Any) -> Any:
        asked.append(chat)
        return streaming(chat, **kw)

    backend.stream = recording  # type: ignore[method-assign,assignment]
    for question in questions:
        if limit is not None and len(turns) >= limit:
            break
        asked.clear()
        first_at: list[float] = []

        def mark(_piece: str, sink: list[float] = first_at) -> None:
            if not sink:
                sink.append(time.perf_counter())

        start = time.perf_counter()
        reply = encounter.act(question, on_token=mark)
        wall = time.perf_counter() - start
        if not asked:
            continue  # answered without the model (nothing to compare)
        sent.append(asked[-1])
        last = backend.last
        turns.append(
            {
                "question": question,
                "ttft_ms": round(((first_at[0] if first_at else start + wall) - start) * 1000, 1),
                "tokens_per_s": round(last.tokens_per_s, 1),
                "prompt_tokens": last.prompt_tokens,
                "evaluated_tokens": last.evaluated_tokens,
                "generated_tokens": last.generated_tokens,
                "weights_read_mb": round(
                    weights_mb * (-(-last.evaluated_tokens // n_batch) + last.generated_tokens), 0
                ),
                "source": reply.source,
            }
        )
    result = {
        "load_s": round(load_s, 3),
        "encoder_load_s": round(encoder_load_s, 3),
        "retrieval": "hybrid" if encoder is not None else "lexical",
        "threads": backend.n_threads,
        "n_ctx": backend.n_ctx,
        "case": case.id,
        "turns": turns,
        "sent": sent,
        "prefix": backend.prefix_report.source if backend.prefix_report else "none",
        "prefix_tokens": built.tokens,
        "prefix_build_s": round(built.seconds, 3) if built.source == "evaluated" else None,
    }
    peak = peak_rss_mb()
    backend.close()
    result["peak_rss_mb"] = peak
    scratch.cleanup()
    result["memory"] = {
        "app_mb": rss[0],
        "model_mb": round(rss[1] - rss[0], 1),
        "embedder_mb": round(rss[2] - rss[1], 1),
        "turns_mb": round(max(0.0, peak - rss[2]), 1),
    }
    return result


def measure_raw(
    model_path: str, sent: list[list[dict[str, str]]], n_ctx: int, n_threads: int, max_tokens: int
) -> dict[str, Any]:
    """Send each chat in `sent` to plain llama-cpp-python, as a program without EdgeTutor would.

    Returns the load time, one row per turn and the peak RSS.
    Raises ModelError if llama.cpp cannot load the model.
    """
    from llama_cpp import Llama, LogitsProcessorList  # only in the child process that measures
    from llama_cpp import llama_cpp as capi

    start = time.perf_counter()
    try:
        llm = Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=0,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as err:
        raise ModelError(f"{model_path}: llama.cpp could not load it: {err}") from None
    load_s = time.perf_counter() - start

    turns: list[dict[str, Any]] = []
    for chat in sent:
        sampled: list[float] = []  # when each token was about to be sampled

        # Called by llama-cpp-python once per sampled token: an exact token count without
        # touching the text.
        def count(_ids: Any, scores: Any, sink: list[float] = sampled) -> Any:
            sink.append(time.perf_counter())
            return scores

        capi.llama_perf_context_reset(llm.ctx)
        first: float | None = None
        start = time.perf_counter()
        for chunk in llm.create_chat_completion(
            messages=chat,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=0.0,
            stop=["\n"],
            stream=True,
            logits_processor=LogitsProcessorList([count]),
        ):
            delta: dict[str, Any] = chunk["choices"][0]["delta"]  # type: ignore[index,assignment]
            if first is None and delta.get("content"):
                first = time.perf_counter()
        end = time.perf_counter()
        perf = capi.llama_perf_context(llm.ctx)
        # Every sampled token but the last was fed back (decoded) to sample the next one; the rest
        # of what llama.cpp decoded this turn is the part of the prompt it did not have cached.
        fed_back = max(0, len(sampled) - 1)
        span = end - sampled[0] if sampled else 0.0
        turns.append(
            {
                "ttft_ms": round(((first or end) - start) * 1000, 1),
                "tokens_per_s": round(fed_back / span, 1) if fed_back and span > 0 else 0.0,
                "prompt_tokens": llm.n_tokens - fed_back,
                "evaluated_tokens": perf.n_p_eval + perf.n_eval - fed_back,
                "generated_tokens": len(sampled),
            }
        )
    llm.close()
    return {"load_s": round(load_s, 3), "turns": turns, "peak_rss_mb": peak_rss_mb()}


def run_in_child(function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in a fresh process (spawned, not forked) and return its result.

    Spawned, so the child's memory holds only what it loads itself. Works from the frozen build
    too (its entry point calls multiprocessing.freeze_support()). Exceptions raised in the child
    are raised here; a child that dies (llama.cpp aborting on a bad file) raises ModelError.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            return pool.submit(function, *args).result()
        except concurrent.futures.process.BrokenProcessPool:
            raise ModelError("the measuring process died (llama.cpp crashed or ran out of memory)") from None
