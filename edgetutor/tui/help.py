"""The `?` screen: every key of the screen underneath and of the app, built from their bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

ACTIONS_HELP = """\
Actions, typed in the box (the same words as `edgetutor run`):
  a question        e.g. how long have you had the fever?
  examine <system>  e.g. examine vitals (also: exam, check)
  order <test>      e.g. order malaria rdt (also: test, request)
  note <text>       your own note, kept in the My notes panel
  diagnose <text>   add differentials with: ; ddx a, b
  plan <text>       management (may be given more than once)
  end               finish and see the debrief
In the box: Right or End takes the grey suggestion; Up/Down recall
earlier actions; ? is typed, so F1 opens this help."""


def bindings_of(node: object) -> list[Binding]:
    return [b for b in getattr(type(node), "BINDINGS", []) if isinstance(b, Binding)]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close help", key_display="Esc")]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for the screen underneath, then the app-wide keys."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for binding in [*bindings_of(self.under), *bindings_of(self.app)]:
            if binding.action in seen or not binding.description:
                continue
            seen.add(binding.action)
            keys = binding.key_display or ", ".join(
                self.app.get_key_display(Binding(k.strip(), binding.action)) for k in binding.key.split(",")
            )
            if binding.action == "help":
                keys = "F1 (or ? outside a text box)"
            out.append((keys, binding.description))
        out.append(("Ctrl+P", "command palette: every action above, and the colour theme"))
        out.append(("Esc, q, F1", "close this help"))
        return out

    def compose(self) -> ComposeResult:
        title = getattr(self.under, "HELP_TITLE", "EdgeTutor")
        lines = [f"{keys:<22} {what}" for keys, what in self.rows()]
        text = f"Keys: {title}\n\n" + "\n".join(lines)
        if getattr(self.under, "SHOW_ACTIONS_HELP", False):
            text += "\n\n" + ACTIONS_HELP
        text += "\n\nLists and tables: Up/Down move, Enter chooses, Tab moves between boxes."
        with VerticalScroll(id="help-body"):
            yield Static(text, id="help-text", markup=False)
