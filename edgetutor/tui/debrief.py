"""Screen 4: the debrief after `end`: score, domains as bars, the itemised checklist and more."""

from __future__ import annotations

from typing import Any

from rich.text import Text
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
            # The itemised text is the same as `edgetutor run` prints, minus the first two lines
            # (score and domains) shown above.
            yield Static(Text("\n".join(format_debrief(doc).splitlines()[2:])), id="checklist")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#debrief-body", VerticalScroll).focus()

    def action_library(self) -> None:
        self.edge.show_library()

    def action_progress(self) -> None:
        self.edge.show_progress()
