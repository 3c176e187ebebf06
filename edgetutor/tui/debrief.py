"""Screen 4: the debrief after `end`: score, domains as bars, the itemised checklist and more."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Label, Static

from ..scoring.debrief import format_debrief
from .base import EdgeScreen, StatusBar

BAR_WIDTH = 20


def bar(value: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, value)) * width)
    return "#" * filled + "." * (width - filled)


def domain_lines(domains: dict[str, float]) -> str:
    return "\n".join(f"{d:<15} {bar(v)} {v:>4.0%}" for d, v in domains.items())


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

    def compose(self) -> ComposeResult:
        doc = self.doc
        verdict = "PASS" if doc["passed"] else "NOT YET"
        yield Label(
            f"{self.case_title}: score {doc['score']:.0%} {verdict} (pass mark {doc['pass_mark']:.0%})",
            id="score",
            classes="pass" if doc["passed"] else "fail",
        )
        with VerticalScroll(id="debrief-body"):
            yield Static(Text(domain_lines(doc["domains"])), id="domains")
            # Filled on request (t): the model's paragraph, or why it was dropped.
            yield Static("", id="narrative")
            # The itemised text is the same as `edgetutor run` prints, minus the first two lines
            # (score and domains) shown above.
            yield Static(Text("\n".join(format_debrief(doc).splitlines()[2:])), id="checklist")
        yield StatusBar(id="status")
        yield Footer()

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
        self.query_one("#narrative", Static).update(Text("Tutor's note: writing...", style="dim"))
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

    def action_library(self) -> None:
        self.edge.show_library()

    def action_progress(self) -> None:
        self.edge.show_progress()
