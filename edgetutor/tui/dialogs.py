"""Small choices asked from the case library: resume an unfinished attempt, choose the model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from ..store.db import Attempt

NO_MODEL = "authored"


def ago(when: dt.datetime, now: dt.datetime | None = None) -> str:
    """'5 min ago', '3 h ago', '2 days ago': how long since `when` (UTC-aware)."""
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - when).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


class ResumeScreen(ModalScreen[str | None]):
    """Dismisses with "resume", "new", or None (Escape: stay in the library)."""

    BINDINGS = [
        Binding("r", "choose('resume')", "Resume"),
        Binding("n", "choose('new')", "New attempt"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def __init__(self, title: str, attempt: Attempt, turns: int) -> None:
        super().__init__()
        self.case_title = title
        self.attempt = attempt
        self.turns = turns

    def compose(self) -> ComposeResult:
        with Vertical(id="resume-dialog", classes="dialog"):
            yield Label(f"{self.case_title}: you have an unfinished attempt")
            yield Label(
                f"started {ago(self.attempt.started)}, {self.turns} action{'s' if self.turns != 1 else ''} so far",
                id="resume-detail",
            )
            yield OptionList(
                Option("Resume it where you left off (r)", id="resume"),
                Option("Start a new attempt (n)", id="new"),
                id="resume-choice",
            )
            yield Label("Esc: back to the library", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#resume-choice", OptionList).highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


@dataclass(frozen=True)
class ModelOption:
    """One row of the model chooser: a GGUF file, or NO_MODEL for authored answers only."""

    key: str  # the path, or NO_MODEL
    label: str
    usable: bool


def model_options() -> list[ModelOption]:
    """Every model `edgetutor models` finds (broken files shown, not choosable), then 'none'.

    Never raises: a folder that cannot be read simply contributes nothing.
    """
    from ..patient.models import discover, human_count

    out: list[ModelOption] = []
    for entry in discover():
        size = entry.size_label("?")
        info = entry.info
        if info is None:
            out.append(ModelOption(str(entry.path), f"{entry.name}  ({entry.error})", False))
            continue
        detail = ", ".join(
            x
            for x in (size, human_count(info.parameters) + " params", info.quantisation or "", entry.origin)
            if x
        )
        out.append(ModelOption(str(entry.path), f"{entry.name}  ({detail})", True))
    out.append(ModelOption(NO_MODEL, "No model: the case's authored answers only (fastest)", True))
    return out


class ModelScreen(ModalScreen[str | None]):
    """Dismisses with the chosen model's path, NO_MODEL, or None (Escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str | None) -> None:
        super().__init__()
        self.current = current  # path in use, NO_MODEL, or None while loading
        self.options = model_options()

    def compose(self) -> ComposeResult:
        with Vertical(id="model-dialog", classes="dialog"):
            yield Label("Which model speaks for the patient?")
            yield OptionList(
                *(
                    Option(
                        ("* " if self._is_current(o) else "  ") + o.label,
                        id=o.key,
                        disabled=not o.usable,
                    )
                    for o in self.options
                ),
                id="model-choice",
            )
            yield Label(
                "Bigger models answer better, but slower (see edgetutor bench). Esc: keep this one.",
                classes="hint",
            )

    def _is_current(self, option: ModelOption) -> bool:
        if self.current is None:
            return False
        if option.key == NO_MODEL or self.current == NO_MODEL:
            return option.key == self.current
        try:
            return Path(option.key).resolve() == Path(self.current).resolve()
        except OSError:
            return False

    def on_mount(self) -> None:
        choice = self.query_one("#model-choice", OptionList)
        current = [i for i, o in enumerate(self.options) if self._is_current(o)]
        choice.highlighted = current[0] if current else 0
        choice.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
