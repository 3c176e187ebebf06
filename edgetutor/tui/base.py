"""What every screen shares: the status bar, and worker failures shown as notifications."""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from ..errors import EdgeTutorError

if TYPE_CHECKING:
    from .app import EdgeTutorApp


def describe(err: BaseException) -> str:
    """One line for a notification: our own errors say what went wrong; anything else is named."""
    if isinstance(err, EdgeTutorError):
        return str(err)
    return f"unexpected {type(err).__name__}: {err}"


def report(app: Any, err: BaseException, title: str = "Error") -> None:
    """Show `err` as an error notification (never a traceback on screen).

    With EDGETUTOR_DEBUG=1 the traceback also goes to the Textual log (`textual console`).
    """
    if os.environ.get("EDGETUTOR_DEBUG"):
        app.log.error("".join(traceback.format_exception(err)))
    app.notify(describe(err), title=title, severity="error", timeout=10)


def footer() -> Footer:
    """Every screen's key bar: compact, so that the keys and the palette fit 80 columns."""
    return Footer(compact=True)


class StatusBar(Static):
    """One line at the bottom of each screen: trainee and model (kept in sync with the app)."""

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._show)

    def _show(self, status: str) -> None:
        self.update(status)


class EdgeScreen(Screen[None]):
    """A screen whose failed workers become one error notification each."""

    @property
    def edge(self) -> EdgeTutorApp:
        """The app, to read its shared state; a screen asks for anything else with a message
        (`messages.py`), so this module needs `app.py` for type checking only."""
        return cast("EdgeTutorApp", self.app)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            report(self.app, event.worker.error)
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker[Any]) -> None:
        """Hook: put the screen back in a usable state after `worker` raised."""
