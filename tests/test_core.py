"""How the code is put together: the core never loads the UI, and importing does nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CORE = ["edgetutor.cases", "edgetutor.cases.lint", "edgetutor.packs.install", "edgetutor.packs.build"]


def _run(code: str, env_home: Path) -> str:
    env = {**os.environ, "EDGETUTOR_HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout


def test_core_does_not_import_textual_or_the_hub(tmp_path: Path) -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'starlette', 'uvicorn'))))"
    )
    assert json.loads(_run(code, tmp_path / "home")) == []


def test_importing_and_help_create_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _run("import edgetutor.cli, edgetutor.packs.install, edgetutor.packs.trust", home)
    subprocess.run(
        [sys.executable, "-m", "edgetutor", "--help"],
        check=True,
        capture_output=True,
        env={**os.environ, "EDGETUTOR_HOME": str(home)},
    )
    assert not home.exists()


def test_version_entry_points() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgetutor", "--version"], check=True, capture_output=True, text=True
    )
    from edgetutor import __version__

    assert out.stdout.strip() == f"edgetutor, version {__version__}"
