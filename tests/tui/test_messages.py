"""Screens ask the app for things with messages (edgetutor/tui/messages.py), never by calling it.

Every module of edgetutor/tui/ except app.py is read with `ast` (nothing imported): a screen may
read the app's shared state and use a few of Textual's own App methods, and nothing else of the
app. Then one pilot run shows that a posted message really moves the app to another screen.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from edgetutor.patient.llm import ScriptedBackend
from edgetutor.tui.app import make_app
from edgetutor.tui.encounter import EncounterScreen
from edgetutor.tui.library import LibraryScreen
from edgetutor.tui.messages import ShowLibrary

from .test_app import SIZE, open_case, settle

TUI = Path(__file__).resolve().parents[2] / "edgetutor" / "tui"

# Textual's own App methods a screen may call (or hand to call_from_thread). None of them is
# EdgeTutor's navigation or state: each is either feedback, a thread hand-off or a screen looking
# after its own place on Textual's stack.
TEXTUAL_ALLOWED = {
    "call_from_thread",  # a worker hands its result back to the UI thread: the only safe way
    "notify",  # a toast; changes nothing
    "bell",  # a beep; changes nothing
    "post_message",  # the very way a screen asks the app for something
    "push_screen",  # a screen opens its own dialog (resume, model, install) and takes its answer
    "pop_screen",  # a screen closes itself (the library going back, an encounter that failed)
    "exit",  # quitting is Textual's, not a choice of screen
    "query_one",  # reads a widget
    "get_key_display",  # reads how a key is shown (the help screen)
}

# The app's shared state a screen may read (`EdgeTutorApp`): attributes, the `store` property and
# one method that only reports. Writing any of them is still refused (see `violations`).
READ_ONLY = {
    "store",
    "trainee",
    "backend",
    "encoder",
    "model_choice",
    "models_ready",  # a threading.Event a worker waits on
    "current_model",  # the model file in use: a question, not a change
}

ALLOWED = TEXTUAL_ALLOWED | READ_ONLY


def _is_app(node: ast.AST, aliases: set[str]) -> bool:
    """`self.edge`, `self.app`, or a local name bound to one of them (`app = self.edge`)."""
    if isinstance(node, ast.Attribute) and node.attr in ("edge", "app"):
        return isinstance(node.value, ast.Name) and node.value.id == "self"
    return isinstance(node, ast.Name) and node.id in aliases


def violations(source: str, filename: str = "<snippet>") -> list[str]:
    """Every use of the app in `source` beyond ALLOWED, as 'file:line: what'."""
    tree = ast.parse(source)
    found: list[str] = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        aliases: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and _is_app(node.value, set()):
                aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(func):
            where = f"{filename}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute) and _is_app(node.value, aliases):
                if not isinstance(node.ctx, ast.Load):
                    found.append(f"{where}: assigns {ast.unparse(node)}")
                elif node.attr not in ALLOWED:
                    found.append(f"{where}: {ast.unparse(node)}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr")
                and node.args
                and _is_app(node.args[0], aliases)
            ):
                name = node.args[1] if len(node.args) > 1 else None
                if node.func.id == "setattr" or not (
                    isinstance(name, ast.Constant) and name.value in ALLOWED
                ):
                    found.append(f"{where}: {ast.unparse(node)}")
    # A function nested in another is walked twice: report each place once.
    return sorted(set(found))


def screen_modules() -> list[Path]:
    return sorted(p for p in TUI.glob("*.py") if p.name != "app.py")


def test_screens_only_read_the_app_and_post_messages() -> None:
    modules = screen_modules()
    assert {p.stem for p in modules} >= {"base", "trainee", "library", "encounter", "debrief", "progress"}
    found: list[str] = []
    for path in modules:
        found += violations(path.read_text(encoding="utf-8"), f"edgetutor/tui/{path.name}")
    assert found == [], "post a message from edgetutor/tui/messages.py instead:\n" + "\n".join(found)


CAUGHT = [
    "self.edge.show_library()",
    "self.app.show_debrief('a case', {})",
    "self.app.call_from_thread(self.edge.show_progress)",
    "app = self.edge\n        app.set_trainee(trainee)",
    "self.edge.trainee = trainee",
    "getattr(self.edge, 'start_case')('a-case')",
    "self.app.switch_screen(DebriefScreen('a case', {}))",
]
PASSED = [
    "self.edge.store.trainees()",
    "self.app.call_from_thread(self.app.notify, 'installed')",
    "app = self.edge\n        app.models_ready.wait(0.1)",
    "self.app.push_screen(ModelScreen(self.edge.current_model()), chosen)",
    "self.post_message(ShowLibrary())",
]


def method(body: str) -> str:
    return f"class S:\n    def action(self) -> None:\n        {body}\n"


@pytest.mark.parametrize("body", CAUGHT)
def test_the_check_catches_a_call_into_the_app(body: str) -> None:
    assert violations(method(body)) != []


@pytest.mark.parametrize("body", PASSED)
def test_the_check_lets_reads_and_textual_calls_pass(body: str) -> None:
    assert violations(method(body)) == []


@pytest.mark.asyncio
async def test_a_posted_message_navigates(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        encounter = await open_case(app, pilot)
        assert isinstance(app.screen, EncounterScreen)
        encounter.post_message(ShowLibrary())  # bubbles from the screen to the app
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert encounter not in app.screen_stack
