"""Screen 2: the installed cases, with this trainee's best score; type to filter, Enter to play."""

from __future__ import annotations

import textwrap

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Label

from ..errors import EdgeTutorError
from ..packs.install import CaseEntry, PackStore
from ..scoring.outcome import percent
from ..store.db import Attempt
from .base import EdgeScreen, StatusBar, footer, report
from .messages import ChooseModel, ShowProgress, StartCase

# (label, key, width, shown from this many columns): the title gets what the screen has left, so
# at 80 columns it is whole; the level, specialty and publisher appear on wider screens. Never the
# case id, the diagnosis or the patient's name: ids and names can give the diagnosis away.
COLUMNS = (
    ("Best", "best", 4, 0),
    ("Status", "status", 10, 0),
    ("Level", "level", 12, 100),
    ("Specialty", "specialty", 16, 120),
    ("Publisher", "publisher", 22, 150),
)
TITLE_MIN = 30


def matches(entry: CaseEntry, query: str) -> bool:
    """Every word of the query appears in the case's title or the patient's opening words: what a
    trainee has seen. Never the id, the specialty or anything else that could name the answer."""
    hay = f"{entry.title} {entry.complaint}".lower()
    return all(word in hay for word in query.lower().split())


class LibraryScreen(EdgeScreen):
    HELP_TITLE = "case library"
    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("escape", "back", "Trainees"),
        Binding("p", "progress", "Progress"),
        Binding("i", "install", "Install"),
        Binding("m", "model", "Model"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cases: list[CaseEntry] = []
        self.best: dict[str, float] = {}
        self.passed: set[str] = set()
        #: per case, this trainee's unfinished attempt newer than any finished one (offered to resume)
        self.unfinished: dict[str, Attempt] = {}

    def compose(self) -> ComposeResult:
        yield Label("", id="library-title")
        yield Input(placeholder="search: type words, Down to the list", id="search")
        yield DataTable(id="cases", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield footer()

    def on_mount(self) -> None:
        self._columns_for = -1
        self.reload()
        self.query_one("#cases", DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._columns_for:
            self.fill(self.query_one("#search", Input).value)

    def _columns(self) -> list[tuple[str, str, int]]:
        """The columns that fit this width, the title first and as wide as the rest allows."""
        width = self.size.width or 80
        shown = [(label, key, w) for label, key, w, need in COLUMNS if width >= need]
        # each column also takes 2 cells of padding; 2 more for the scroll bar
        rest = sum(w + 2 for _, _, w in shown) + 4
        longest = max((len(c.title) for c in self.cases), default=TITLE_MIN)
        return [("Case", "case", max(TITLE_MIN, min(longest, width - rest))), *shown]

    def reload(self) -> None:
        """Re-read installed cases and this trainee's scores (after a debrief, say)."""
        try:
            self.cases = PackStore().cases()
            trainee = self.edge.trainee
            store = self.edge.store
            # An attempt left by a killed or closed session becomes 'interrupted' (resumable).
            store.mark_interrupted_stale()
            scored = store.scored(trainee) if trainee else []
            attempts = store.attempts(trainee) if trainee else []
        except EdgeTutorError as err:
            report(self.app, err)
            self.cases, scored, attempts = [], [], []
        self.best, self.passed = {}, set()
        for attempt, score in scored:
            self.best[attempt.case_id] = max(self.best.get(attempt.case_id, 0.0), float(score["total"]))
            if score.get("passed"):
                self.passed.add(attempt.case_id)
        # Oldest first: a finished attempt clears the offer to resume an older unfinished one
        # (the trainee chose to start again), a newer unfinished one replaces it.
        self.unfinished = {}
        for attempt in attempts:
            if attempt.status == "finished":
                self.unfinished.pop(attempt.case_id, None)
            else:
                self.unfinished[attempt.case_id] = attempt
        who = self.edge.trainee.name if self.edge.trainee else "?"
        title = f"Cases for {who}: {len(self.cases)} installed"
        if not self.cases:
            title += " (press i to install packs from a USB stick)"
        if any("DEMO" in c.publisher for c in self.cases):
            title += "; DEMO cases from a publisher nobody vetted"
        self.query_one("#library-title", Label).update(title)
        self.fill(self.query_one("#search", Input).value)

    def fill(self, query: str) -> None:
        table = self.query_one("#cases", DataTable)
        columns = self._columns()
        table.clear(columns=True)
        for label, key, width in columns:
            table.add_column(label, key=key, width=width)
        self._columns_for = self.size.width
        values = {
            "level": lambda c: c.difficulty,
            "specialty": lambda c: c.specialty,
            "publisher": lambda c: c.publisher,
        }
        for c in self.cases:
            if not matches(c, query):
                continue
            best = percent(self.best[c.id]) if c.id in self.best else "-"
            # The title, not the id: ids often name the diagnosis ("typhoid-fever-adult").
            # A title longer than its column wraps onto a second line rather than being cut.
            lines = textwrap.wrap(c.title, columns[0][2]) or [""]
            cells = ["\n".join(lines), best, self.status_of(c.id)]
            cells += [values[key](c) for _, key, _ in columns[3:]]
            table.add_row(*cells, key=c.id, height=len(lines))

    def status_of(self, case_id: str) -> str:
        if case_id in self.unfinished:
            return "unfinished"
        if case_id in self.passed:
            return "passed"
        return "tried" if case_id in self.best else "new"

    def visible_ids(self) -> list[str]:
        table = self.query_one("#cases", DataTable)
        return [str(row.key.value) for row in table.ordered_rows]

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ids = self.visible_ids()
        if len(ids) == 1:
            self.open_case(ids[0])
        else:
            self.query_one("#cases", DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        # Down from the search box goes to the list, as users expect from a filter box.
        if event.key == "down" and self.focused is self.query_one("#search", Input):
            self.query_one("#cases", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.open_case(str(event.row_key.value))

    def open_case(self, case_id: str) -> None:
        """Start the case, first asking whether to resume this trainee's unfinished attempt."""
        from .dialogs import ResumeScreen

        attempt = self.unfinished.get(case_id)
        if attempt is None:
            self.post_message(StartCase(case_id))
            return
        title = next((c.title for c in self.cases if c.id == case_id), case_id)
        try:
            turns = sum(1 for t in self.edge.store.turns(attempt.id) if t.kind != "opening")
        except EdgeTutorError as err:
            report(self.app, err)
            return

        def chosen(choice: str | None) -> None:
            if choice == "resume":
                self.post_message(StartCase(case_id, resume=attempt.id))
            elif choice == "new":
                self.post_message(StartCase(case_id))

        self.app.push_screen(ResumeScreen(title, attempt, turns), chosen)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_progress(self) -> None:
        self.post_message(ShowProgress())

    def action_model(self) -> None:
        from .dialogs import ModelScreen

        def chosen(key: str | None) -> None:
            if key is not None:
                self.post_message(ChooseModel(key))

        self.app.push_screen(ModelScreen(self.edge.current_model()), chosen)

    def action_install(self) -> None:
        from .install import InstallScreen

        self.app.push_screen(InstallScreen(), lambda installed: self.reload())
