"""Screen 3: the encounter. A conversation log, panels for findings and results, one action box.

Every action goes through `Session.act` in one exclusive thread worker (the backend is not
thread-safe and llama.cpp blocks). The model's reply reaches the log one sentence at a time, and
only sentences the guard has already passed (patient/speak.py): a rejected draft never shows, and
when nothing passes the log shows the case's own answer. Escape stops a reply: the encounter
calls back after every generated token (with an empty piece), the callback raises ModelError,
and the encounter falls back to the authored answer, so a cancelled turn is still recorded and
still true.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Static
from textual.worker import Worker, get_current_worker

from ..cases.codes import EXAM_CODES, TEST_CODES
from ..errors import ModelError
from ..patient.encounter import Reply, parse_action
from ..service.session import Session
from .base import EdgeScreen, StatusBar, footer
from .messages import ShowDebrief, ShowLibrary

CANCELLED = "reply cancelled by the trainee (Escape)"
SOURCE_NOTE = {"model": "model", "authored": "case answer", "lookup": "", "system": ""}


def action_suggestions() -> list[str]:
    """Completions for the action box: action words, then every standard exam and test name.

    Only EdgeTutor's standard names are offered, not the case's own items: suggesting exactly
    what the case describes would tell the trainee where the abnormal findings are.
    """
    out = ["examine vitals", "note ", "diagnose ", "plan ", "end"]
    for prefix, codes in (("examine", EXAM_CODES), ("order", TEST_CODES)):
        for name, aliases in codes.values():
            for label in (name.lower(), *aliases):
                item = f"{prefix} {label}"
                if len(label) >= 2 and item not in out:
                    out.append(item)
    return out


def typed(reply: Reply) -> str:
    """The action as the trainee typed it (turns store the action word and its argument apart)."""
    if reply.kind == "question":
        return reply.utterance
    return f"{reply.kind} {reply.utterance}".strip()


#: shown, turning, while the patient is being prepared or a reply is awaited
SPINNER = "|/-\\"


class LogEntry(Static):
    """One turn in the conversation log. `text` is the words shown (tests read it)."""

    def __init__(self, who: str, text: str, kind: str, note: str = "") -> None:
        super().__init__(classes=f"entry {kind}")
        self.who = who
        self.text = text
        self.note = note

    def on_mount(self) -> None:
        self._draw()

    def set(self, text: str, note: str = "") -> None:
        self.text, self.note = text, note
        self._draw()

    def add(self, piece: str) -> None:
        self.text += piece
        self._draw()

    def _draw(self) -> None:
        line = Text.assemble((f"{self.who}: ", "bold"), self.text)
        if self.note:
            line.append(f"  [{self.note}]", style="dim")
        self.update(line)


class Panel(VerticalScroll):
    """A side panel of lookups (examination findings or test results), newest last."""

    def __init__(self, title: str, id: str, classes: str = "") -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, classes=classes)
        self.border_title = title
        self.items: list[str] = []

    def add_item(self, text: str) -> None:
        self.items.append(text)
        self.remove_class("-empty")
        item = Static(Text(text), classes="item")
        self.mount(item)
        # The newest entry whole, from its first line (a long one is read by scrolling down),
        # never only its tail.
        self.call_after_refresh(self.scroll_to_widget, item, animate=False, top=True)


class EncounterScreen(EdgeScreen):
    HELP_TITLE = "encounter"
    SHOW_ACTIONS_HELP = True
    BINDINGS = [
        Binding("escape", "cancel_reply", "Stop reply"),
        Binding("ctrl+b", "leave", "Leave case"),
    ]

    def __init__(self, case_id: str, resume: str | None = None, title: str = "the case") -> None:
        super().__init__()
        self.case_id = case_id
        #: what the trainee sees until the case is open: its title, never its id
        self.title = title
        self.waiting_since: float | None = None  # when the current reply was asked for
        self.resume = resume  # an unfinished attempt to continue, or None for a new one
        self.session: Session | None = None
        self.busy = True  # until the session has started
        self.cancel = threading.Event()
        self.streaming: LogEntry | None = None
        self.started = time.monotonic()
        self.history: list[str] = []
        self.history_pos = 0

    def compose(self) -> ComposeResult:
        yield Label(f"Opening {self.title}: preparing the patient...", id="case-title")
        with Horizontal(id="encounter-body"):
            yield VerticalScroll(id="log")
            with Vertical(id="side"):
                yield Panel("Examination", id="findings")
                yield Panel("Results", id="results")
                yield Panel("My notes", id="notes", classes="-empty")
        yield Input(
            placeholder="ask a question, or: examine X, order X, note X, diagnose X, plan X, end",
            suggester=SuggestFromList(action_suggestions(), case_sensitive=False),
            id="action",
        )
        yield StatusBar(id="status")
        yield footer()

    def on_mount(self) -> None:
        self.query_one("#action", Input).focus()
        self.set_interval(0.25, self._tick)
        self.open_session()

    # -- session start -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="patient", exit_on_error=False)
    def open_session(self) -> None:
        app = self.edge
        worker = get_current_worker()
        # The model may still be loading: wait here, in the worker, never in the UI.
        while not app.models_ready.wait(0.1):
            if worker.is_cancelled:
                return
        trainee = app.trainee.name if app.trainee else "trainee"
        session = Session.start(
            self.case_id,
            trainee=trainee,
            backend=app.backend,
            model=app.model_choice,
            store=app.store,
            encoder=app.encoder,
            resume=self.resume,
        )
        self.app.call_from_thread(self._session_ready, session)

    def _session_ready(self, session: Session) -> None:
        self.session = session
        # The clock counts from the attempt's start, as its score does (time away included).
        away = dt.datetime.now(dt.UTC) - session.attempt.started
        self.started = time.monotonic() - (away.total_seconds() if self.resume else 0.0)
        self._tick()
        if self.resume:
            # Rebuild the log and panels from the stored turns: nothing is asked of the model.
            for reply in session.encounter.turns:
                if reply.kind == "opening":
                    self.log_entry("Patient", reply.text, "patient", "case answer")
                    continue
                line = typed(reply)
                self.log_entry("You", line, "trainee")
                self.history.append(line)
                self._show_reply(reply, None, replaying=True)
            self.history_pos = len(self.history)
            self.notify("Resumed: your earlier actions are shown above.", timeout=4)
        else:
            self.log_entry("Patient", session.replies[0].text, "patient", "case answer")
        self.busy = False

    def worker_failed(self, worker: Worker[Any]) -> None:
        if worker.name == "open_session":
            # No session (unknown case, damaged file...): nothing to do here but go back.
            self.app.pop_screen()
            return
        self.busy = False
        if self.streaming is not None:
            self.streaming.set(self.streaming.text, "failed")
            self.streaming = None

    # -- actions -------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        line = event.value.strip()
        if not line:
            return
        if self.session is None:
            self.notify("the patient is not ready yet: wait a moment", severity="warning")
            return
        if self.busy:
            self.notify("wait for the reply (Escape stops it)", severity="warning")
            return
        event.input.value = ""
        self.history.append(line)
        self.history_pos = len(self.history)
        self.log_entry("You", line, "trainee")
        self.busy = True
        self.cancel.clear()
        self.streaming = None
        self.waiting_since = time.monotonic()
        if parse_action(line)[0] == "question":
            # Shown at once, with a spinner and the seconds waited (see _tick): the first token
            # can take a second or more on a small machine.
            self.streaming = self.log_entry("Patient", "", "patient", "thinking")
        self.play_action(line)

    @work(thread=True, exclusive=True, group="patient", exit_on_error=False)
    def play_action(self, line: str) -> None:
        session = self.session
        assert session is not None
        cancel = self.cancel

        def on_token(piece: str) -> None:
            if cancel.is_set():
                raise ModelError(CANCELLED)
            if piece:  # empty pieces only give Escape its chance between tokens
                self.app.call_from_thread(self._stream_piece, piece)

        reply = session.act(line, on_token)
        doc = session.score()[1] if reply.kind == "end" else None
        self.app.call_from_thread(self._show_reply, reply, doc)

    def _stream_piece(self, piece: str) -> None:
        if self.streaming is None:
            self.streaming = self.log_entry("Patient", "", "patient")
        self.streaming.add(piece)
        self.query_one("#log", VerticalScroll).scroll_end(animate=False)

    def _show_reply(self, reply: Reply, doc: dict[str, Any] | None, replaying: bool = False) -> None:
        who = "Patient" if reply.kind == "question" else "Clinic"
        note = SOURCE_NOTE.get(reply.source, "")
        guard = reply.guard or {}
        if guard.get("decision") == "reject" and guard.get("draft") is not None:
            note = "case answer: the model's draft was rejected"
        if self.streaming is not None:
            # The final text: the checked sentences already shown, or the case's own answer.
            self.streaming.set(reply.text, note)
        else:
            self.log_entry(who, reply.text, "patient" if who == "Patient" else "clinic", note)
        self.streaming = None
        self.busy = False
        self.waiting_since = None
        # The final text can be longer than what streamed (or replace it): keep it in view.
        log = self.query_one("#log", VerticalScroll)
        self.call_after_refresh(log.scroll_end, animate=False)
        if guard.get("decision") == "reject" and guard.get("draft") is None and not replaying:
            reason = "; ".join(guard.get("reasons", []))
            if CANCELLED in reason:
                self.notify("Reply stopped: the case's own answer is shown.", timeout=4)
            else:
                self.notify(f"{reason}; the case's own answer is shown", title="Model", severity="error")
        # A stored turn does not keep `ok`: a lookup that found nothing has no matched item.
        ok = reply.ok and (bool(reply.matched) or not replaying)
        if ok and reply.kind == "examine":
            self.query_one("#findings", Panel).add_item(reply.text)
        elif ok and reply.kind == "order":
            self.query_one("#results", Panel).add_item(reply.text)
        elif reply.kind == "note":
            self.query_one("#notes", Panel).add_item(reply.utterance)
        if doc is not None and self.session is not None:
            self.post_message(ShowDebrief(self.session.case.title, doc))

    def log_entry(self, who: str, text: str, kind: str, note: str = "") -> LogEntry:
        entry = LogEntry(who, text, kind, note)
        log = self.query_one("#log", VerticalScroll)
        log.mount(entry)
        log.scroll_end(animate=False)
        return entry

    def action_cancel_reply(self) -> None:
        if self.busy and self.session is not None:
            self.cancel.set()

    def action_leave(self) -> None:
        if self.session is not None and self.busy:
            self.notify("wait for the reply (Escape stops it), then leave", severity="warning")
            return
        if self.session is not None:
            self.notify("Attempt kept: choose this case again to resume it.", timeout=6)
        self.post_message(ShowLibrary())

    def on_key(self, event: events.Key) -> None:
        # Up/Down in the action box recall earlier actions, like a shell.
        if event.key not in ("up", "down") or not self.history:
            return
        box = self.query_one("#action", Input)
        if self.focused is not box:
            return
        step = -1 if event.key == "up" else 1
        self.history_pos = max(0, min(len(self.history), self.history_pos + step))
        box.value = self.history[self.history_pos] if self.history_pos < len(self.history) else ""
        box.cursor_position = len(box.value)
        event.stop()

    # -- header --------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        spin = SPINNER[int(now * 4) % len(SPINNER)]
        if self.session is None:
            self.query_one("#case-title", Label).update(
                f"{spin} Opening {self.title}: preparing the patient... {now - self.started:.0f} s"
            )
            return
        if self.streaming is not None and self.waiting_since is not None:
            state = "speaking" if self.streaming.text else "thinking"
            self.streaming.set(self.streaming.text, f"{spin} {state} {now - self.waiting_since:.0f} s")
        minutes, seconds = divmod(int(now - self.started), 60)
        case = self.session.case
        self.query_one("#case-title", Label).update(
            f"{case.title} | {self.session.entry.patient} | {minutes:02d}:{seconds:02d}"
        )
