"""Screen 5: this trainee's progress: attempts, per-domain bars, gaps, strengths, what next."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Label, Static

from ..store.db import Store, Trainee
from .base import EdgeScreen, StatusBar
from .debrief import domain_lines


def progress_doc(store: Store, trainee: Trainee | None) -> dict[str, Any]:
    """The same summary as `edgetutor progress`, for one trainee. Raises EdgeTutorError."""
    from ..service.progress import progress_for

    return progress_for(store, trainee)


def format_progress(doc: dict[str, Any]) -> str:
    lines = [
        f"{len(doc['attempts'])} finished attempt(s), {doc['cases_attempted']} case(s), "
        f"{doc['cases_passed']} passed",
        "",
        "By domain:",
        domain_lines(doc["domains"]) if doc["domains"] else "  (no finished attempts yet)",
    ]
    if doc["competencies"]:
        # Weakest first, at most eight: the chart is for deciding what to practise.
        weakest = dict(sorted(doc["competencies"].items(), key=lambda kv: (kv[1], kv[0]))[:8])
        lines += ["", "By competency (weakest first):", domain_lines({k[:15]: v for k, v in weakest.items()})]
    if doc["gaps"]:
        lines.append("Gaps: " + ", ".join(doc["gaps"]))
    if doc["strengths"]:
        lines.append("Strengths: " + ", ".join(doc["strengths"]))
    if doc["attempts"]:
        lines += ["", "Latest attempts:"]
        for a in doc["attempts"][-5:]:
            verdict = "pass" if a["passed"] else "not yet"
            lines.append(
                f"  {a['ended'][:16].replace('T', ' ')}  {a['case']:32} {a['score']:>4.0%} {verdict}"
            )
    lines += ["", "Next:"]
    # Titles, not ids: a case id often names its diagnosis.
    lines += [f"  {r['title']}: {r['why']}" for r in doc["recommended"]]
    return "\n".join(lines)


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
        yield Footer()

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
        self.edge.show_library()
