"""The one module of system-specific calls: each answers on this system (Linux) or falls back."""

from __future__ import annotations

import ast
from pathlib import Path

from edgetutor import portable

ROOT = Path(__file__).resolve().parents[1]
POSIX_ONLY = {"fcntl", "resource", "termios", "pwd", "grp"}


def test_each_call_answers_here(tmp_path: Path) -> None:
    peak = portable.peak_rss_bytes()
    assert peak is not None and peak > 10 * 1024 * 1024  # a Python process is well over 10 MB
    memory = portable.physical_memory_bytes()
    assert memory is not None and memory > 256 * 1024 * 1024
    assert portable.usable_cpus() and all(isinstance(c, int) for c in portable.usable_cpus())
    portable.fsync_dir(tmp_path)  # no error on a real folder...
    portable.fsync_dir(tmp_path / "missing")  # ...nor on a missing one (best effort)


def test_posix_only_modules_are_imported_only_by_the_platform_module() -> None:
    offenders = []
    for path in sorted((ROOT / "edgetutor").rglob("*.py")):
        if path.name == "portable.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n in POSIX_ONLY]
    assert offenders == []
