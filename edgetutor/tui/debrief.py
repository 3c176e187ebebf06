"""Screen 4: the debrief after `end`: score, domains as bars, the itemised checklist and more."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Label, Static
from textual.worker import Worker

from ..scoring.debrief import format_debrief
from ..scoring.outcome import domain_lines, headline
from .base import EdgeScreen, StatusBar, footer
from .messages import ShowLibrary, ShowProgress


class DebriefScreen(EdgeScreen):
    HELP_TITLE = "debrief"
    BINDINGS = [
        Binding("l,escape", "library", "Library"),
        Binding("p", "progress", "Progress"),
        Binding("t", "tutor_note", "Tutor's note"),
    ]

    def __init__(self, case_title: str, doc: dict[str, Any]) -> None:
        super().__init__()
        self.case_title = case_title
        self.doc = doc
        self._note_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        doc = self.doc
        yield Label(self.case_title, id="debrief-title")
        # The result leads with why: a critical error's cap and its cause, then the domains.
        yield Static(headline(doc), id="score", classes="pass" if doc["passed"] else "not-yet")
        with VerticalScroll(id="debrief-body"):
            yield Static(Text(domain_lines(doc["domains"])), id="domains")
            # Filled on request (t): the model's paragraph, or why it was dropped.
            yield Static("", id="narrative")
            # The itemised text is the same as `edgetutor run` prints, minus the first two lines
            # (score and domains) shown above.
            yield Static(Text("\n".join(format_debrief(doc).splitlines()[2:])), id="checklist")
        yield StatusBar(id="status")
        yield footer()

    def on_mount(self) -> None:
        self.query_one("#debrief-body", VerticalScroll).focus()

    def action_tutor_note(self) -> None:
        """Ask the model for a short feedback paragraph, checked against this result (optional:
        everything the trainee needs is in the itemised debrief)."""
        if self.edge.backend is None:
            self.notify(
                "A tutor's note needs a model; this session uses authored answers.", severity="warning"
            )
            return
        if self._note_timer is not None:
            return  # already being written
        started = time.monotonic()

        def progress() -> None:
            spin = "|/-\\"[int(time.monotonic() * 4) % 4]
            waited = time.monotonic() - started
            self.query_one("#narrative", Static).update(
                Text(f"{spin} Tutor's note: the model is writing it... {waited:.0f} s", style="dim")
            )

        progress()
        self._note_timer = self.set_interval(0.25, progress)
        self.write_note()

    @work(thread=True, exclusive=True, group="patient", exit_on_error=False)
    def write_note(self) -> None:
        from ..scoring.narrative import narrate

        backend = self.edge.backend
        if backend is None:  # offered only with a model (action_tutor_note)
            return
        story = narrate(backend, self.doc)
        self.app.call_from_thread(self._show_note, story)

    def _show_note(self, story: dict[str, Any]) -> None:
        if self._note_timer is not None:
            self._note_timer.stop()
            self._note_timer = None
        box = self.query_one("#narrative", Static)
        if story["text"]:
            box.update(
                Text.assemble(("Tutor's note ", "bold"), ("(by the model, checked): ", "dim"), story["text"])
            )
        else:
            reasons = "; ".join(story["reasons"])
            box.update(
                Text(
                    f"The model's note was dropped ({reasons}); the checklist below is complete.", style="dim"
                )
            )

    def worker_failed(self, worker: Worker[Any]) -> None:
        self._show_note({"text": "", "reasons": ["the model failed"]})

    def action_library(self) -> None:
        self.post_message(ShowLibrary())

    def action_progress(self) -> None:
        self.post_message(ShowProgress())
