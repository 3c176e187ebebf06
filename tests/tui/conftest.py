"""Fixtures for the terminal app: the demo pack installed in the test's EDGETUTOR_HOME, the real
sentence encoder (loaded once), and helpers that wait for workers and record notifications."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ROOT

# One BLAS thread, as `edgetutor` itself runs (cli.main): with OpenBLAS's own thread pool each
# case's retrieval index takes seconds, not a second, on a busy 2-core machine. Effective only if
# numpy is not imported yet (running tests/tui alone); tests/conftest.py is the better home.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture
def demo(home: Path) -> Path:
    """The signed demo pack (13 cases) installed in this test's EDGETUTOR_HOME."""
    from edgetutor.packs.install import install_path

    results = install_path(ROOT / "casepacks")
    assert all(not isinstance(r, Exception) for r in results), results
    return home


@pytest.fixture(scope="session")
def encoder() -> Any:
    """The real all-MiniLM-L6-v2 encoder if installed (None means lexical retrieval)."""
    from edgetutor.patient.embed import load_encoder

    return load_encoder()


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every notification any app shows during the test, as (severity, message)."""
    from textual.app import App

    seen: list[tuple[str, str]] = []
    original = App.notify

    def record(self: App[Any], message: str, *args: Any, **kwargs: Any) -> None:
        seen.append((kwargs.get("severity", "information"), str(message)))
        original(self, message, *args, **kwargs)

    monkeypatch.setattr(App, "notify", record)
    yield seen
