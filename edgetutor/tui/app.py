"""The EdgeTutor terminal app: trainee -> case library -> encounter -> debrief -> progress.

`make_app()` is the one factory used by the `edgetutor` command and by the tests; tests inject a
store, a scripted backend and an encoder so nothing is loaded from disk behind their back.

The language model and the sentence encoder load in a thread worker when the app starts, so the
app answers keys at once; an encounter started before they are ready waits for them (its worker
blocks on `models_ready`, never the UI).

The app owns navigation and its shared state: screens read that state but ask for any change by
posting a message (`messages.py`), handled below by the `on_...` methods.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from ..errors import EdgeTutorError
from ..patient.embed import Embedder
from ..patient.llm import Backend
from ..service.session import ModelChoice
from ..store.db import Store, Trainee
from .base import report
from .messages import ChooseModel, ShowDebrief, ShowLibrary, ShowProgress, StartCase, TraineeChosen

#: how often the app tries to sync in the background, and how long the reachability probe waits
SYNC_EVERY_S = 60.0
SYNC_PROBE_S = 1.0


def sync_label(state: Any, reachable: bool | None, now: dt.datetime | None = None) -> str:
    """The status bar's sync part, from a `sync.client.SyncStatus`. Short: it shares 80 columns."""
    waiting = f"{state.pending} to send" if state.pending else "all sent"
    if state.last_sync is not None:
        local = state.last_sync.astimezone()
        today = (now or dt.datetime.now(dt.UTC)).astimezone().date() == local.date()
        when = local.strftime("%H:%M" if today else "%d %b")
        last = f", last {when}"
    else:
        last = ""
    if state.hub is None:
        return f"sync: no hub{', ' + waiting if state.pending else ''}"
    if reachable is False:
        return f"sync: offline, {waiting}{last}"
    if state.last_error:
        return f"sync: failed, {waiting}{last}"
    return f"sync: {waiting}{last}"


class EdgeTutorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "EdgeTutor"
    # Every action is reachable three ways: its key (shown in the footer), the help screen (F1)
    # and the command palette (Ctrl+P, which also holds the theme switch). "?" opens help too,
    # but only where no text box is focused (there it is a character), so F1 is what is shown.
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("f1", "help", "Help", key_display="F1"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    #: the status bar's text (trainee and model); StatusBar widgets watch it
    status: reactive[str] = reactive("")

    def __init__(
        self,
        *,
        store: Store | None = None,
        backend: Backend | None = None,
        encoder: Embedder | None = None,
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
        #: the status bar's sync part ("sync: 2 waiting, last 10:42"); empty until first checked
        self.sync_label = ""
        self._switched = False  # the model was changed in the app (say so once it is loaded)
        self._loading_since = time.monotonic()

    # -- shared state --------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The database, opened on first use. Raises EdgeTutorError if it cannot be opened."""
        if self._store is None:
            from ..service import open_store

            self._store = open_store()
        return self._store

    def model_label(self) -> str:
        if not self.models_ready.is_set():
            waited = time.monotonic() - self._loading_since
            spin = "|/-\\"[int(time.monotonic() * 4) % 4]
            return f"{spin} loading the model... {waited:.0f} s"
        note = self.model_choice.note if self.model_choice else None
        if self.backend is None:
            # Say why the model is not speaking (e.g. it has not qualified on this device).
            return f"authored answers ({note})" if note else "authored answers"
        if note:
            return note
        name = self.model_choice.name if self.model_choice else None
        return f"model {name or getattr(self.backend, 'name', '?')}"

    def refresh_status(self) -> None:
        who = self.trainee.name if self.trainee else "no trainee"
        retrieval = "" if not self.models_ready.is_set() or self.encoder is None else " + embeddings"
        sync = f" | {self.sync_label}" if self.sync_label else ""
        self.status = f" {who} | {self.model_label()}{retrieval}{sync}"

    # -- background sync -------------------------------------------------------------------------
    def show_sync_state(self) -> None:
        """The stored sync state at once (one small read), before any probe of the hub."""
        from ..sync.client import status

        try:
            self.sync_label = sync_label(status(self.store), None)
        except EdgeTutorError as err:
            report(self, err)
        self.refresh_status()

    def request_sync(self) -> None:
        """Try to send results now (after an attempt is finished, say); never waits for the hub."""
        self.sync_in_background()

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def sync_in_background(self) -> None:
        """Send pending results if a hub is set up and answers a cheap probe; pull newer packs.

        Runs in its own thread: a slow or silent hub never delays the trainee. A failure shows in
        the status bar only (the next attempt comes at the next interval), except packs
        installed from the hub, which are announced.
        """
        from ..sync.client import probe, status, sync

        state = status(self.store)
        reachable: bool | None = None
        installed: list[str] = []
        if state.hub is not None:
            reachable = probe(state.hub, timeout=SYNC_PROBE_S)
            if reachable:
                try:
                    report = sync(self.store, tries=1)
                    installed = list(report.packs)
                except EdgeTutorError:
                    pass  # recorded as the store's last_error, which the label shows
                state = status(self.store)
        self.call_from_thread(self._sync_done, sync_label(state, reachable), installed)

    def _sync_done(self, label: str, installed: list[str]) -> None:
        self.sync_label = label
        self.refresh_status()
        for line in installed:
            self.notify(f"From the hub: {line}", title="Case packs", timeout=6)

    def set_trainee(self, trainee: Trainee) -> None:
        self.trainee = trainee
        self.refresh_status()

    # -- lifecycle -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        from .trainee import TraineeScreen

        self.show_sync_state()
        self.push_screen(TraineeScreen())
        self.sync_in_background()
        self.set_interval(SYNC_EVERY_S, self.sync_in_background)
        if self.model_choice is not None and self.encoder is not None:
            self.models_ready.set()
            self.refresh_status()
        else:
            self.load_models()
        # While the model loads, the status bar's spinner and seconds move.
        self.set_interval(0.5, self._loading_tick)

    def _loading_tick(self) -> None:
        if not self.models_ready.is_set():
            self.refresh_status()

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
        from ..patient.embed import load_encoder
        from ..service.session import load_model

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

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette: every action of the current screen, then help, theme and quit."""
        seen: set[str] = set()
        for node in (screen, self):
            for binding in getattr(type(node), "BINDINGS", []):
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                if binding.description in seen:
                    continue
                seen.add(binding.description)
                key = self.get_key_display(binding)
                yield SystemCommand(
                    binding.description,
                    f"key: {key}",
                    partial(node.run_action, binding.action),
                )
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit",):  # already listed, with its key
                yield command

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
        from ..packs.install import PackStore
        from .encounter import EncounterScreen

        if self.trainee is None:
            self.notify("choose a trainee first", severity="error")
            return
        try:
            title = next((c.title for c in PackStore().cases() if c.id == case_id), "the case")
        except EdgeTutorError:
            title = "the case"
        self.push_screen(EncounterScreen(case_id, resume=resume, title=title))

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
        self._loading_since = time.monotonic()
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
        self.request_sync()  # the attempt's result is now waiting to be sent

    def show_progress(self) -> None:
        from .progress import ProgressScreen

        self.push_screen(ProgressScreen())

    # -- what the screens ask for (messages.py) --------------------------------------------------
    # A screen posts a message; it bubbles to the app, which does here what the screen may not.
    def on_trainee_chosen(self, message: TraineeChosen) -> None:
        self.set_trainee(message.trainee)

    def on_show_library(self, message: ShowLibrary) -> None:
        self.show_library()

    def on_start_case(self, message: StartCase) -> None:
        self.start_case(message.case_id, resume=message.resume)

    def on_show_debrief(self, message: ShowDebrief) -> None:
        self.show_debrief(message.title, message.doc)

    def on_show_progress(self, message: ShowProgress) -> None:
        self.show_progress()

    def on_choose_model(self, message: ChooseModel) -> None:
        self.choose_model(message.key)


def make_app(
    *,
    store: Store | None = None,
    backend: Backend | None = None,
    encoder: Embedder | None = None,
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
