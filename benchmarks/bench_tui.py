"""The terminal app as a user meets it: the real `edgetutor` in tmux, timed from the outside.

Measures, on the real app with the selected model (the embedded SmolLM2 by default):
- launch -> trainee screen drawn; launch -> case library on screen (after typing a name);
- question sent -> first streamed piece of the patient's reply on screen ("speaking..."), and
  -> the final reply (marked [model] or [case answer]).
The screen is read with `tmux capture-pane` every 20 ms, so figures carry up to ~20 ms of
polling delay. Needs tmux.

Usage: python benchmarks/bench_tui.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.02


class Tmux:
    """One detached tmux session running a command, read and typed into like a user would."""

    def __init__(self, command: str, env: dict[str, str], width: int = 100, height: int = 30) -> None:
        if shutil.which("tmux") is None:
            raise SystemExit("tmux is not installed (apt-get install tmux)")
        self.name = f"edgetutor-{os.getpid()}-{int(time.time() * 1000)}"
        # Textual sizes itself from COLUMNS/LINES when they are set (pytest sets 80x24 in its
        # environment, which tmux passes on): give the window's own size.
        env = {**env, "COLUMNS": str(width), "LINES": str(height)}
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                f"env {exports} {command}",
            ],
            check=True,
        )

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, found: Callable[[str], bool], timeout: float = 60.0) -> float:
        """Seconds until `found(screen)`; raises TimeoutError with the last screen."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if found(self.screen()):
                return time.perf_counter() - start
            time.sleep(POLL_S)
        raise TimeoutError("screen never showed it; last screen:\n" + self.screen())

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


QUESTIONS = ("how long have you had the fever?", "any fits or jerking?")


def log_words(screen: str) -> str:
    """The conversation log's words, in order: the first panel's column of each line, so that a
    wrapped reply ("[case" | "answer]") reads whole and the side panels' titles stay out."""
    column = []
    for line in screen.splitlines():
        if line[:1] in "│╭╰":
            end = re.search(r"[│╮╯]", line[1:])
            column.append(line[1 : end.start() + 1] if end else line[1:])
    return " ".join(re.sub(r"[\u2500-\u259f]", " ", " ".join(column)).split())


def run(
    home: Path, questions: tuple[str, ...] = QUESTIONS, size: tuple[int, int] = (100, 30)
) -> dict[str, Any]:
    """Launch the app on an EDGETUTOR_HOME with the demo pack installed and time it."""
    exe = Path(sys.executable).parent / "edgetutor"
    # A fresh home has no qualification record for the model: let it speak anyway (its replies
    # are still guarded), so that what is timed is the model, not the authored answers.
    env = {
        "EDGETUTOR_HOME": str(home),
        "EDGETUTOR_UNQUALIFIED": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TERM": "xterm-256color",
    }
    start = time.perf_counter()
    tmux = Tmux(str(exe), env, *size)
    try:
        trainee = tmux.wait_for(lambda s: "who is practising" in s)
        tmux.send("Amina", "Enter")
        library = tmux.wait_for(lambda s: "Cases for Amina" in s)
        library_total = time.perf_counter() - start
        tmux.send("/")
        time.sleep(0.3)  # let the search box take focus
        tmux.send("chills after the rains")
        # Filtered down to the one case: another title has left the screen.
        tmux.wait_for(lambda s: "Fever and chills after the rains" in s and "A heavy chest" not in s)
        tmux.send("Enter")
        tmux.wait_for(lambda s: "ask a question" in s and "Joseph Banda" in s)
        # The model loads in the background; wait for the status bar to name it.
        tmux.wait_for(lambda s: "model " in s and "loading" not in s, timeout=120)
        timings = []
        for question in questions:
            sent = time.perf_counter()
            tmux.send(question, "Enter")
            asked = f"You: {question}"

            def tail(screen: str, asked: str = asked) -> str:
                # What follows the question in the log once it is on screen (nothing before).
                flat = log_words(screen)
                return flat.split(asked)[-1] if asked in flat else ""

            # "thinking..." shows at once; "speaking..." replaces it when the first piece arrives.
            tmux.wait_for(
                lambda s, t=tail: "speaking..." in t(s) or "[model]" in t(s) or "[case answer]" in t(s)
            )
            first = time.perf_counter() - sent
            tmux.wait_for(lambda s, t=tail: "[model]" in t(s) or "[case answer]" in t(s))
            timings.append((first, time.perf_counter() - sent))
        reply_screen = tmux.screen()
    finally:
        tmux.close()
    return {
        "launch_to_trainee_screen_s": round(trainee, 3),
        "launch_to_library_s": round(library_total, 3),
        "name_entered_to_library_s": round(library, 3),
        "question_to_first_piece_s": round(timings[0][0], 3),
        "question_to_final_reply_s": round(timings[0][1], 3),
        "later_question_to_first_piece_s": round(timings[-1][0], 3),
        "later_question_to_final_reply_s": round(timings[-1][1], 3),
        "reply_screen": reply_screen,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Time the real terminal app in tmux")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        exe = Path(sys.executable).parent / "edgetutor"
        subprocess.run(
            [str(exe), "pack", "install", str(ROOT / "casepacks")],
            check=True, capture_output=True, env={**os.environ, "EDGETUTOR_HOME": str(home)},
        )  # fmt: skip
        result = run(home)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "reply_screen"}))
    else:
        print(f"launch -> trainee screen: {result['launch_to_trainee_screen_s']:.2f} s")
        print(f"launch -> case library (incl. typing a name): {result['launch_to_library_s']:.2f} s")
        for label, key in (("first question", "question"), ("later question", "later_question")):
            print(
                f"{label} -> first streamed piece on screen: {result[key + '_to_first_piece_s'] * 1000:.0f} ms, "
                f"final reply: {result[key + '_to_final_reply_s'] * 1000:.0f} ms"
            )
    return result


if __name__ == "__main__":
    main()
