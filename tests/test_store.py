"""The local database: migrations, durability of every turn, crash recovery and refusals."""

from __future__ import annotations

import datetime as dt
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from edgetutor.errors import EdgeTutorError
from edgetutor.store import Attempt, Store, open_db
from edgetutor.store import migrations as mig

ALL = [fn.__name__ for fn in mig.MIGRATIONS]


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with open_db() as s:
        yield s


def start(store: Store, name: str = "Ama", case_id: str = "malaria") -> Attempt:
    return store.start_attempt(store.trainee(name), "demo", 3, "sha256:abc", case_id, 2, "smollm2-135m")


def count(path: Path, sql: str, params: tuple[object, ...] = ()) -> int:
    """Run a count on a separate, fresh connection: sees only what was committed."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(out.stdout)


# -- opening and migrations -----------------------------------------------------------------------


def test_importing_store_creates_nothing(home: Path) -> None:
    env = {**os.environ, "EDGETUTOR_HOME": str(home)}
    code = (
        "import sys, edgetutor.store, edgetutor.store.db, edgetutor.store.migrations\n"
        "print('sqlite_utils' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    assert not home.exists()
    # sqlite-utils (and the numpy it imports) load only when a database is opened
    assert out.stdout.strip() == "False"


def test_fresh_open_applies_every_migration(home: Path) -> None:
    with open_db() as store:
        assert store.path == home / "edgetutor.db"
        assert list(store.migrated) == ALL
        assert mig.applied(store.db) == ALL
        assert {"trainees", "attempts", "turns", "_migrations"} <= set(store.db.table_names())
    assert (home / "edgetutor.db").is_file()


def test_second_open_applies_nothing(home: Path) -> None:
    open_db().close()
    first = count(home / "edgetutor.db", "SELECT count(*) FROM _migrations")
    stamps = (
        sqlite3.connect(home / "edgetutor.db").execute("SELECT name, applied FROM _migrations").fetchall()
    )
    with open_db() as store:
        assert store.migrated == ()
    assert first == len(ALL)
    again = sqlite3.connect(home / "edgetutor.db").execute("SELECT name, applied FROM _migrations").fetchall()
    assert again == stamps


def test_old_database_with_only_m001_is_upgraded(home: Path) -> None:
    home.mkdir()
    path = home / "edgetutor.db"
    old = Database(path)
    assert mig.migrate(old, stop_after="m001_trainees_and_attempts") == ["m001_trainees_and_attempts"]
    old.execute("INSERT INTO trainees (name, created) VALUES ('Kofi', '2025-01-02T03:04:05.000+00:00')")
    old.execute(
        "INSERT INTO attempts (id, trainee_id, pack_id, pack_version, pack_digest, case_id, case_version,"
        " model, started, status) VALUES ('old1', 1, 'demo', 1, 'd', 'tb', 1, NULL,"
        " '2025-01-02T03:05:00.000+00:00', 'finished')"
    )
    assert "turns" not in old.table_names()
    old.close()

    with open_db(path) as store:
        assert list(store.migrated) == ALL[1:]
        assert mig.applied(store.db) == ALL
        kept = store.attempt("old1")
        assert (kept.status, kept.pid, kept.host, kept.diagnosis) == ("finished", None, None, None)
        assert store.trainee("kofi").id == 1
        # the new columns and tables are usable on the upgraded file
        new = start(store, "Kofi")
        store.record_turn(new.id, "question", "Any cough?", ["cough"], "Yes, for weeks.", "model")
        store.set_answer(new.id, diagnosis="TB")
        assert store.attempt(new.id).diagnosis == "TB"
        assert "idx_attempts_status" in {i.name for i in store.db.table("attempts").indexes}


def test_concurrent_first_opens_apply_each_migration_once(home: Path) -> None:
    env = {**os.environ, "EDGETUTOR_HOME": str(home)}
    code = "from edgetutor.store import open_db; s = open_db(); print(len(s.migrated)); s.close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert sum(int(o) for o in outs) == len(ALL)  # each step applied by exactly one process
    assert count(home / "edgetutor.db", "SELECT count(*) FROM _migrations") == len(ALL)


def test_wal_foreign_keys_and_busy_timeout(store: Store) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    # WAL is a property of the file: a plain connection sees it too
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        store.db.execute(
            "INSERT INTO turns (attempt_id, seq, kind, utterance, reply, source, created)"
            " VALUES ('nope', 1, 'note', '', '', 'system', 'x')"
        )


def test_garbage_file_is_refused_untouched(home: Path) -> None:
    home.mkdir()
    path = home / "edgetutor.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EdgeTutorError, match=r"cannot open database .*edgetutor\.db: file is not a database"):
        open_db(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_migration_names_are_checked() -> None:
    before = list(mig.MIGRATIONS)

    def bad_name(db: Database) -> None: ...

    def m000_too_early(db: Database) -> None: ...

    with pytest.raises(ValueError, match="mNNN_description"):
        mig.migration(bad_name)
    with pytest.raises(ValueError, match="must come after"):
        mig.migration(m000_too_early)
    assert mig.MIGRATIONS == before
    with pytest.raises(ValueError, match="unknown migration"):
        mig.migrate(Database(memory=True), stop_after="m999_nope")


# -- trainees ---------------------------------------------------------------------------------


def test_trainee_names_are_case_insensitive_and_stripped(store: Store) -> None:
    first = store.trainee("  Ama Mensah ")
    assert first.name == "Ama Mensah"
    assert store.trainee("ama mensah") == first
    assert store.trainee("AMA MENSAH\t") == first
    assert [t.name for t in store.trainees()] == ["Ama Mensah"]
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        store.db.execute("INSERT INTO trainees (name, created) VALUES ('aMa MeNsAh', 'x')")


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_trainee_name_is_refused(store: Store, name: str) -> None:
    with pytest.raises(EdgeTutorError, match="trainee name must not be empty"):
        store.trainee(name)
    assert count(store.path, "SELECT count(*) FROM trainees") == 0


# -- attempts and turns ---------------------------------------------------------------------------


def test_start_attempt_records_owner(store: Store) -> None:
    attempt = start(store)
    assert len(attempt.id) == 32 and int(attempt.id, 16) >= 0
    assert (attempt.status, attempt.pid, attempt.host) == ("in_progress", os.getpid(), socket.gethostname())
    assert (attempt.pack_id, attempt.pack_version, attempt.case_id, attempt.case_version) == (
        "demo",
        3,
        "malaria",
        2,
    )
    assert attempt.ended is None and attempt.started.tzinfo is not None


def test_turns_get_seq_and_are_committed_at_once(store: Store) -> None:
    attempt = start(store)
    for n in range(1, 6):
        turn = store.record_turn(
            attempt.id,
            "question",
            f"q{n}",
            ["fever", "chills"],
            f"r{n}",
            "model",
            {"ok": True},
            {"total_ms": 12.5},
        )
        assert turn.seq == n
        # a separate connection sees the row before anything else happens: it was committed
        assert count(store.path, "SELECT count(*) FROM turns WHERE attempt_id = ?", (attempt.id,)) == n
    turns = store.turns(attempt.id)
    assert [t.seq for t in turns] == [1, 2, 3, 4, 5]
    assert turns[0].matched == ["fever", "chills"]
    assert turns[0].guard == {"ok": True} and turns[0].timings == {"total_ms": 12.5}
    # seq is per attempt
    other = start(store, "Kofi")
    assert store.record_turn(other.id, "opening", "", [], "Hello doctor.", "authored").seq == 1


def test_record_turn_from_a_worker_thread(store: Store) -> None:
    attempt = start(store)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.record_turn(attempt.id, "question", "q", [], "r", "model")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [t.seq for t in store.turns(attempt.id)] == list(range(1, 9))


@pytest.mark.parametrize(
    ("column", "value"), [("kind", "shout"), ("source", "internet"), ("kind", "Question"), ("source", None)]
)
def test_check_constraints_reject_bad_kind_and_source(store: Store, column: str, value: str | None) -> None:
    attempt = start(store)
    values = {"kind": "question", "source": "model", column: value}
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK|NOT NULL"):
        conn.execute(
            "INSERT INTO turns (attempt_id, seq, kind, utterance, reply, source, created) VALUES (?, 1, ?, '', '', ?, 'x')",
            (attempt.id, values["kind"], values["source"]),
        )
    conn.close()
    with pytest.raises(sqlite3.IntegrityError):
        store.record_turn(attempt.id, values["kind"], "q", [], "r", values["source"])  # type: ignore[arg-type]
    assert count(store.path, "SELECT count(*) FROM turns") == 0
    assert store.record_turn(attempt.id, "question", "q", [], "r", "model").seq == 1


def test_bad_status_is_rejected(store: Store) -> None:
    attempt = start(store)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        store.db.execute("UPDATE attempts SET status = 'paused' WHERE id = ?", [attempt.id])
    assert store.attempt(attempt.id).status == "in_progress"


def test_answer_and_finish(store: Store) -> None:
    attempt = start(store)
    store.set_answer(attempt.id, diagnosis="Uncomplicated falciparum malaria")
    store.set_answer(attempt.id, plan="Artemether-lumefantrine")
    done = store.finish_attempt(attempt.id)
    assert (done.status, done.diagnosis, done.plan) == (
        "finished",
        "Uncomplicated falciparum malaria",
        "Artemether-lumefantrine",
    )
    assert done.ended is not None and done.ended >= done.started


def test_finished_attempt_refuses_writes(store: Store) -> None:
    attempt = start(store)
    store.record_turn(attempt.id, "question", "q", [], "r", "model")
    store.finish_attempt(attempt.id)
    before = count(store.path, "SELECT count(*) FROM turns")
    with pytest.raises(EdgeTutorError, match=f"cannot record a turn: attempt {attempt.id} is finished"):
        store.record_turn(attempt.id, "question", "again", [], "r", "model")
    with pytest.raises(EdgeTutorError, match="cannot set the answer: .* is finished"):
        store.set_answer(attempt.id, diagnosis="changed")
    with pytest.raises(EdgeTutorError, match="cannot finish: .* is finished"):
        store.finish_attempt(attempt.id)
    with pytest.raises(EdgeTutorError, match="cannot resume attempt .*: it is finished"):
        store.resume(attempt.id)
    assert count(store.path, "SELECT count(*) FROM turns") == before
    assert store.attempt(attempt.id).diagnosis is None


def test_unknown_attempt_is_refused(store: Store) -> None:
    for call in (
        lambda: store.attempt("nope"),
        lambda: store.record_turn("nope", "note", "", [], "", "system"),
        lambda: store.set_answer("nope", plan="x"),
        lambda: store.finish_attempt("nope"),
        lambda: store.resume("nope"),
    ):
        with pytest.raises(EdgeTutorError, match="no attempt 'nope'"):
            call()
    assert count(store.path, "SELECT count(*) FROM turns") == 0


def test_listing_attempts(store: Store) -> None:
    a1 = start(store, "Ama", "malaria")
    a2 = start(store, "Kofi", "malaria")
    a3 = start(store, "ama", "tb")
    store.finish_attempt(a2.id)
    ama = store.trainee("AMA")
    assert [a.id for a in store.attempts()] == [a1.id, a2.id, a3.id]
    assert [a.id for a in store.attempts(trainee=ama)] == [a1.id, a3.id]
    assert [a.id for a in store.attempts(case_id="malaria")] == [a1.id, a2.id]
    assert [a.id for a in store.attempts(trainee=ama, case_id="tb")] == [a3.id]
    assert [a.id for a in store.open_attempts()] == [a1.id, a3.id]
    assert [a.id for a in store.open_attempts(case_id="malaria")] == [a1.id]
    assert [a.id for a in store.open_attempts(trainee=store.trainee("kofi"))] == []


# -- crash recovery -------------------------------------------------------------------------------


def test_stale_attempts_are_marked_interrupted(store: Store) -> None:
    mine = start(store)
    dead = start(store)
    live_other = start(store)
    far_old = start(store)
    far_recent = start(store)
    unowned_old = start(store)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=13)
    db = store.db
    db.execute("UPDATE attempts SET pid = ? WHERE id = ?", [dead_pid(), dead.id])
    db.execute("UPDATE attempts SET pid = ? WHERE id = ?", [os.getppid(), live_other.id])
    db.execute(
        "UPDATE attempts SET host = 'ward-pc', started = ? WHERE id = ?", [old.isoformat(), far_old.id]
    )
    db.execute("UPDATE attempts SET host = 'ward-pc' WHERE id = ?", [far_recent.id])
    db.execute(
        "UPDATE attempts SET pid = NULL, host = NULL, started = ? WHERE id = ?",
        [old.isoformat(), unowned_old.id],
    )
    # an old attempt on another machine with a recent turn is still considered active
    busy = start(store)
    store.record_turn(busy.id, "question", "q", [], "r", "model")
    db.execute("UPDATE attempts SET host = 'ward-pc', started = ? WHERE id = ?", [old.isoformat(), busy.id])

    assert sorted(store.mark_interrupted_stale()) == sorted([dead.id, far_old.id, unowned_old.id])
    status = {a.id: a.status for a in store.attempts()}
    assert status[dead.id] == status[far_old.id] == status[unowned_old.id] == "interrupted"
    assert {status[a.id] for a in (mine, live_other, far_recent, busy)} == {"in_progress"}
    assert store.mark_interrupted_stale() == []
    with pytest.raises(EdgeTutorError, match="is interrupted \\(resume it first\\)"):
        store.record_turn(dead.id, "question", "q", [], "r", "model")


def test_resume_refuses_an_attempt_open_in_a_live_process(store: Store) -> None:
    attempt = start(store)
    store.db.execute("UPDATE attempts SET pid = ? WHERE id = ?", [os.getppid(), attempt.id])
    with pytest.raises(EdgeTutorError, match=f"open in another EdgeTutor process \\(pid {os.getppid()}\\)"):
        store.resume(attempt.id)
    assert store.attempt(attempt.id).pid == os.getppid()
    # our own attempt, or one whose process died without being marked yet, can be taken over
    store.db.execute("UPDATE attempts SET pid = ? WHERE id = ?", [dead_pid(), attempt.id])
    assert store.resume(attempt.id).pid == os.getpid()
    assert store.resume(attempt.id).status == "in_progress"


CHILD = """
import time
from edgetutor.store import open_db
store = open_db()
attempt = store.start_attempt(store.trainee("Ama"), "demo", 1, "d", "malaria", 1, None)
for n in range(1, 4):
    store.record_turn(attempt.id, "question", f"q{n}", ["fever"], f"r{n}", "model", None, {"ms": n})
print("ready", attempt.id, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_turns_survive_sigkill_and_the_attempt_resumes(home: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        # one line, so the select() below cannot miss a second one already sitting in our buffer
        assert select.select([child.stdout], [], [], 30)[0], "child never got ready"
        word, attempt_id = child.stdout.readline().split()
        assert word == "ready"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    with open_db() as store:
        assert store.migrated == ()
        turns = store.turns(attempt_id)
        assert [(t.seq, t.utterance, t.reply, t.timings) for t in turns] == [
            (n, f"q{n}", f"r{n}", {"ms": n}) for n in (1, 2, 3)
        ]
        attempt = store.attempt(attempt_id)
        assert (attempt.status, attempt.pid) == ("in_progress", child.pid)
        assert [a.id for a in store.open_attempts(case_id="malaria")] == [attempt_id]

        assert store.mark_interrupted_stale() == [attempt_id]
        assert store.attempt(attempt_id).status == "interrupted"
        assert store.open_attempts() == []

        resumed = store.resume(attempt_id)
        assert (resumed.status, resumed.pid, resumed.host) == (
            "in_progress",
            os.getpid(),
            socket.gethostname(),
        )
        assert store.record_turn(attempt_id, "diagnose", "Malaria", [], "", "system").seq == 4
