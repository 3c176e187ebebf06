"""Screen 5: this trainee's progress: attempts, per-domain bars, gaps, strengths, what next."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from ..service.progress import format_progress
from ..store.db import Store, Trainee
from .base import EdgeScreen, StatusBar, footer
from .messages import ShowLibrary


def progress_doc(store: Store, trainee: Trainee | None) -> dict[str, Any]:
    """The same summary as `edgetutor progress`, for one trainee. Raises EdgeTutorError."""
    from ..service.progress import progress_for

    return progress_for(store, trainee)


class ProgressScreen(EdgeScreen):
    HELP_TITLE = "progress"
    BINDINGS = [Binding("l,escape", "library", "Library")]

    def __init__(self) -> None:
        super().__init__()
        self.doc: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        who = self.edge.trainee.name if self.edge.trainee else "everyone"
        yield Label(f"Progress: {who}", id="progress-title")
        with VerticalScroll(id="progress-body"):
            yield Static("Loading...", id="progress-text")
        yield StatusBar(id="status")
        yield footer()

    def on_mount(self) -> None:
        self.query_one("#progress-body", VerticalScroll).focus()
        self.compute()

    @work(thread=True, exclusive=True, group="progress", exit_on_error=False)
    def compute(self) -> None:
        doc = progress_doc(self.edge.store, self.edge.trainee)
        self.app.call_from_thread(self._show, doc)

    def _show(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.query_one("#progress-text", Static).update(Text(format_progress(doc)))

    def action_library(self) -> None:
        self.post_message(ShowLibrary())
