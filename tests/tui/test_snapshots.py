"""Screenshots of the terminal app at 80x24 and 120x40, compared with the SVGs in __snapshots__/.

pytest-textual-snapshot renders each screen headless and compares it with the accepted SVG; after
an intended change to the look of a screen, regenerate with `pytest tests/tui/test_snapshots.py
--snapshot-update` and look at the new SVGs before committing them (a failing run writes a
side-by-side report, snapshot_report.html).

Everything on screen is fixed: a ScriptedBackend (status "model scripted"), the demo pack, a named
trainee, and the encounter clock frozen at 00:00. No attempt id, time or machine path is shown.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from edgetutor.patient.llm import ScriptedBackend
from edgetutor.service import open_store
from edgetutor.tui import encounter as encounter_module
from edgetutor.tui.app import EdgeTutorApp, make_app
from edgetutor.tui.debrief import DebriefScreen
from edgetutor.tui.encounter import EncounterScreen
from edgetutor.tui.help import HelpScreen
from edgetutor.tui.library import LibraryScreen
from edgetutor.tui.trainee import TraineeScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
CASE = "malaria-uncomplicated-adult"
REPLY = "I have had a fever for three days, mostly in the evening."

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encounter header's elapsed time always reads 00:00 (only that module's clock is frozen)."""
    monkeypatch.setattr(encounter_module, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))


@pytest.fixture
def real_encoder(encoder: Any) -> Any:
    """The encoder the encounter snapshots need: retrieval decides which facts the debrief lists."""
    # scripts/setup installs it: its absence is a broken setup, not a reason to skip.
    assert encoder is not None, "the all-MiniLM-L6-v2 encoder is not installed (run scripts/setup)"
    return encoder


def app_for(encoder: Any, replies: tuple[str, ...] = ()) -> EdgeTutorApp:
    # An injected backend and encoder: nothing loads, and the status bar reads
    # "model scripted + embeddings" on every machine.
    return make_app(backend=ScriptedBackend(replies), encoder=encoder)


def shot(snap_compare: SnapCompare, app: EdgeTutorApp, size: tuple[int, int], run_before: RunBefore) -> bool:
    """Compare a screenshot taken after `run_before`, with every text cursor shown steadily.

    A blinking cursor is drawn or not depending on when, within its half-second blink, the
    screenshot is taken: stopping the blink (cursor shown) makes the picture independent of timing.
    """

    async def steady(pilot: Pilot[Any]) -> None:
        await run_before(pilot)
        for screen in pilot.app.screen_stack:
            for box in screen.query(Input):
                box.cursor_blink = False
        await pilot.pause()

    return snap_compare(app, terminal_size=size, run_before=steady)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for every worker, then for the messages they posted to the UI."""
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def to_library(pilot: Pilot[Any]) -> None:
    await pilot.press(*"Amina", "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, LibraryScreen)


async def submit(pilot: Pilot[Any], line: str) -> None:
    pilot.app.screen.query_one("#action", Input).value = line
    await pilot.press("enter")
    await settle(pilot)


async def to_encounter(pilot: Pilot[Any]) -> None:
    """Open the malaria case, ask one question (the scripted reply), then examine vitals."""
    await to_library(pilot)
    table = pilot.app.screen.query_one("#cases", DataTable)
    table.move_cursor(row=table.get_row_index(CASE))
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, EncounterScreen)
    await submit(pilot, "how long have you had the fever?")
    await submit(pilot, "examine vitals")


@pytest.mark.parametrize("size", SIZES)
def test_trainee_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """The first screen with two trainees on the device: the list, then the new-name box."""
    with open_store() as store:
        store.trainee("Baraka")
        store.trainee("Chiku")

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        assert isinstance(pilot.app.screen, TraineeScreen)

    assert shot(snap_compare, app_for(object()), size, run_before)


@pytest.mark.parametrize("size", SIZES)
def test_case_library(demo: Path, snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """The 13 demo cases for trainee Amina, none scored yet, the first row highlighted."""
    assert shot(snap_compare, app_for(object()), size, to_library)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(demo: Path, snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """`?` over the case library: that screen's keys and the app's."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await to_library(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(pilot.app.screen, HelpScreen)

    assert shot(snap_compare, app_for(object()), size, run_before)


@pytest.mark.parametrize("size", SIZES)
def test_encounter(demo: Path, real_encoder: Any, snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """The malaria case after one answered question and `examine vitals`: log and findings panel."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await to_encounter(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, EncounterScreen) and screen.session is not None
        assert screen.session.replies[1].text == REPLY  # the scripted reply was kept

    app = app_for(real_encoder, (REPLY,))
    assert shot(snap_compare, app, size, run_before)


@pytest.mark.parametrize("size", SIZES)
def test_debrief(demo: Path, real_encoder: Any, snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """The debrief after `end` (no diagnosis or plan given): score, domain bars and checklist."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await to_encounter(pilot)
        await submit(pilot, "end")
        assert isinstance(pilot.app.screen, DebriefScreen)

    app = app_for(real_encoder, (REPLY,))
    assert shot(snap_compare, app, size, run_before)
