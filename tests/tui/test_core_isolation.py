"""The core never imports the UI: importing it leaves Textual unloaded."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "edgetutor.service.session",
    "edgetutor.scoring.checklist",
    "edgetutor.service.progress",
    "edgetutor.packs.install",
    "edgetutor.store.db",
    "edgetutor.cli",
]


def test_core_does_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_app_module_imports_textual() -> None:
    # The check above is only meaningful if the app does load Textual.
    code = "import sys, edgetutor.tui.app; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
