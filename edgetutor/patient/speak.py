"""Speak, checked as it streams: the model's reply reaches the screen one checked sentence at a time.

The model generates; each sentence, once complete, goes through `Guard.check_sentence`. Sentences
that pass are held until the reply so far also passes the whole-draft rules (the key content of
the best fact is said; not too long), then handed to `on_token`. Generation stops early:
- at the first sentence that fails, at a repeated 4-word sequence, or past the word limit;
- at stop strings that start another speaker's turn or echo the prompt;
- at a token cap tied to the authored length (`Guard.token_limit`);
and llama.cpp's repeat penalty makes loops less likely in the first place.

The reply is the longest checked prefix: when a later sentence fails (a loop, an added claim),
the sentences before it stand if, on their own, they pass the whole check; the cut and its reason
are recorded. So what the trainee saw is what the reply is; if no prefix passes, the authored
answer replaces an empty line, and the full draft is kept for the record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ..cases.schema import Fact
from ..language.lexicon import tokens
from .guard import Guard, repeated_ngram
from .llm import Backend
from .sentences import SentenceStream, split_sentences

# Strings that mean the model has left the patient's turn: it starts a new line, speaks for the
# health worker or someone else, or repeats the prompt's own labels.
STOP_STRINGS = [
    "\n", "Health worker:", "The health worker asks", "WHAT YOU KNOW", "Your answer:", "Patient:",
    "Nurse:", "Doctor:", "User:", "Assistant:",
]  # fmt: skip
# Above 1 the model avoids tokens it has just produced (a loop's fuel). llama.cpp looks back 64
# tokens, which reach into the prompt's facts, so it is kept mild: a high value pushes a small
# model off the facts' own words and into invention.
REPEAT_PENALTY = 1.1
# A speaker label a model may put before its words ("Patient:", "Joseph:").
_LABEL = re.compile(r"^(patient|answer|reply|me|[A-Z][a-z]+)\s*:\s*")


def tidy(text: str, first: bool = True) -> str:
    """Text without surrounding quotes and, at the start of a reply, a speaker label."""
    text = text.strip()
    if first:
        text = _LABEL.sub("", text)
    return text.strip().strip('"').strip()


def speak_checked(
    backend: Backend,
    messages: list[dict[str, str]],
    guard: Guard,
    facts: list[Fact],
    question: str,
    on_token: Callable[[str], None] | None,
    *,
    temperature: float = 0.0,
    repeat_penalty: float = REPEAT_PENALTY,
) -> tuple[str, dict[str, Any]]:
    """Generate and check a reply: (the checked reply, or the full draft if no prefix passed; stats).

    `on_token` receives only checked text (a sentence, with a leading space after the first), and
    an empty string after every generated piece, so that a caller can cancel between tokens by
    raising from it. Raises EdgeTutorError (ModelError) from the backend or from `on_token`.
    Stats: `guard_ms` (time spent checking), `cut` (why generation stopped early and what was
    dropped), `shown` (sentences handed to `on_token`).
    """
    authored = " ".join(f.answer for f in facts)
    word_limit = guard.word_limit(facts)
    max_tokens = guard.token_limit(facts)
    splitter = SentenceStream()
    passed: list[str] = []  # sentences that passed their own check, in order
    shown = 0  # of them, how many went to on_token: always a prefix that passes the whole check
    cut: str | None = None
    guard_s = 0.0

    def judge(sentences: list[str]) -> bool:
        nonlocal cut, guard_s, shown
        start = time.perf_counter()
        try:
            for raw in sentences:
                sentence = tidy(raw, first=not passed)
                if not sentence:
                    continue
                reasons, _ = guard.check_sentence(sentence, facts, passed)
                if reasons:
                    cut = reasons[0]
                    return False
                passed.append(sentence)
            if sentences and guard.check(" ".join(passed), facts, question).accepted:
                # Held sentences go out once the reply so far says the key content.
                for sentence in passed[shown:]:
                    if on_token:
                        on_token(sentence if shown == 0 else " " + sentence)
                    shown += 1
            return True
        finally:
            guard_s += time.perf_counter() - start

    stream = backend.stream(
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        stop=STOP_STRINGS,
        repeat_penalty=repeat_penalty,
    )
    finished = False
    try:
        for piece in stream:
            if on_token:
                on_token("")
            if not judge(splitter.feed(piece)):
                break
            start = time.perf_counter()
            gram = repeated_ngram(splitter.text, authored)
            too_long = len(tokens(splitter.text)) > word_limit
            guard_s += time.perf_counter() - start
            if gram:
                cut = f"repetition: repeats {gram!r}"
                break
            if too_long:
                cut = f"too long: over {word_limit} words"
                break
        else:
            finished = True
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    if finished:
        last = getattr(backend, "last", None)
        if last is not None and getattr(last, "generated_tokens", 0) >= max_tokens:
            cut = f"too long: stopped at the cap of {max_tokens} tokens"  # a fragment: not judged
        else:
            judge(splitter.finish())
    draft = splitter.text.strip()
    reply = " ".join(passed[:shown])
    stats: dict[str, Any] = {"guard_ms": round(guard_s * 1000, 2), "shown": shown}
    if cut is not None:
        dropped = split_sentences(draft)[shown:] if shown else [draft]
        stats["cut"] = {"reason": cut, "dropped": " ".join(dropped)}
    return (reply if shown else draft), stats


__all__ = ["REPEAT_PENALTY", "STOP_STRINGS", "speak_checked", "tidy"]
