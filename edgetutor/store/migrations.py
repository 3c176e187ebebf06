"""Schema migrations for the local database: run on every open, append-only, one function per step.

Each `@migration` function receives the `sqlite_utils.Database` inside an open transaction and is
recorded in `_migrations` in that same transaction, so a crash mid-migration leaves the step pending
rather than half-applied. Rules for adding one:

- Never edit, rename or reorder a released migration: add `mNNN_...` at the end instead.
- Do not run VACUUM or change `PRAGMA foreign_keys` here: both are no-ops or errors inside a
  transaction. A step that must rebuild a table (sqlite-utils `transform`) needs its own handling.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

MigrationFn = Callable[["Database"], None]

MIGRATIONS: list[MigrationFn] = []
_NAME = re.compile(r"^m(\d{3})_[a-z0-9_]+$")


def migration(fn: MigrationFn) -> MigrationFn:
    """Register `fn` as the next migration step (its name must be `mNNN_...`, in order).

    Raises ValueError when the name is malformed or not after the last registered step, so a
    misplaced migration fails at import in every test run instead of corrupting a user's database.
    """
    match = _NAME.match(fn.__name__)
    if not match:
        raise ValueError(f"migration {fn.__name__!r} must be named mNNN_description")
    if MIGRATIONS and fn.__name__ <= MIGRATIONS[-1].__name__:
        raise ValueError(f"migration {fn.__name__!r} must come after {MIGRATIONS[-1].__name__!r}")
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_trainees_and_attempts(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE trainees (
            id INTEGER PRIMARY KEY,
            name TEXT UNIQUE NOT NULL COLLATE NOCASE,
            created TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE attempts (
            id TEXT PRIMARY KEY,
            trainee_id INTEGER NOT NULL REFERENCES trainees(id),
            pack_id TEXT NOT NULL,
            pack_version INTEGER NOT NULL,
            pack_digest TEXT NOT NULL,
            case_id TEXT NOT NULL,
            case_version INTEGER NOT NULL,
            model TEXT,
            started TEXT NOT NULL,
            ended TEXT,
            status TEXT NOT NULL DEFAULT 'in_progress'
                CHECK (status IN ('in_progress', 'finished', 'interrupted'))
        )
        """
    )


@migration
def m002_turns(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            attempt_id TEXT NOT NULL REFERENCES attempts(id),
            seq INTEGER NOT NULL CHECK (seq >= 1),
            kind TEXT NOT NULL CHECK (kind IN (
                'opening', 'question', 'examine', 'order', 'diagnose', 'plan', 'end', 'note')),
            utterance TEXT NOT NULL,
            matched TEXT NOT NULL DEFAULT '[]',
            reply TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('model', 'authored', 'lookup', 'system')),
            guard TEXT,
            timings TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            UNIQUE (attempt_id, seq)
        )
        """
    )


@migration
def m003_attempt_owner(db: Database) -> None:
    # Which process on which machine is playing the attempt: lets a restarted app tell a crashed
    # session (interrupted, resumable) from one still open in another window.
    attempts = db.table("attempts")
    attempts.add_column("pid", int)
    attempts.add_column("host", str)


@migration
def m004_attempt_answers(db: Database) -> None:
    attempts = db.table("attempts")
    attempts.add_column("diagnosis", str)
    attempts.add_column("plan", str)


@migration
def m005_indexes(db: Database) -> None:
    # turns(attempt_id, seq) and trainees(name) are already indexed by their UNIQUE constraints.
    attempts = db.table("attempts")
    attempts.create_index(["trainee_id", "started"], index_name="idx_attempts_trainee")
    attempts.create_index(["case_id", "started"], index_name="idx_attempts_case")
    attempts.create_index(["status"], index_name="idx_attempts_status")


@migration
def m006_scores(db: Database) -> None:
    # One score per finished attempt, written in the same transaction that finishes it. It keeps
    # what is needed to recompute and audit it: the pack's id, version and digest and the scorer.
    db.execute(
        """
        CREATE TABLE scores (
            attempt_id TEXT PRIMARY KEY REFERENCES attempts(id),
            total REAL NOT NULL CHECK (total >= 0 AND total <= 1),
            passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
            pack_id TEXT NOT NULL,
            pack_version INTEGER NOT NULL,
            pack_digest TEXT NOT NULL,
            scorer_version TEXT NOT NULL,
            detail TEXT NOT NULL,
            created TEXT NOT NULL
        )
        """
    )


@migration
def m007_result_events(db: Database) -> None:
    # Result sync (edgetutor.sync). `events` is the device's append-only, hash-chained log of
    # signed results, one per scored attempt, `seq` 1, 2, ... with no gaps; `body` is the exact
    # JSON sent. The triggers make "append-only" a property of the file, not of our code.
    # Attempts scored before this step get their events when the database is next opened with
    # the device key available (Store.seal_backlog), oldest first.
    db.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY CHECK (seq >= 1),
            event_id TEXT UNIQUE NOT NULL,
            attempt_id TEXT UNIQUE NOT NULL REFERENCES attempts(id),
            device_id TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT UNIQUE NOT NULL,
            created TEXT NOT NULL,
            body TEXT NOT NULL
        )
        """
    )
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER events_no_{verb.lower()} BEFORE {verb} ON events"
            " BEGIN SELECT RAISE(ABORT, 'result events are append-only'); END"
        )
    # One row per event: 'pending' until the hub acknowledges it, then 'sent' (only a hub ack
    # does that; exporting a USB bundle does not). tries/last_error say why it is still pending.
    db.execute(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY REFERENCES events(seq),
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent')),
            sent_at TEXT,
            tries INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_outbox_state ON outbox (state, seq)")
    # One row: the identity this database's results are signed with, the hub, the enrollment
    # and the last sync. `enroll_token` is kept until an enrollment succeeds (also for bundles).
    db.execute(
        """
        CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            device_id TEXT,
            hub_url TEXT,
            site TEXT,
            enrolled INTEGER NOT NULL DEFAULT 0 CHECK (enrolled IN (0, 1)),
            enroll_token TEXT,
            acked_seq INTEGER NOT NULL DEFAULT 0,
            last_sync TEXT,
            last_error TEXT
        )
        """
    )
    db.execute("INSERT INTO sync_state (id) VALUES (1)")


@migration
def m008_new_device_key(db: Database) -> None:
    # A device given a new key (`edgetutor sync --new-key`): `continues` is the device id whose
    # chain the new key carries on (sent with its enrollment), `rotated_with` the SHA-256 of the
    # token it was made for, so the same token cannot make a second new key.
    db.execute("ALTER TABLE sync_state ADD COLUMN continues TEXT")
    db.execute("ALTER TABLE sync_state ADD COLUMN rotated_with TEXT")


def applied(db: Database) -> list[str]:
    """Names of the migrations recorded in `db`, in the order they were applied."""
    if not db.table("_migrations").exists():
        return []
    return [row["name"] for row in db.query("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(db: Database, stop_after: str | None = None) -> list[str]:
    """Apply every pending migration (or those up to and including `stop_after`); return their names.

    Each step runs in its own `BEGIN IMMEDIATE` transaction that re-checks `_migrations`, so two
    processes opening a fresh database at once apply each step exactly once. Raises ValueError for
    an unknown `stop_after`; any error from a step propagates after rolling that step back.
    """
    names = [fn.__name__ for fn in MIGRATIONS]
    if stop_after is not None and stop_after not in names:
        raise ValueError(f"unknown migration {stop_after!r}")
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    done = set(applied(db))
    ran: list[str] = []
    for fn in MIGRATIONS:
        name = fn.__name__
        if name not in done:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone() is None:
                    fn(db)
                    db.execute(
                        "INSERT INTO _migrations (name, applied) VALUES (?, ?)",
                        [name, dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")],
                    )
                    ran.append(name)
            except BaseException:
                db.rollback()
                raise
            db.commit()
        if name == stop_after:
            break
    return ran
