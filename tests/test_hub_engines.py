"""The hub on both engines: one set of migrations, exactly-once ingest with several server
processes, a hub killed mid-batch, clear errors for a database it cannot open, backup/restore.

PostgreSQL is a real server started by the test suite (tests/postgres.py), never a stand-in.
"""

from __future__ import annotations

import http.client
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.cli import make_cli
from edgetutor.hub.db import MIGRATIONS, HubDB
from edgetutor.sync import protocol
from tests.conftest import ENGINES, hub_database
from tests.hub_helpers import Device, Hub, enrolled, rows, stored_seqs, wait_until
from tests.postgres import PostgresServer, free_port

API = protocol.API


def columns(db: HubDB) -> dict[str, list[str]]:
    """{table: sorted column names}, read from the engine's own catalogue."""
    if db.dialect.name == "sqlite":
        tables = [r["name"] for r in db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(r["name"] for r in db.rows(f"PRAGMA table_info({t})")) for t in tables}
    found: dict[str, list[str]] = {}
    for r in db.rows(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        found.setdefault(r["table_name"], []).append(r["column_name"])
    return {t: sorted(c) for t, c in found.items()}


def test_both_engines_run_the_same_migrations_to_the_same_tables(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.new_database()
    with HubDB(tmp_path / "hub.db") as lite, HubDB(url) as pg:
        assert lite.dialect.name == "sqlite" and pg.dialect.name == "postgresql"
        assert lite.migrations() == pg.migrations() == sorted(name for name, _ in MIGRATIONS)
        assert columns(lite) == columns(pg)
    with HubDB(url) as again:  # opening again applies nothing twice
        assert again.migrations() == sorted(name for name, _ in MIGRATIONS)
        assert len(rows(url, "SELECT name FROM hub_migrations")) == len(MIGRATIONS)


def test_two_processes_migrating_one_new_database_at_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    code = "import sys; from edgetutor.hub.db import HubDB; HubDB(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert len(rows(url, "SELECT name FROM hub_migrations")) == len(MIGRATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_several_workers_store_each_event_exactly_once(
    engine: str, tmp_path: Path, postgres: PostgresServer
) -> None:
    """Many devices syncing at once into `--workers 2`, every batch sent twice at the same time
    (a device retrying while its first request is still in flight): each event stored once."""
    hub = Hub(hub_database(engine, tmp_path, postgres), workers=2)
    try:
        devices = [enrolled(hub, site=f"Site {i % 3}") for i in range(10)]
        chains = {d.id: d.events(240) for d in devices}
        failures: list[str] = []

        def send(device: Device, copy: int) -> None:
            events = chains[device.id]
            for start in range(0, len(events), 40):
                batch = {"device_id": device.id, "events": events[start : start + 40]}
                status, reply = hub.post(f"{API}/events", batch, idem=f"{device.id}-{start}-{copy}")
                if status != 200 or reply["rejected"] or reply["acked_seq"] < start + 40:
                    failures.append(f"{device.id} copy {copy} at {start}: {status} {reply}")
                    return

        threads = [threading.Thread(target=send, args=(d, c)) for d in devices for c in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert failures == []
        for device in devices:
            assert stored_seqs(hub.db, device.id) == list(range(1, 241))
            assert hub.get(f"{API}/devices/{device.id}/ack")[1]["acked_seq"] == 240
        ids = [r[0] for r in rows(hub.db, "SELECT event_id FROM events")]
        expected = {e["event_id"] for chain in chains.values() for e in chain}
        assert len(ids) == len(expected) == 2400 and set(ids) == expected
        assert rows(hub.db, "SELECT COUNT(*) FROM anomalies") == [(0,)]
    finally:
        log = hub.stop()
    assert "Traceback" not in log and "internal error" not in log


def open_transactions(url: str) -> int:
    """Other connections of this database inside a transaction (the hub mid-batch)."""
    return int(
        rows(
            url,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND xact_start IS NOT NULL AND pid <> pg_backend_pid()",
        )[0][0]
    )


def sqlite_writing(db: Path) -> bool:
    # The hub holds SQLite's write lock exactly while a batch transaction is open.
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_hub_killed_mid_batch_keeps_all_or_nothing(
    engine: str, tmp_path: Path, postgres: PostgresServer
) -> None:
    db = hub_database(engine, tmp_path, postgres)
    hub = Hub(db)
    device = enrolled(hub)
    events = device.events(4000)
    hub.post(f"{API}/events", {"device_id": device.id, "events": events[:1]})
    writing = (
        (lambda: open_transactions(str(db)) > 0)
        if engine == "postgresql"
        else (lambda: sqlite_writing(Path(db)))
    )
    lost: list[BaseException] = []

    def send() -> None:
        try:
            hub.post(f"{API}/events", {"device_id": device.id, "events": events})
        except (OSError, http.client.HTTPException) as err:  # the hub dies under this request
            lost.append(err)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    assert wait_until(writing), "the batch never started"
    hub.kill()
    sender.join(timeout=60)
    assert len(lost) == 1  # the device never got a reply, so it will send the batch again

    hub = Hub(db)  # restarted: the engine rolled the unfinished transaction back
    try:
        seqs = stored_seqs(db, device.id)
        acked = hub.get(f"{API}/devices/{device.id}/ack")[1]["acked_seq"]
        assert seqs in ([1], list(range(1, 4001)))  # one or the other, never a part
        assert acked == len(seqs)
        status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events})
        assert (reply["acked_seq"], reply["accepted"] + reply["replayed"], reply["rejected"]) == (
            4000,
            4000,
            [],
        )
        assert stored_seqs(db, device.id) == list(range(1, 4001))
    finally:
        hub.stop()


def test_a_database_that_cannot_be_opened_fails_in_one_line_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://coordinator:s3cret-word@127.0.0.1:{port}/hub"
    result = CliRunner().invoke(make_cli(), ["hub", "devices", "--db", url])
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith(f"Error: cannot open hub database postgresql://coordinator@127.0.0.1:{port}/hub: ")
    assert "\n" not in line and "s3cret" not in result.output
    other = CliRunner().invoke(make_cli(), ["hub", "serve", "--db", "mysql://root@127.0.0.1/hub"])
    assert other.exit_code == 1
    assert other.output == (
        "Error: unsupported hub database URL scheme 'mysql': use a file path (SQLite) or postgresql://\n"
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_backup_and_restore_of_a_postgresql_hub(tmp_path: Path, postgres: PostgresServer) -> None:
    """The procedure docs/hub.md gives: pg_dump -Fc, pg_restore into an empty database, serve it;
    devices carry on from where the hub stood and nothing is stored twice."""
    url = postgres.new_database()
    hub = Hub(url)
    device = enrolled(hub)
    first = device.events(30)
    assert hub.post(f"{API}/events", {"device_id": device.id, "events": first})[1]["acked_seq"] == 30
    hub.stop()
    dump = tmp_path / "hub.dump"
    subprocess.run([*postgres.dump_tool("pg_dump"), "-Fc", "-f", str(dump), url], check=True, timeout=120)
    restored = postgres.new_database("restored")
    subprocess.run(
        [*postgres.dump_tool("pg_restore"), "--no-owner", "-d", restored, str(dump)], check=True, timeout=120
    )
    hub = Hub(restored)
    try:
        status, again = hub.post(
            f"{API}/events", {"device_id": device.id, "events": [*first, *device.events(5)]}
        )
        assert status == 200 and (again["accepted"], again["replayed"], again["acked_seq"]) == (5, 30, 35)
        assert stored_seqs(restored, device.id) == list(range(1, 36))
    finally:
        hub.stop()


def test_text_postgresql_cannot_store_is_kept_readable(postgres: PostgresServer) -> None:
    """A NUL in a trainee's name is valid JSON; PostgreSQL text cannot hold it. The event is
    stored (its signed body keeps the name exactly, escaped) and reports show U+FFFD."""
    url = postgres.new_database()
    hub = Hub(url)
    try:
        device = enrolled(hub)
        status, reply = hub.post(
            f"{API}/events", {"device_id": device.id, "events": [device.event(trainee="A\x00B")]}
        )
        assert status == 200 and reply["accepted"] == 1
        assert rows(url, "SELECT trainee_name FROM events") == [("A\ufffdB",)]
        body = rows(url, "SELECT body FROM events")[0][0]
        assert "A\\u0000B" in body
    finally:
        hub.stop()
