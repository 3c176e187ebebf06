"""Screen 2: the installed cases, with this trainee's best score; type to filter, Enter to play."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, Label

from ..errors import EdgeTutorError
from ..packs.install import CaseEntry, PackStore
from .base import EdgeScreen, StatusBar, report

# (label, key, width): the best score comes early so that it shows at 80 columns; long
# specialties are cut (the search still sees them whole).
COLUMNS = (
    ("Case", "case", 34),
    ("Best", "best", 4),
    ("Level", "level", 12),
    ("Specialty", "specialty", 18),
    ("Patient", "patient", 24),
    ("Publisher", "publisher", None),
)


def matches(entry: CaseEntry, query: str) -> bool:
    """Every word of the query appears in the case's id, title, specialty, level, patient or publisher."""
    hay = " ".join(
        (entry.id, entry.title, entry.specialty, entry.difficulty, entry.patient, entry.publisher)
    ).lower()
    return all(word in hay for word in query.lower().split())


class LibraryScreen(EdgeScreen):
    HELP_TITLE = "case library"
    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("escape", "back", "Trainees"),
        Binding("p", "progress", "Progress"),
        Binding("i", "install", "Install packs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cases: list[CaseEntry] = []
        self.best: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield Label("", id="library-title")
        yield Input(placeholder="search: type words, Down to the list", id="search")
        yield DataTable(id="cases", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#cases", DataTable)
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        self.reload()
        table.focus()

    def reload(self) -> None:
        """Re-read installed cases and this trainee's scores (after a debrief, say)."""
        try:
            self.cases = PackStore().cases()
            trainee = self.edge.trainee
            scored = self.edge.store.scored(trainee) if trainee else []
        except EdgeTutorError as err:
            report(self.app, err)
            self.cases, scored = [], []
        self.best = {}
        for attempt, score in scored:
            self.best[attempt.case_id] = max(self.best.get(attempt.case_id, 0.0), float(score["total"]))
        who = self.edge.trainee.name if self.edge.trainee else "?"
        title = f"Cases for {who}: {len(self.cases)} installed"
        if not self.cases:
            title += " (press i to install packs from a USB stick)"
        self.query_one("#library-title", Label).update(title)
        self.fill(self.query_one("#search", Input).value)

    def fill(self, query: str) -> None:
        table = self.query_one("#cases", DataTable)
        table.clear()
        for c in self.cases:
            if not matches(c, query):
                continue
            best = f"{self.best[c.id]:.0%}" if c.id in self.best else "-"
            # The title, not the id: ids often name the diagnosis ("typhoid-fever-adult").
            table.add_row(c.title, best, c.difficulty, c.specialty, c.patient, c.publisher, key=c.id)

    def visible_ids(self) -> list[str]:
        table = self.query_one("#cases", DataTable)
        return [str(row.key.value) for row in table.ordered_rows]

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ids = self.visible_ids()
        if len(ids) == 1:
            self.edge.start_case(ids[0])
        else:
            self.query_one("#cases", DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        # Down from the search box goes to the list, as users expect from a filter box.
        if event.key == "down" and self.focused is self.query_one("#search", Input):
            self.query_one("#cases", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.edge.start_case(str(event.row_key.value))

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_progress(self) -> None:
        self.edge.show_progress()

    def action_install(self) -> None:
        from .install import InstallScreen

        self.app.push_screen(InstallScreen(), lambda installed: self.reload())
