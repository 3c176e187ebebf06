"""Screen 1: who is practising. Pick a trainee on this device or type a new name."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from ..errors import EdgeTutorError
from .base import EdgeScreen, StatusBar, footer, report
from .messages import ShowLibrary, TraineeChosen


class TraineeScreen(EdgeScreen):
    HELP_TITLE = "choose a trainee"
    BINDINGS = [
        Binding("n", "new_name", "New trainee"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="trainee-box"):
            yield Label("EdgeTutor: who is practising?", id="trainee-title")
            yield OptionList(id="trainees")
            yield Label("New trainee (type a name, then Enter):")
            yield Input(placeholder="name", id="new-trainee")
        yield StatusBar(id="status")
        yield footer()

    def on_mount(self) -> None:
        trainees = self.query_one("#trainees", OptionList)
        try:
            people = self.edge.store.trainees()
        except EdgeTutorError as err:
            report(self.app, err)
            people = []
        trainees.add_options([Option(p.name, id=str(p.id)) for p in people])
        if people:
            trainees.highlighted = 0
            trainees.focus()
        else:
            trainees.display = False
            self.query_one("#new-trainee", Input).focus()

    def action_new_name(self) -> None:
        self.query_one("#new-trainee", Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.choose(str(event.option.prompt))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.choose(event.value)

    def choose(self, name: str) -> None:
        try:
            trainee = self.edge.store.trainee(name)
        except EdgeTutorError as err:
            report(self.app, err)
            return
        self.post_message(TraineeChosen(trainee))
        self.post_message(ShowLibrary())
