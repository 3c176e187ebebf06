"""The real `edgetutor` in tmux: launch, pick a case, ask, read the patient's reply off the screen."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_real_app_in_tmux_answers_a_question(tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is needed for this test (scripts/test installs it where it can)"
    spec = importlib.util.spec_from_file_location("bench_tui", ROOT / "benchmarks" / "bench_tui.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    home = tmp_path / "home"
    exe = Path(sys.executable).parent / "edgetutor"
    subprocess.run(
        [str(exe), "pack", "install", str(ROOT / "casepacks")],
        check=True, capture_output=True, env={**os.environ, "EDGETUTOR_HOME": str(home)},
    )  # fmt: skip
    # The classic 80x24 terminal: the smallest the screens are laid out for, where replies wrap.
    result = bench.run(home, ("how long have you had the fever?", "any fits or jerking?"), size=(80, 24))
    screen = result["reply_screen"]
    assert max(len(line) for line in screen.splitlines()) == 80, screen  # really 80 wide
    after = bench.log_words(screen).split("You: any fits or jerking?")[-1]
    assert "Patient:" in after and ("[model]" in after or "[case answer]" in after), screen
    # Whatever the model said, the guard kept it to the case: no fits.
    words = after.lower()
    assert "fits" in words and ("no" in words.split() or "not" in words.split()), screen
    assert result["launch_to_library_s"] > 0 and result["question_to_final_reply_s"] > 0
