"""Colour contrast of the terminal app as it is drawn: every character of text on every main screen
reaches WCAG 2.x AA, 4.5:1 against the background it is drawn on.

The app runs headless in its default theme and each screen is rendered exactly as it would be sent
to a terminal (`Compositor.render_strips`): every segment carries the final foreground and
background, with app.tcss, the widgets' DEFAULT_CSS, the theme's variables ($text, $primary...),
component classes (the footer's keys, a table's cursor row, an input's placeholder) and transparency
all resolved. That is what is measured, so a change to any of them is caught.

- Border and block glyphs (box drawing, block elements: panel frames, the input's edges, the
  footer's separators) are lines, not text, and are not measured.
- Placeholders and the grey suggestion are held to 4.5:1 like any text: the placeholders carry
  instructions ("search: type words, Down to the list", the encounter's commands) and the
  suggestion is the name the trainee is about to accept.
- Text of a disabled option (a model file that cannot be loaded, listed so the trainee sees why)
  needs only 3:1. WCAG exempts inactive components altogether; 3:1 keeps it legible while it still
  reads as unavailable.
- The screen behind a modal dialog is faded on purpose and cannot be used until the dialog closes:
  only the dialog is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.color import Color as RichColor
from rich.segment import Segment
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, OptionList

from edgetutor.patient.llm import ScriptedBackend
from edgetutor.service import open_store
from edgetutor.tui import dialogs
from edgetutor.tui.app import EdgeTutorApp, make_app
from edgetutor.tui.debrief import DebriefScreen
from edgetutor.tui.dialogs import ModelOption, ModelScreen
from edgetutor.tui.encounter import EncounterScreen
from edgetutor.tui.help import HelpScreen
from edgetutor.tui.library import LibraryScreen
from edgetutor.tui.trainee import TraineeScreen

from ..contrast import GRAPHIC, RGB, TEXT, blend, hex_of, ratio

pytestmark = pytest.mark.asyncio

SIZE = (80, 24)
CASE = "malaria-uncomplicated-adult"
REPLY = "I have had a fever for three days, mostly in the evening."
BROKEN = "broken.gguf  (not a GGUF file)"


def is_glyph(char: str) -> bool:
    """Box drawing (U+2500-257F) and block elements (U+2580-259F): frames and edges, not text."""
    return char.isspace() or 0x2500 <= ord(char) <= 0x259F


@dataclass(frozen=True)
class Cell:
    """A run of text as drawn: where, by which widget, in which colours, and the ratio it needs."""

    where: str
    text: str
    fg: RGB
    bg: RGB
    need: float

    @property
    def ratio(self) -> float:
        return ratio(self.fg, self.bg)

    def __str__(self) -> str:
        return f"{self.where}: {self.text!r} {hex_of(self.fg)} on {hex_of(self.bg)} = {self.ratio:.2f} < {self.need}"


def rgb(color: RichColor) -> RGB:
    red, green, blue = color.get_truecolor()
    return red, green, blue


def colours(segment: Segment) -> tuple[RGB, RGB]:
    """The foreground and background a terminal shows for `segment` (reverse and dim applied).

    Both are always set: a colour left to the terminal's default could not be measured."""
    style = segment.style
    assert style is not None and style.color is not None and style.bgcolor is not None, segment
    fg, bg = rgb(style.color), rgb(style.bgcolor)
    if style.reverse:
        fg, bg = bg, fg
    if style.dim:  # as Textual's own dim filter (and most terminals): half way to the background
        fg = blend(fg, bg, 0.5)
    return fg, bg


def disabled_text(app: EdgeTutorApp) -> set[str]:
    """The prompts of disabled options on the current screen."""
    out: set[str] = set()
    for options in app.screen.query(OptionList):
        for i in range(options.option_count):
            option = options.get_option_at_index(i)
            if option.disabled:
                out.add(str(option.prompt))
    return out


def cells(app: EdgeTutorApp, label: str) -> list[Cell]:
    """Every run of text on the current screen as rendered, with the ratio each one needs."""
    screen = app.screen
    inactive = disabled_text(app)
    out: list[Cell] = []
    for y, strip in enumerate(screen._compositor.render_strips()):
        x = 0
        for segment in strip:
            text = "".join(c for c in segment.text if not is_glyph(c))
            if text:
                widget, _ = screen.get_widget_at(x, y)
                if not (isinstance(screen, ModalScreen) and widget is screen):  # the faded screen behind
                    fg, bg = colours(segment)
                    words = segment.text.strip()
                    need = GRAPHIC if len(words) > 3 and any(words in t for t in inactive) else TEXT
                    name = type(widget).__name__ + (f"#{widget.id}" if widget.id else "")
                    out.append(Cell(f"{label} {name} ({x},{y})", segment.text.strip(), fg, bg, need))
            x += segment.cell_length
    return out


class Seen:
    """The text cells of every screen visited in one test."""

    def __init__(self, app: EdgeTutorApp, pilot: Pilot[Any]) -> None:
        self.app, self.pilot, self.cells = app, pilot, list[Cell]()

    async def take(self, label: str) -> None:
        await self.pilot.pause()
        found = cells(self.app, label)
        assert found, f"{label}: no text measured"
        self.cells += found

    def check(self) -> float:
        """Fail on every run of text below its minimum; the lowest text ratio found."""
        failing = [str(c) for c in self.cells if c.ratio < c.need]
        assert not failing, "\n".join(failing)
        return min(c.ratio for c in self.cells if c.need == TEXT)


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def submit(pilot: Pilot[Any], line: str) -> None:
    pilot.app.screen.query_one("#action", Input).value = line
    await pilot.press("enter")
    await settle(pilot)


def app_for(encoder: Any, replies: tuple[str, ...] = ()) -> EdgeTutorApp:
    return make_app(backend=ScriptedBackend(replies), encoder=encoder)


async def test_trainee_library_help_and_model_dialog(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store() as store:
        store.trainee("Baraka")
        store.trainee("Chiku")
    options = [
        ModelOption("/models/small.gguf", "small  (90 MB, 135M params, Q8_0, ~/models)", True),
        ModelOption("/models/broken.gguf", BROKEN, False),
        ModelOption(dialogs.NO_MODEL, "No model: the case's authored answers only (fastest)", True),
    ]
    monkeypatch.setattr(dialogs, "model_options", lambda: options)
    app = app_for(object())
    async with app.run_test(size=SIZE) as pilot:
        seen = Seen(app, pilot)
        await settle(pilot)
        assert isinstance(app.screen, TraineeScreen)
        await seen.take("trainee, list focused")
        app.screen.query_one("#new-trainee", Input).focus()
        await seen.take("trainee, name box focused")
        await pilot.press(*"Amina", "enter")
        await settle(pilot)
        assert isinstance(app.screen, LibraryScreen)
        await seen.take("library, table focused")
        app.screen.query_one("#search", Input).focus()
        await seen.take("library, search focused")
        app.screen.query_one("#cases", DataTable).focus()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await seen.take("help")
        await pilot.press("escape")
        await pilot.press("m")
        assert isinstance(app.screen, ModelScreen)
        app.screen.query_one(OptionList).highlighted = 0
        await seen.take("model dialog")
        assert any(c.need == GRAPHIC for c in seen.cells), "the disabled option was not found"
        lowest = seen.check()
    assert lowest >= TEXT


async def test_encounter_and_debrief(demo: Path, encoder: Any) -> None:
    assert encoder is not None, "the all-MiniLM-L6-v2 encoder is not installed (run scripts/setup)"
    app = app_for(encoder, (REPLY,))
    async with app.run_test(size=SIZE) as pilot:
        seen = Seen(app, pilot)
        await pilot.press(*"Amina", "enter")
        await settle(pilot)
        table = app.screen.query_one("#cases", DataTable)
        table.move_cursor(row=table.get_row_index(CASE))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EncounterScreen)
        await seen.take("encounter, empty")
        await submit(pilot, "how long have you had the fever?")
        await submit(pilot, "examine vitals")
        await submit(pilot, "note check the RDT")
        await seen.take("encounter, after a question, an examination and a note")
        await pilot.press(*"examine ab")  # the suggestion completes the exam's name
        await pilot.pause()
        assert app.screen.query_one("#action", Input)._suggestion
        await seen.take("encounter, a suggestion shown")
        app.screen.query_one("#action", Input).value = ""
        await submit(pilot, "end")
        assert isinstance(app.screen, DebriefScreen)
        await seen.take("debrief, not yet")
        debrief = app.screen
        assert isinstance(debrief, DebriefScreen)
        debrief._show_note({"text": "You asked about the fever early: well done.", "reasons": []})
        await seen.take("debrief, with the tutor's note")
        debrief._show_note({"text": "", "reasons": ["it named a drug the case does not"]})
        await seen.take("debrief, the note dropped")
        app.show_debrief("Fever in a farmer", {**debrief.doc, "passed": True})
        await pilot.pause()
        assert isinstance(app.screen, DebriefScreen) and app.screen.query_one("#score").has_class("pass")
        await seen.take("debrief, passed")
        lowest = seen.check()
    assert lowest >= TEXT
