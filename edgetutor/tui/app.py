"""The EdgeTutor terminal app: trainee -> case library -> encounter -> debrief -> progress.

`make_app()` is the one factory used by the `edgetutor` command and by the tests; tests inject a
store, a scripted backend and an encoder so nothing is loaded from disk behind their back.

The language model and the sentence encoder load in a thread worker when the app starts, so the
app answers keys at once; an encounter started before they are ready waits for them (its worker
blocks on `models_ready`, never the UI).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

from ..patient.session import ModelChoice
from ..store.db import Store, Trainee
from .base import report


class EdgeTutorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "EdgeTutor"
    # Every key is listed by the `?` help screen; the command palette would be a second, hidden menu.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    #: the status bar's text (trainee and model); StatusBar widgets watch it
    status: reactive[str] = reactive("")

    def __init__(
        self,
        *,
        store: Store | None = None,
        backend: Any | None = None,
        encoder: Any | None = None,
        model: str | None = None,
        no_model: bool = False,
    ) -> None:
        super().__init__()
        self._store = store
        self._owns_store = store is None
        self._owns_backend = backend is None
        self.backend = backend
        self.encoder = encoder
        self.model_spec = model
        self.no_model = no_model
        self.model_choice: ModelChoice | None = None
        if backend is not None:
            self.model_choice = ModelChoice(getattr(backend, "name", "model"))
        elif no_model:
            self.model_choice = ModelChoice(None, error="authored answers (no model)")
        self.models_ready = threading.Event()
        self.trainee: Trainee | None = None
        self._switched = False  # the model was changed in the app (say so once it is loaded)

    # -- shared state --------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The database, opened on first use. Raises EdgeTutorError if it cannot be opened."""
        if self._store is None:
            from ..store.db import open_db

            self._store = open_db()
        return self._store

    def model_label(self) -> str:
        if not self.models_ready.is_set():
            return "loading model..."
        if self.backend is None:
            return "authored answers"
        name = self.model_choice.name if self.model_choice else None
        return f"model {name or getattr(self.backend, 'name', '?')}"

    def refresh_status(self) -> None:
        who = self.trainee.name if self.trainee else "no trainee"
        retrieval = "" if not self.models_ready.is_set() or self.encoder is None else " + embeddings"
        self.status = f" {who} | {self.model_label()}{retrieval}"

    def set_trainee(self, trainee: Trainee) -> None:
        self.trainee = trainee
        self.refresh_status()

    # -- lifecycle -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        from .trainee import TraineeScreen

        self.refresh_status()
        self.push_screen(TraineeScreen())
        if self.model_choice is not None and self.encoder is not None:
            self.models_ready.set()
            self.refresh_status()
        else:
            self.load_models()

    def on_unmount(self) -> None:
        # Only what the app opened itself: an injected store or backend belongs to the caller.
        if self._owns_store and self._store is not None:
            self._store.close()
        close = getattr(self.backend, "close", None)
        if self._owns_backend and callable(close):
            close()

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def load_models(self) -> None:
        """Load the model and the encoder off the UI thread; a failure means authored answers."""
        from ..patient.session import load_encoder, load_model

        try:
            if self.model_choice is None:
                self.backend, self.model_choice = load_model(self.model_spec, self.no_model)
            if self.encoder is None:
                self.encoder = load_encoder()
        finally:
            self.models_ready.set()
            self.call_from_thread(self._models_loaded)

    def _models_loaded(self) -> None:
        self.refresh_status()
        # llama.cpp's loader silences file descriptor 2 while it runs, and Textual draws on it:
        # repaint everything so no frame drawn during the load is missing.
        self.screen.refresh(repaint=True, layout=True)
        if self.model_choice is not None and self.model_choice.error and not self.no_model:
            self.notify(self.model_choice.error, title="No model", severity="warning", timeout=8)
        elif self._switched and self.model_choice is not None and self.model_choice.name:
            self.notify(f"{self.model_choice.name} loaded in {self.model_choice.load_s:.1f} s", timeout=3)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            report(self, event.worker.error, title="Loading failed")

    # -- navigation ----------------------------------------------------------------------------
    def action_help(self) -> None:
        from .help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def show_library(self) -> None:
        """Go back to the library, dropping the screens above it (or open it after the trainee)."""
        from .library import LibraryScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, LibraryScreen):
            self.pop_screen()
        if isinstance(self.screen, LibraryScreen):
            self.screen.reload()
        else:
            self.push_screen(LibraryScreen())

    def start_case(self, case_id: str, resume: str | None = None) -> None:
        """Open the encounter on `case_id`: a new attempt, or the unfinished attempt `resume`."""
        from .encounter import EncounterScreen

        if self.trainee is None:
            self.notify("choose a trainee first", severity="error")
            return
        self.push_screen(EncounterScreen(case_id, resume=resume))

    # -- model choice ----------------------------------------------------------------------------
    def current_model(self) -> str | None:
        """The model file in use, NO_MODEL in authored-answers mode, None while loading."""
        from .dialogs import NO_MODEL

        if not self.models_ready.is_set():
            return None
        if self.backend is None:
            return NO_MODEL
        return self.model_choice.path if self.model_choice and self.model_choice.path else None

    def choose_model(self, key: str) -> None:
        """Switch to the model file `key` (or NO_MODEL), loading it in the background.

        Called from the case library only, so no encounter is using the old model; an encounter
        opened while the new one loads waits for it, as at start-up.
        """
        from .dialogs import NO_MODEL

        if not self.models_ready.is_set():
            self.notify("a model is still loading: try again in a moment", severity="warning")
            return
        if key == self.current_model():
            return
        old = self.backend
        self.models_ready.clear()
        self.backend, self.model_choice = None, None
        self.no_model = key == NO_MODEL
        self.model_spec = None if self.no_model else key
        close = getattr(old, "close", None)
        if callable(close):
            close()
        self._owns_backend = True
        self._switched = True
        self.refresh_status()
        self.load_models()

    def show_debrief(self, case_title: str, doc: dict[str, Any]) -> None:
        from .debrief import DebriefScreen

        self.switch_screen(DebriefScreen(case_title, doc))

    def show_progress(self) -> None:
        from .progress import ProgressScreen

        self.push_screen(ProgressScreen())


def make_app(
    *,
    store: Store | None = None,
    backend: Any | None = None,
    encoder: Any | None = None,
    model: str | None = None,
    no_model: bool = False,
) -> EdgeTutorApp:
    """The app. `backend`/`encoder` skip loading the real ones (tests pass a ScriptedBackend);
    `model` picks a GGUF model like `--model`; `no_model` plays authored answers only.
    Nothing is opened or loaded until the app runs."""
    # As in cli.main(): numpy (embeddings) and llama.cpp share two cores; with OpenBLAS's default
    # thread pool, building a case's retrieval index was measured 16x slower (20 s vs 1.2 s) on
    # a busy 2-core machine. Only effective before numpy is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return EdgeTutorApp(store=store, backend=backend, encoder=encoder, model=model, no_model=no_model)


__all__ = ["EdgeTutorApp", "make_app"]
