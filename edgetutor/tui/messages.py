"""What a screen asks of the app, as Textual messages: one small class per intent.

Screens read the app's shared state (`self.edge.store`, `.trainee`, `.backend`...) but never call
it to move between screens or change that state: they post one of these (`self.post_message`),
it bubbles from the screen to the app, and `app.py` handles it (`on_show_library`, ...). The app
stays the one place that decides which screen comes next, and no screen needs `app.py` at run
time. `tests/tui/test_messages.py` checks that screens keep to this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from ..store.db import Trainee


@dataclass
class TraineeChosen(Message):
    """This trainee practises from now on (the status bar names them)."""

    trainee: Trainee


@dataclass
class ShowLibrary(Message):
    """Back to the case library, dropping the screens above it (or open it after the trainee)."""


@dataclass
class StartCase(Message):
    """Open the encounter on `case_id`: a new attempt, or the unfinished attempt `resume`."""

    case_id: str
    resume: str | None = None


@dataclass
class ShowDebrief(Message):
    """The attempt is scored: replace the encounter with its debrief (and try to sync it)."""

    title: str
    doc: dict[str, Any]


@dataclass
class ShowProgress(Message):
    """Open this trainee's progress."""


@dataclass
class ChooseModel(Message):
    """Switch to the model file `key` (or `dialogs.NO_MODEL`), loading it in the background."""

    key: str


__all__ = ["ChooseModel", "ShowDebrief", "ShowLibrary", "ShowProgress", "StartCase", "TraineeChosen"]
