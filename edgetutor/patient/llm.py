"""The model behind the patient's voice: one backend protocol, llama.cpp and a scripted stand-in.

`LlamaBackend` runs a GGUF model through llama-cpp-python. It formats the conversation with the
model's own chat template and hands llama.cpp the prompt's tokens, so that a turn which repeats the
previous conversation (same system prompt, same history) only evaluates the new tokens: llama.cpp
keeps the previous prompt in its KV cache. `TurnStats.evaluated_tokens` shows how much that saved.

`ScriptedBackend` replays queued replies for UI tests, with the same interface.

llama-cpp-python is imported only when a model is loaded: importing this module is cheap.
A backend is not thread-safe; run one `stream` at a time (the TUI uses one exclusive worker).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..errors import ModelError
from ..portable import usable_cpus
from . import prefix
from .gguf import GGUFInfo, read_info
from .models import ModelEntry, discover, pick

if TYPE_CHECKING:
    from llama_cpp import Llama

Message = dict[str, str]

# Greedy decoding by default: the patient should say the same thing for the same question, and
# tests must be reproducible. Callers may raise the temperature; the seed keeps it repeatable.
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.0


@dataclass
class TurnStats:
    """Counts and timings of one `stream` call (filled in as the reply is generated)."""

    prompt_tokens: int = 0
    evaluated_tokens: int = 0  # prompt tokens minus the prefix reused from the KV cache
    generated_tokens: int = 0
    ttft_s: float = 0.0  # time to first token: mostly the evaluation of the prompt
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Generation speed after the first token (0.0 when it cannot be measured)."""
        span = self.total_s - self.ttft_s
        return (self.generated_tokens - 1) / span if self.generated_tokens > 1 and span > 0 else 0.0


@dataclass
class PrefixReport:
    """How a case's stable prompt prefix was made ready (see `LlamaBackend.prepare_prefix`)."""

    source: str  # "loaded" (state file), "evaluated" (and saved), "ready" (already in memory), "none"
    tokens: int = 0
    seconds: float = 0.0
    saved: bool = False


class Backend(Protocol):
    """What the patient needs from a language model."""

    name: str
    last: TurnStats

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
        repeat_penalty: float = 1.0,
    ) -> Iterator[str]:
        """Yield the reply to `messages` (role/content dicts) in pieces as they are generated.

        `repeat_penalty` > 1 makes recently generated tokens less likely (llama.cpp's penalty).

        Raises ModelError (before the first piece) when the prompt does not fit the context.
        """
        ...


# -- llama.cpp -----------------------------------------------------------------------------------
THREADS_ENV = "EDGETUTOR_THREADS"


def default_threads() -> int:
    """Threads for llama.cpp: `EDGETUTOR_THREADS` if set (e.g. 3 on a 4-core Pi, leaving one core
    to the terminal app), else one per physical core.

    Raises ModelError (one line) if the variable is not a whole number from 1 to 256.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return physical_cores()
    if not raw.isdigit() or not 1 <= int(raw) <= 256:
        raise ModelError(f"{THREADS_ENV} must be a whole number from 1 to 256 (got {raw!r})")
    return int(raw)


def physical_cores() -> int:
    """Physical CPU cores this process may run on.

    llama.cpp runs fastest with one thread per physical core; hyper-threads only add contention.
    Reads Linux sysfs, then /proc/cpuinfo; elsewhere falls back to the logical CPU count.
    """
    allowed = usable_cpus()
    cores: set[tuple[str, str]] = set()
    with contextlib.suppress(OSError):
        for cpu in allowed:
            topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
            cores.add(
                ((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip())
            )
        return max(1, len(cores))
    with contextlib.suppress(OSError, ValueError):
        cores = set()
        wanted = set(allowed)
        for block in Path("/proc/cpuinfo").read_text().split("\n\n"):
            fields = dict(
                (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
            )
            if "core id" in fields and int(fields.get("processor", "-1")) in wanted:
                cores.add((fields.get("physical id", "0"), fields["core id"]))
        if cores:
            return len(cores)
    return max(1, len(allowed))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Send C-level stderr to a temporary file while the block runs; yield its lines after.

    verbose=False does not silence everything llama.cpp and ggml print while loading (backend
    registration, some warnings), and that chatter would land in the middle of the terminal UI.
    The captured text is kept so that a load failure can say what llama.cpp complained about.
    """
    captured: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (e.g. pythonw): nothing to silence
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.extend(sink.read().decode("utf-8", errors="replace").splitlines())


_GGML_LOG_LEVEL_ERROR = 4  # ggml.h; llama-cpp-python's own level table predates the DEBUG level


@contextlib.contextmanager
def _llama_errors() -> Iterator[list[str]]:
    """Collect llama.cpp's error-level log lines while the block runs.

    With verbose=False llama-cpp-python drops them, and its exception only says "Failed to load
    model from file"; the first error line says why (e.g. "key 'x' has invalid GGUF type 9").
    """
    errors: list[str] = []
    try:
        import ctypes

        from llama_cpp import _logger
        from llama_cpp import llama_cpp as capi
    except ImportError:
        yield errors
        return

    def collect(level: int, text: bytes | None, _user_data: Any) -> None:
        if level == _GGML_LOG_LEVEL_ERROR and text:
            errors.append(text.decode("utf-8", errors="replace").strip())

    callback = capi.llama_log_callback(collect)  # kept referenced until llama.cpp lets go of it
    capi.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield errors
    finally:
        capi.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def _llama_complaint(logged: list[str], printed: list[str]) -> str:
    """The most telling thing llama.cpp said: its first logged error, else a printed error line."""
    if logged:
        return logged[0]
    for line in reversed(printed):
        if "error" in line.lower() or "failed" in line.lower():
            return line.strip()
    return ""


class LlamaBackend:
    """A GGUF model run by llama-cpp-python, speaking through the model's own chat template."""

    def __init__(
        self, path: str | Path, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0
    ) -> None:
        """Check the file with the pure-Python GGUF reader, then load it with llama.cpp (mmap).

        `n_ctx` is capped at the model's trained context length.
        Raises ModelError naming the file if it is missing, truncated, not a GGUF file, has no chat
        template, or llama.cpp cannot load it (or llama-cpp-python is not installed).
        """
        self.path = Path(path)
        # llama.cpp can abort the process on a malformed file: only hand it files that parse.
        self.info: GGUFInfo = read_info(self.path)
        if self.info.architecture is None:
            raise ModelError(f"{self.path}: no general.architecture in its metadata: not a model file")
        if self.info.chat_template is None:
            raise ModelError(
                f"{self.path}: has no chat template (tokenizer.chat_template): use an instruct/chat model"
            )
        self.name = self.path.stem
        self.seed = seed
        self.n_ctx = min(n_ctx, self.info.context_length) if self.info.context_length else n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_batch = min(512, self.n_ctx)  # prompt tokens evaluated per pass over the weights
        self.last = TurnStats()
        self.load_s = 0.0
        self.prefix_report: PrefixReport | None = None
        self._prefill_thread: threading.Thread | None = None
        self._prefill_error: BaseException | None = None

        start = time.perf_counter()
        with _quiet_stderr() as chatter, _llama_errors() as logged:
            try:
                from llama_cpp import Llama, llama_chat_format
            except ImportError as err:
                raise ModelError(
                    f"{self.path}: cannot load: llama-cpp-python is not installed ({err})"
                ) from None
            try:
                self._formatter = llama_chat_format.Jinja2ChatFormatter(
                    template=self.info.chat_template,
                    eos_token=self.info.eos_token or "",
                    bos_token=self.info.bos_token or "",
                    add_generation_prompt=True,
                )
            except Exception as err:  # jinja2's TemplateSyntaxError and friends
                raise ModelError(f"{self.path}: its chat template is invalid: {err}") from None
            try:
                self._llm: Llama = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_batch=self.n_batch,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    use_mmap=True,
                    seed=seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as err:
                failure: Exception | None = err
            else:
                failure = None
        if failure is not None:
            why = _llama_complaint(logged, chatter) or str(failure)
            raise ModelError(f"{self.path}: llama.cpp could not load it: {why}")
        self.load_s = time.perf_counter() - start
        # llama.cpp ends the reply at the end-of-turn token itself; the string is a second net for
        # templates whose turn end is not the vocabulary's EOG token.
        self._stop = [self.info.eos_token] if self.info.eos_token else []

    def close(self) -> None:
        """Free the model and its context (the backend cannot be used afterwards)."""
        self.wait_prefill()
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()

    def reset(self) -> None:
        """Forget the cached conversation: the next turn evaluates its whole prompt."""
        self.wait_prefill()
        self._llm.reset()

    # -- the case's stable prefix -----------------------------------------------------------------

    def prefill(self, case_key: str, variants: list[list[Message]]) -> None:
        """Make the case's stable prompt prefix ready in a background thread (from its saved state,
        or by evaluating it and saving that state), while the trainee reads the opening; the first
        turn waits for it to finish. Its outcome is in `prefix_report` afterwards."""
        self.wait_prefill()
        self.prefix_report = None
        thread = threading.Thread(
            target=self._prefill_in_background, args=(case_key, variants), name="prefill", daemon=True
        )
        self._prefill_thread = thread
        thread.start()

    def wait_prefill(self) -> None:
        """Block until a background prefill (if any) has finished."""
        thread = self._prefill_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
            self._prefill_thread = None

    def _prefill_in_background(self, case_key: str, variants: list[list[Message]]) -> None:
        try:
            self.prefix_report = self.prepare_prefix(case_key, variants)
        except Exception as err:  # the turn then evaluates its whole prompt, as without a cache
            self._prefill_error = err
            self.prefix_report = PrefixReport("none")

    def prepare_prefix(self, case_key: str, variants: list[list[Message]]) -> PrefixReport:
        """Put the tokens every variant starts with into llama.cpp's KV cache: from the state file
        saved for exactly this model, prompt layout, case and tokens if there is a sound one, else
        by evaluating them (then saving the state for next time). Raises ModelError if the chat
        template rejects the variants."""
        start = time.perf_counter()
        tokens = prefix.common_prefix([self.tokenize(v) for v in variants])
        llm = self._llm
        n = len(tokens)
        if n < 2:
            return PrefixReport("none")
        if llm.n_tokens >= n and llm.input_ids[:n].tolist() == tokens:
            return PrefixReport("ready", n, time.perf_counter() - start)
        key = prefix.state_key(prefix.model_sha256(self.path), case_key, tokens)
        saved = prefix.load(case_key, key, tokens)
        if saved is not None and self._restore(saved):
            return PrefixReport("loaded", n, time.perf_counter() - start)
        llm.reset()
        llm.eval(tokens)
        written = prefix.save(case_key, key, tokens, self._snapshot())
        return PrefixReport("evaluated", n, time.perf_counter() - start, saved=written is not None)

    def _snapshot(self) -> bytes:
        import ctypes

        from llama_cpp import llama_cpp as capi

        ctx = self._llm._ctx.ctx
        size = capi.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * size)()
        n = capi.llama_state_get_data(ctx, buf, size)
        return ctypes.string_at(buf, n)

    def _restore(self, saved: prefix.PrefixState) -> bool:
        """Load a saved state into the context; False (and an empty cache) if llama.cpp refuses it."""
        import ctypes

        from llama_cpp import llama_cpp as capi

        llm = self._llm
        llm.reset()
        buf = (ctypes.c_uint8 * len(saved.state)).from_buffer_copy(saved.state)
        if capi.llama_state_set_data(llm._ctx.ctx, buf, len(saved.state)) != len(saved.state):
            llm.reset()
            return False
        n = len(saved.tokens)
        llm.input_ids[:n] = saved.tokens
        llm.n_tokens = n
        return True

    def format(self, messages: list[Message]) -> str:
        """The prompt text for `messages`, rendered with the model's chat template.

        Raises ModelError if the template rejects the conversation (e.g. roles not alternating).
        """
        try:
            result = self._formatter(messages=cast(Any, messages))
        except Exception as err:  # jinja2 errors and the template's own raise_exception()
            raise ModelError(f"{self.path}: the chat template rejected the conversation: {err}") from None
        return result.prompt

    def tokenize(self, messages: list[Message]) -> list[int]:
        """The prompt tokens for `messages` exactly as they are given to the model.

        Raises ModelError if the chat template rejects the conversation.
        """
        prompt = self.format(messages)
        # The template writes the BOS token itself when the model wants it; tokenizing without
        # add_bos avoids a doubled BOS, and the check below covers templates that forget it.
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        bos = self._llm.token_bos()
        if bos >= 0 and self._llm._model.add_bos_token() and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return tokens

    def count_tokens(self, messages: list[Message]) -> int:
        """How many context tokens `messages` take (so a caller can trim history to fit `n_ctx`).

        Raises ModelError if the chat template rejects the conversation.
        """
        return len(self.tokenize(messages))

    def _evaluated(self, tokens: list[int]) -> int:
        """How many of `tokens` llama.cpp will evaluate, given what its KV cache holds.

        Mirrors Llama.generate() in llama-cpp-python 0.3.x: the longest common prefix with the
        tokens of the previous call is kept, except that at least one token is re-evaluated to
        refresh the logits, unless the whole prompt is cached with live logits.
        """
        llm = self._llm
        if llm.n_tokens == 0:
            return len(tokens)
        prefix = 0
        for cached, new in zip(llm._input_ids.tolist(), tokens, strict=False):
            if cached != new:
                break
            prefix += 1
        consumed = prefix == len(tokens)
        if consumed and llm.n_tokens == len(tokens) and not getattr(llm, "_requires_eval", True):
            return 0
        reuse = prefix - 1 if consumed else prefix
        # Recurrent models' memory cannot drop a suffix, so llama.cpp starts from scratch.
        partial_ok = not (getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False))
        return len(tokens) - reuse if reuse > 0 and partial_ok else len(tokens)

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        stop: list[str] | None = None,
        repeat_penalty: float = 1.0,
    ) -> Iterator[str]:
        """Yield the model's reply to `messages` in pieces as llama.cpp generates them.

        The reply ends at the model's end-of-turn token, a `stop` string or `max_tokens`.
        `self.last` holds the turn's TurnStats (complete once the iterator is exhausted or closed).
        Raises ModelError now (not on iteration) if the chat template rejects `messages` or the
        prompt plus `max_tokens` does not fit in `n_ctx` (the caller trims the history);
        raises ModelError during iteration if llama.cpp fails.
        """
        self.wait_prefill()
        tokens = self.tokenize(messages)
        if len(tokens) + max_tokens > self.n_ctx:
            raise ModelError(
                f"{self.path}: the prompt ({len(tokens)} tokens) plus the reply ({max_tokens}) "
                f"does not fit the context of {self.n_ctx} tokens"
            )
        stats = TurnStats(prompt_tokens=len(tokens), evaluated_tokens=self._evaluated(tokens))
        self.last = stats
        return self._generate(
            tokens, stats, max_tokens, temperature, self._stop + (stop or []), repeat_penalty
        )

    def _generate(
        self,
        tokens: list[int],
        stats: TurnStats,
        max_tokens: int,
        temperature: float,
        stop: list[str],
        repeat_penalty: float = 1.0,
    ) -> Iterator[str]:
        from llama_cpp import StoppingCriteriaList

        llm = self._llm
        start = time.perf_counter()
        sampled = False

        # llama.cpp calls this after sampling each token (and once more at the end): the first call
        # marks the time to first token.
        def first_token(_ids: Any, _logits: Any) -> bool:
            nonlocal sampled
            if not sampled:
                sampled = True
                stats.ttft_s = time.perf_counter() - start
            return False

        chunks = cast(
            Generator[dict[str, Any], None, None],
            llm.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=stop,
                repeat_penalty=repeat_penalty,
                stream=True,
                seed=self.seed,
                stopping_criteria=StoppingCriteriaList([first_token]),
            ),
        )
        try:
            for chunk in chunks:
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"{self.path}: generation failed: {err}") from None
        finally:
            # A caller that stops reading (a cancelled worker) must not leave llama.cpp's
            # generator half-way for the next turn to trip over.
            chunks.close()
            stats.total_s = time.perf_counter() - start
            # Every sampled token but the last is fed back (evaluated) to sample the next, so the
            # context grew by one less than the number generated, whichever way the reply ended
            # (end-of-turn token, stop string, max_tokens, or the caller closing the iterator).
            if sampled:
                stats.generated_tokens = max(1, llm.n_tokens - len(tokens) + 1)


# -- scripted ------------------------------------------------------------------------------------
class ScriptedBackend:
    """Replays queued replies word by word, recording what it was asked (for UI tests)."""

    name = "scripted"

    def __init__(self, replies: Iterable[str] = ()) -> None:
        self.replies: deque[str] = deque(replies)
        self.received: list[list[Message]] = []
        self.last = TurnStats()

    def enqueue(self, text: str) -> None:
        """Queue `text` as the next reply."""
        self.replies.append(text)

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        stop: list[str] | None = None,
        repeat_penalty: float = 1.0,
    ) -> Iterator[str]:
        """Yield the next queued reply in word-sized pieces (cut at `stop` and `max_tokens`).

        Raises ModelError (at call time, like a failing model) when no reply is queued.
        """
        self.received.append([dict(m) for m in messages])
        if not self.replies:
            raise ModelError("scripted backend: no reply queued (call enqueue() first)")
        reply = self.replies.popleft()
        for s in stop or []:
            if s and s in reply:
                reply = reply[: reply.index(s)]
        # Pieces join back to exactly the reply: words with their trailing spaces.
        pieces = re.findall(r"\S+\s*|\s+", reply)[:max_tokens]
        words = sum(len(m.get("content", "").split()) for m in messages)
        self.last = TurnStats(prompt_tokens=words, evaluated_tokens=words)
        return self._replay(pieces, self.last)

    @staticmethod
    def _replay(pieces: list[str], stats: TurnStats) -> Iterator[str]:
        start = time.perf_counter()
        try:
            for piece in pieces:
                if stats.generated_tokens == 0:
                    stats.ttft_s = time.perf_counter() - start
                stats.generated_tokens += 1
                yield piece
        finally:
            stats.total_s = time.perf_counter() - start


def load_backend(entry: ModelEntry | None = None, **options: Any) -> Backend | None:
    """Load `entry`'s model, or the selected one (see `models.select`) when `entry` is None.

    `options` go to LlamaBackend (n_ctx, n_threads, seed). Returns None only when no model exists
    at all, so the patient falls back to the case's authored answers.
    Raises ModelError if the model cannot be loaded, or EDGETUTOR_MODEL names a missing model.
    """
    if entry is None:
        entry = pick(discover())
        if entry is None:
            return None
    return LlamaBackend(entry.path, **options)
