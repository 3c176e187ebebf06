"""The terminal app driven by Pilot at 80x24: assertions on app state and widgets, not timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, OptionList, Static

from edgetutor.errors import ModelError
from edgetutor.packs.install import PackStore
from edgetutor.patient.llm import ScriptedBackend, TurnStats
from edgetutor.service import open_store
from edgetutor.tui.app import EdgeTutorApp, make_app
from edgetutor.tui.debrief import DebriefScreen
from edgetutor.tui.encounter import EncounterScreen, LogEntry, Panel
from edgetutor.tui.help import HelpScreen
from edgetutor.tui.library import LibraryScreen
from edgetutor.tui.progress import ProgressScreen
from edgetutor.tui.trainee import TraineeScreen

pytestmark = pytest.mark.asyncio

SIZE = (80, 24)
CASE = "malaria-uncomplicated-adult"
FEVER_AUTHORED = "I have had a fever for three days. It comes and goes, mostly in the evening."


async def settle(app: EdgeTutorApp, pilot: Pilot[Any]) -> None:
    """Wait for every worker, then for the messages they posted to the UI."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def submit(app: EdgeTutorApp, pilot: Pilot[Any], line: str) -> None:
    box = app.screen.query_one("#action", Input)
    box.value = line
    await pilot.press("enter")
    await settle(app, pilot)


def log_lines(screen: EncounterScreen) -> list[tuple[str, str]]:
    return [(e.who, e.text) for e in screen.query(LogEntry)]


async def to_library(app: EdgeTutorApp, pilot: Pilot[Any], name: str = "Amina") -> LibraryScreen:
    await pilot.press(*name, "enter")
    await pilot.pause()
    assert isinstance(app.screen, LibraryScreen)
    return app.screen


async def open_case(app: EdgeTutorApp, pilot: Pilot[Any], case_id: str = CASE) -> EncounterScreen:
    library = await to_library(app, pilot)
    table = library.query_one("#cases", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(case_id))
    await pilot.press("enter")
    await settle(app, pilot)
    assert isinstance(app.screen, EncounterScreen)
    return app.screen


@pytest.mark.slow
async def test_full_encounter_to_debrief_and_progress(demo: Path, encoder: Any) -> None:
    backend = ScriptedBackend(["I have had a fever for three days, mostly in the evening."])
    app = make_app(backend=backend, encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, TraineeScreen)
        assert "model scripted" in app.status
        library = await to_library(app, pilot)
        assert app.trainee is not None and app.trainee.name == "Amina"
        assert "Amina" in app.status

        # The library lists the 13 demo cases, with the publisher labelled DEMO.
        table = library.query_one("#cases", DataTable)
        assert len(library.visible_ids()) == 13
        assert CASE in library.visible_ids()
        # At 80 columns the publisher column gives way to the title; the demo label stays in view.
        assert "DEMO" in str(library.query_one("#library-title", Label).render())
        assert table.get_cell(CASE, "best") == "-"  # no best score yet

        # The search box filters on titles and the patients' opening words, never on what would
        # give the diagnosis away (ids, specialties).
        await pilot.press("slash", *"malaria")
        assert library.visible_ids() == []
        await pilot.press(*["backspace"] * 7, *"chills")
        assert library.visible_ids() == [CASE]
        assert library.query_one("#search", Input).value == "chills"

        table.focus()
        table.move_cursor(row=table.get_row_index(CASE))
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, EncounterScreen)
        assert screen.session is not None and screen.session.case.id == CASE
        assert log_lines(screen)[0][0] == "Patient"  # the opening statement

        # A question: the scripted model's reply is streamed into the log and kept by the guard.
        await submit(app, pilot, "how long have you had the fever?")
        reply = screen.session.replies[-1]
        assert reply.source == "model"
        assert log_lines(screen)[-2:] == [
            ("You", "how long have you had the fever?"),
            ("Patient", "I have had a fever for three days, mostly in the evening."),
        ]
        assert len(backend.received) == 1

        await submit(app, pilot, "examine vitals")
        findings = screen.query_one("#findings", Panel)
        assert findings.items and findings.items[-1].startswith("Vital signs:")
        assert "vitals" in screen.session.encounter.examined

        await submit(app, pilot, "order rdt")
        results = screen.query_one("#results", Panel)
        assert results.items and "Malaria" in results.items[-1]
        assert screen.session.encounter.ordered == ["malaria.rdt"]

        await submit(app, pilot, "diagnose uncomplicated falciparum malaria")
        await submit(app, pilot, "plan artemether-lumefantrine 4 tablets twice daily for 3 days")
        assert screen.session.encounter.diagnosis == "uncomplicated falciparum malaria"
        attempt_id = screen.session.attempt.id

        await submit(app, pilot, "end")
        debrief = app.screen
        assert isinstance(debrief, DebriefScreen)
        assert 0.0 < debrief.doc["score"] <= 1.0
        assert f"{debrief.doc['score']:.0%}" in str(debrief.query_one("#score", Static).content)
        with open_store() as store:
            assert store.attempt(attempt_id).status == "finished"
            assert store.score(attempt_id) is not None

        # Progress, then back to the library, which now shows the best score.
        await pilot.press("p")
        await settle(app, pilot)
        assert isinstance(app.screen, ProgressScreen)
        assert app.screen.doc is not None and app.screen.doc["cases_attempted"] == 1
        shown = str(app.screen.query_one("#progress-text", Static).content)
        assert "By competency (weakest first):" in shown and "infectious disease" in shown
        next_part = shown.split("Next:")[1]
        assert app.screen.doc["recommended"][0]["title"] in next_part
        assert app.screen.doc["recommended"][0]["case"] not in next_part  # ids can name the diagnosis
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LibraryScreen)
        best = app.screen.query_one("#cases", DataTable).get_cell(CASE, "best")
        assert best == f"{debrief.doc['score']:.0%}"


async def test_pick_existing_trainee(demo: Path, encoder: Any) -> None:
    with open_store() as store:
        store.trainee("Baraka")
        store.trainee("Chiku")
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        options = app.screen.query_one("#trainees", OptionList)
        assert options.option_count == 2
        await pilot.press("down", "enter")
        assert app.trainee is not None and app.trainee.name == "Chiku"
        assert isinstance(app.screen, LibraryScreen)


async def test_empty_trainee_name_is_an_error(demo: Path, notes: list[tuple[str, str]]) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=object())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space", "enter")
        assert isinstance(app.screen, TraineeScreen)
        assert ("error", "trainee name must not be empty") in notes
    with open_store() as store:
        assert store.trainees() == []


async def test_rejected_draft_never_reaches_the_screen(demo: Path, encoder: Any, monkeypatch: Any) -> None:
    backend = ScriptedBackend(["It is malaria, I am sure of it."])  # names the diagnosis
    pieces: list[str] = []
    original = EncounterScreen._stream_piece

    def spy(self: EncounterScreen, piece: str) -> None:
        pieces.append(piece)
        original(self, piece)

    monkeypatch.setattr(EncounterScreen, "_stream_piece", spy)
    app = make_app(backend=backend, encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "how long have you had the fever?")
        assert pieces == []  # the guard checks each sentence before the screen sees it
        entry = list(screen.query(LogEntry))[-1]
        assert entry.text == FEVER_AUTHORED
        assert "rejected" in entry.note


async def test_checked_sentences_stream_one_at_a_time(demo: Path, encoder: Any, monkeypatch: Any) -> None:
    # The second sentence repeats the first: only the first is shown, and it is the reply.
    backend = ScriptedBackend(["I have had a fever for three days. I have had a fever for three days."])
    pieces: list[str] = []
    original = EncounterScreen._stream_piece

    def spy(self: EncounterScreen, piece: str) -> None:
        pieces.append(piece)
        original(self, piece)

    monkeypatch.setattr(EncounterScreen, "_stream_piece", spy)
    app = make_app(backend=backend, encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "how long have you had the fever?")
        assert pieces == ["I have had a fever for three days."]
        assert log_lines(screen)[-1] == ("Patient", "I have had a fever for three days.")


async def test_suggester_completes_test_names(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await pilot.press(*"order", "space", *"rd")
        await pilot.pause()
        await pilot.press("right")  # accept the suggestion
        assert screen.query_one("#action", Input).value == "order rdt"
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.session is not None and screen.session.encounter.ordered == ["malaria.rdt"]


async def test_unknown_exam_stays_out_of_panels(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "examine zzzqqq")
        assert log_lines(screen)[-1][1].startswith("Unknown examination")
        assert screen.query_one("#findings", Panel).items == []


async def test_help_screen_lists_keys(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        await to_library(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).content)
        for what in ("Search", "Progress", "Trainees", "Quit", "Help"):
            assert what in text
        await pilot.press("escape")
        assert isinstance(app.screen, LibraryScreen)


async def test_help_in_encounter_lists_actions(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        await open_case(app, pilot)
        await pilot.press("f1")  # `?` types into the action box there: F1 opens help
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).content)
        assert "Stop reply" in text and "order <test>" in text


async def test_unknown_case_is_a_notification(demo: Path, encoder: Any, notes: list[tuple[str, str]]) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        await to_library(app, pilot)
        app.start_case("no-such-case")
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert any(sev == "error" and "no installed case 'no-such-case'" in msg for sev, msg in notes)


async def test_missing_case_file_is_a_notification(
    demo: Path, encoder: Any, notes: list[tuple[str, str]]
) -> None:
    PackStore().case(CASE).file.unlink()
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        library = await to_library(app, pilot)
        table = library.query_one("#cases", DataTable)
        table.move_cursor(row=table.get_row_index(CASE))
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert [sev for sev, msg in notes if CASE in msg or "malaria" in msg] == ["error"]


class FailingBackend:
    """A model that fails: ModelError (the encounter falls back) or anything else (a bug)."""

    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.last = TurnStats()

    def stream(
        self, messages: Any, *, max_tokens: int, temperature: float, stop: Any = None, **_: Any
    ) -> Iterator[str]:
        raise self.error


async def test_model_error_falls_back_and_notifies(
    demo: Path, encoder: Any, notes: list[tuple[str, str]]
) -> None:
    app = make_app(backend=FailingBackend(ModelError("the model crashed")), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "how long have you had the fever?")
        assert log_lines(screen)[-1] == ("Patient", FEVER_AUTHORED)
        assert any(sev == "error" and "the model crashed" in msg for sev, msg in notes)


async def test_unexpected_backend_failure_is_a_notification(
    demo: Path, encoder: Any, notes: list[tuple[str, str]]
) -> None:
    app = make_app(backend=FailingBackend(RuntimeError("segfault-ish")), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "how long have you had the fever?")
        assert ("error", "unexpected RuntimeError: segfault-ish") in notes
        assert isinstance(app.screen, EncounterScreen) and not screen.busy
        # The app carries on: the next action works.
        await submit(app, pilot, "examine vitals")
        assert screen.query_one("#findings", Panel).items


class GatedBackend:
    """Yields one piece, then waits for the test to open the gate before the rest."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.last = TurnStats()

    def stream(
        self, messages: Any, *, max_tokens: int, temperature: float, stop: Any = None, **_: Any
    ) -> Iterator[str]:
        def pieces() -> Iterator[str]:
            yield "I have had a fever for three days. "
            self.started.set()
            self.gate.wait(10)
            yield "It comes and goes, "
            yield "mostly in the evening."

        return pieces()


async def test_escape_stops_a_streaming_reply(demo: Path, encoder: Any, notes: list[tuple[str, str]]) -> None:
    backend = GatedBackend()
    app = make_app(backend=backend, encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        box = screen.query_one("#action", Input)
        box.value = "how long have you had the fever?"
        await pilot.press("enter")
        for _ in range(200):  # until the first sentence is generated (bounded; not a timing assertion)
            if backend.started.is_set():
                break
            await asyncio.sleep(0.01)
        assert backend.started.is_set()
        await pilot.press("escape")
        backend.gate.set()
        await settle(app, pilot)
        assert log_lines(screen)[-1] == ("Patient", FEVER_AUTHORED)
        assert not screen.busy
        assert any("Reply stopped" in msg for _, msg in notes)
        assert screen.session is not None
        guard = screen.session.replies[-1].guard or {}
        assert "cancelled" in " ".join(guard.get("reasons", []))


async def test_install_packs_from_a_usb_folder(
    home: Path, tmp_path: Path, encoder: Any, notes: list[tuple[str, str]]
) -> None:
    """From the library: `i`, a folder like a USB stick, one good pack and one tampered one."""
    import shutil
    import zipfile

    from edgetutor.tui.install import InstallScreen

    from ..conftest import ROOT

    usb = tmp_path / "usb"
    usb.mkdir()
    shutil.copy(ROOT / "casepacks" / "edgetutor-demo.etpack", usb / "demo.etpack")
    with zipfile.ZipFile(usb / "demo.etpack") as src, zipfile.ZipFile(usb / "tampered.etpack", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("malaria-uncomplicated-adult.yaml"):
                data = data.replace(b"artemether", b"chloroquin")
            dst.writestr(info, data)
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        library = await to_library(app, pilot)
        assert library.visible_ids() == []
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, InstallScreen)
        box = app.screen.query_one("#install-path", Input)
        box.value = str(usb)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert len(app.screen.visible_ids()) == 13
        assert any("Installed: edgetutor-demo v1, 13 case(s)" in msg for _, msg in notes)
        assert any(sev == "error" and "refused tampered.etpack" in msg for sev, msg in notes)
    assert [p.pack_id for p in PackStore().installed()] == ["edgetutor-demo"]


async def test_install_from_a_missing_folder_is_an_error(
    home: Path, encoder: Any, notes: list[tuple[str, str]]
) -> None:
    from edgetutor.tui.install import InstallScreen

    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        await to_library(app, pilot)
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#install-path", Input).value = "/no/such/usb"
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, InstallScreen)
        assert any(sev == "error" and "no such file or folder: /no/such/usb" in msg for sev, msg in notes)
    assert not (home / "packs").exists()


async def test_notes_go_to_their_panel(demo: Path, encoder: Any) -> None:
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_case(app, pilot)
        await submit(app, pilot, "note spleen? ask about travel")
        notes = screen.query_one("#notes", Panel)
        assert "spleen? ask about travel" in " ".join(str(w.render()) for w in notes.query(Static))
        assert screen.session is not None
        with open_store() as store:
            kinds = [t.kind for t in store.turns(screen.session.attempt.id)]
        assert kinds[-1] == "note"
