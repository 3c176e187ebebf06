"""The app syncs in the background and shows the sync state in its status bar (real hub, real HTTP)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edgetutor.patient.llm import ScriptedBackend
from edgetutor.service import open_store
from edgetutor.sync.client import status, sync
from edgetutor.tui.app import make_app, sync_label
from edgetutor.tui.debrief import DebriefScreen

from ..hub_helpers import Hub, issue_token
from .test_app import SIZE, open_case, settle, submit

NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)


def state(
    pending: int = 0,
    hub: str | None = "http://127.0.0.1:9",
    last: dt.datetime | None = None,
    error: str | None = None,
) -> Any:
    return SimpleNamespace(
        pending=pending, hub=hub, last_sync=last, last_error=error, enrolled=hub is not None
    )


def test_sync_label_says_what_a_trainee_needs() -> None:
    assert sync_label(state(hub=None), None, NOW) == "sync: no hub"
    assert sync_label(state(pending=2, hub=None), None, NOW) == "sync: no hub, 2 to send"
    assert sync_label(state(pending=2), False, NOW) == "sync: offline, 2 to send"
    today = sync_label(state(last=NOW - dt.timedelta(minutes=5)), True, NOW)
    assert today.startswith("sync: all sent, last ") and ":" in today.split("last ")[1]
    older = sync_label(state(pending=1, last=NOW - dt.timedelta(days=3)), True, NOW)
    assert older.startswith("sync: 1 to send, last ") and "Nov" in older
    assert sync_label(state(pending=1, error="the hub refused"), True, NOW) == "sync: failed, 1 to send"


def hub_events(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM events")]


@pytest.mark.asyncio
async def test_finished_attempt_reaches_the_hub_in_the_background(
    demo: Path, encoder: Any, sqlite_hub: Hub
) -> None:
    hub = sqlite_hub
    # The coordinator's token, used once from the command line (as a trainee would).
    with open_store() as store:
        sync(store, hub.url, issue_token(hub.db), tries=1, pull=False)
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "sync: all sent" in app.status
        await open_case(app, pilot)
        await submit(app, pilot, "end")
        assert isinstance(app.screen, DebriefScreen)
        await settle(app, pilot)  # the sync worker started by the finished attempt
        assert "sync: all sent, last " in app.status
    with open_store() as store:
        assert status(store).pending == 0
    assert len(hub_events(hub.db)) == 1


@pytest.mark.asyncio
async def test_hub_down_keeps_the_result_and_says_offline(demo: Path, encoder: Any, sqlite_hub: Hub) -> None:
    hub = sqlite_hub
    with open_store() as store:
        sync(store, hub.url, issue_token(hub.db), tries=1, pull=False)
    hub.stop()  # the clinic's Wi-Fi is gone
    app = make_app(backend=ScriptedBackend(), encoder=encoder)
    async with app.run_test(size=SIZE) as pilot:
        await open_case(app, pilot)
        await submit(app, pilot, "end")
        await settle(app, pilot)
        assert "sync: offline, 1 to send" in app.status
    with open_store() as store:
        assert status(store).pending == 1  # kept for the next sync
    assert hub_events(hub.db) == []
