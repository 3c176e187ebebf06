"""Screens a trainee understands at first sight, at 80x24 and 120x40: titles never ids, whole
titles, the newest result whole, a visible wait, F1 and the command palette."""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Static

from edgetutor.packs.install import PackStore
from edgetutor.patient.llm import ScriptedBackend, TurnStats
from edgetutor.tui.app import make_app
from edgetutor.tui.debrief import DebriefScreen
from edgetutor.tui.encounter import EncounterScreen, LogEntry, Panel

from .test_app import open_case, settle, submit, to_library

pytestmark = pytest.mark.asyncio

SIZES = [(80, 24), (120, 40)]


def screen_text(app: Any) -> str:
    """What the terminal shows, as text (the SVG screenshot, tags stripped)."""
    svg = re.sub(r"<style.*?</style>|<defs>.*?</defs>", "", app.export_screenshot(), flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text).strip()


def case_ids() -> list[str]:
    return [c.id for c in PackStore().cases()]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_library_shows_whole_titles_and_no_ids(demo: Path, encoder: Any, size: tuple[int, int]) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=size) as pilot:
        library = await to_library(app, pilot)
        await pilot.pause()
        table = library.query_one("#cases", DataTable)
        for entry in PackStore().cases():
            shown = " ".join(str(table.get_cell(entry.id, "case")).split())
            assert shown == entry.title  # whole, wrapped if it must be, never cut
        text = screen_text(app)
        assert not [i for i in case_ids() if i in text]
        assert "F1" in text and "Help" in text  # the help key that works everywhere is the one shown


async def test_encounter_debrief_and_progress_never_show_a_case_id(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(["It started three days ago."]), encoder=encoder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_case(app, pilot, "acute-mi-adult")
        assert "acute-mi-adult" not in screen_text(app)
        assert "A heavy chest at dawn" in screen_text(app)
        await submit(app, pilot, "order ecg")
        await submit(app, pilot, "diagnose nstemi")
        await submit(app, pilot, "end")
        assert isinstance(app.screen, DebriefScreen)
        text = screen_text(app)
        assert not [i for i in case_ids() if i in text]
        assert text.startswith("EdgeTutor A heavy chest at dawn Not yet:")  # the outcome, then why
        await pilot.press("p")
        await settle(app, pilot)
        text = screen_text(app)
        assert not [i for i in case_ids() if i in text]
        # Competencies from the controlled list, never the free-text tags ("stemi" names the answer).
        assert "Chest pain and the heart" in text and "stemi" not in text.lower()
        assert "1 finished attempt," in text and "attempt(s)" not in text
        del screen


async def test_the_newest_result_shows_from_its_first_line(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_case(app, pilot, "acute-mi-adult")
        for test in ("ecg", "troponin", "full blood count", "blood glucose"):
            await submit(app, pilot, f"order {test}")
        await pilot.pause()
        panel = screen.query_one("#results", Panel)
        newest = list(panel.query(Static))[-1]
        assert len(panel.items) >= 3
        top = newest.virtual_region.y
        assert panel.scroll_offset.y <= top < panel.scroll_offset.y + panel.scrollable_content_region.height
        # My notes takes no room until there is a note.
        assert not screen.query_one("#notes", Panel).display
        await submit(app, pilot, "note ST elevation anterior leads")
        assert screen.query_one("#notes", Panel).display


class SlowBackend(ScriptedBackend):
    """Waits before its first word until released: a model that takes long to answer."""

    def __init__(self) -> None:
        super().__init__(["My chest feels heavy."])
        self.release = threading.Event()

    def stream(self, messages: list[dict[str, str]], **kw: Any) -> Iterator[str]:
        pieces = super().stream(messages, **kw)
        self.last = TurnStats()

        def slow() -> Iterator[str]:
            self.release.wait(10)
            yield from pieces

        return slow()


async def test_waiting_for_a_reply_shows_a_spinner_with_the_seconds(demo: Path, encoder: Any) -> None:
    backend = SlowBackend()
    app = make_app(backend=backend, encoder=encoder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_case(app, pilot, "acute-mi-adult")
        assert isinstance(screen, EncounterScreen)
        await pilot.press(*"where is the pain", "enter")
        deadline = time.monotonic() + 5
        notes_seen: set[str] = set()
        while time.monotonic() < deadline and len(notes_seen) < 2:
            await pilot.pause(0.3)
            entry = list(screen.query(LogEntry))[-1]
            notes_seen.add(entry.note)
        backend.release.set()
        await settle(app, pilot)
        assert any(re.fullmatch(r"[|/\\-] thinking \d+ s", n) for n in notes_seen), notes_seen
        assert len(notes_seen) >= 2  # it moves
        assert list(screen.query(LogEntry))[-1].note in (
            "model",
            "case answer",
            "case answer: the model's draft was rejected",
        )


async def test_the_command_palette_lists_this_screens_actions_and_the_theme(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=(80, 24)) as pilot:
        library = await to_library(app, pilot)
        titles = [c.title for c in app.get_system_commands(library)]
        for action in ("Search", "Progress", "Install", "Model", "Trainees", "Help", "Quit", "Theme"):
            assert action in titles, titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
