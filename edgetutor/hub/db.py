"""The hub's storage: every SQL statement the hub runs, behind one small class.

The queries are plain SQL that SQLite and PostgreSQL both accept: `?` placeholders, TEXT/BIGINT/
DOUBLE PRECISION columns, ISO 8601 UTC timestamps stored as TEXT (they sort as text), booleans
stored as 0/1 integers, no upserts, no JSON functions, no `RETURNING`, no date arithmetic. What
differs between engines lives in `Dialect` and nowhere else:

- how to connect and tune the connection (SQLite: WAL, synchronous=FULL, busy timeout);
- how a write transaction starts (SQLite: `BEGIN IMMEDIATE` takes the write lock before the first
  read, so two writers cannot both read the same chain head; PostgreSQL would use `BEGIN` and
  `SELECT ... FOR UPDATE` on the device row, which `Dialect.for_update` supplies);
- the DDL for an auto-numbered key and the placeholder style (`?` is rewritten for `%s` drivers).

Aggregation for reports is done in Python over plain SELECTs (`edgetutor.hub.report`), so it does
not depend on an engine's aggregate or window functions either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgeTutorError

BUSY_TIMEOUT_S = 10.0


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def token_hash(token: str) -> str:
    """Tokens are stored only as this hash: a copy of the database does not enroll anything."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Dialect:
    """SQLite: the default and the only engine implemented. A PostgreSQL dialect overrides these
    four members (see docs/hub.md)."""

    name = "sqlite"
    serial_pk = "INTEGER PRIMARY KEY"
    for_update = ""

    def connect(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly (see begin_write), never
        # implicitly by the driver. check_same_thread=False: HubDB serialises use with a lock.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL fsyncs the WAL at each commit: an acknowledged batch survives a power cut.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def begin_write(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def sql(self, text: str) -> str:
        return text


# -- migrations: append-only, one function per step, each in the transaction that records it ----
Migration = Callable[["HubDB"], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_hub(db: HubDB) -> None:
    db.run(
        """CREATE TABLE tokens (
            hash TEXT PRIMARY KEY, site TEXT NOT NULL, label TEXT, created TEXT NOT NULL,
            used_by TEXT, used_at TEXT)"""
    )
    db.run(
        """CREATE TABLE devices (
            id TEXT PRIMARY KEY, public_key TEXT NOT NULL, site TEXT NOT NULL, label TEXT,
            token_hash TEXT NOT NULL, enrolled TEXT NOT NULL, enrolled_via TEXT NOT NULL,
            acked_seq BIGINT NOT NULL, head TEXT NOT NULL, last_sync TEXT, revoked TEXT)"""
    )
    db.run(
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id),
            seq BIGINT NOT NULL, hash TEXT NOT NULL, prev TEXT NOT NULL, created TEXT NOT NULL,
            received TEXT NOT NULL, via TEXT NOT NULL, body TEXT NOT NULL,
            attempt_id TEXT, trainee_ref TEXT, trainee_name TEXT, pack_id TEXT, pack_version BIGINT,
            case_id TEXT, case_version BIGINT, case_title TEXT, specialty TEXT, competencies TEXT,
            model TEXT, started TEXT, ended TEXT, seconds DOUBLE PRECISION, turns BIGINT,
            score DOUBLE PRECISION, passed INTEGER, scorer_version TEXT,
            UNIQUE (device_id, seq))"""
    )
    db.run("CREATE INDEX events_case ON events (case_id)")
    db.run(
        f"""CREATE TABLE anomalies (
            id {db.dialect.serial_pk}, at TEXT NOT NULL, via TEXT NOT NULL, device_id TEXT,
            kind TEXT NOT NULL, event_id TEXT, seq BIGINT, reason TEXT NOT NULL, detail TEXT)"""
    )
    db.run("CREATE INDEX anomalies_device ON anomalies (device_id)")
    db.run(
        """CREATE TABLE idempotency (
            device_id TEXT NOT NULL, idem_key TEXT NOT NULL, request_hash TEXT NOT NULL,
            response TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (device_id, idem_key))"""
    )
    db.run(
        """CREATE TABLE packs (
            digest TEXT PRIMARY KEY, pack_id TEXT NOT NULL, version BIGINT NOT NULL, title TEXT,
            publisher_key_id TEXT, content_digest TEXT, size BIGINT NOT NULL, published TEXT NOT NULL,
            UNIQUE (pack_id, version))"""
    )


@migration
def m002_practice(db: HubDB) -> None:
    # Results from demo packs (signed with a key anyone has) are practice, never cohort results.
    from ..packs.trust import DEMO_PACK_IDS

    db.run("ALTER TABLE events ADD COLUMN practice INTEGER NOT NULL DEFAULT 0")
    marks = ", ".join("?" for _ in DEMO_PACK_IDS)
    db.run(f"UPDATE events SET practice = 1 WHERE pack_id IN ({marks})", DEMO_PACK_IDS)


@migration
def m003_token_expiry(db: HubDB) -> None:
    # Enrolment tokens expire (TOKEN_DAYS after they were issued unless told otherwise); a token
    # issued before this column existed expires TOKEN_DAYS after its creation.
    db.run("ALTER TABLE tokens ADD COLUMN expires TEXT")


TOKEN_DAYS = 7


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    public_key: str
    site: str
    label: str | None
    enrolled: str
    enrolled_via: str
    acked_seq: int
    head: str
    last_sync: str | None
    revoked: str | None
    token_hash: str


def _device(row: Any) -> Device:
    return Device(
        id=row["id"],
        public_key=row["public_key"],
        site=row["site"],
        label=row["label"],
        enrolled=row["enrolled"],
        enrolled_via=row["enrolled_via"],
        acked_seq=int(row["acked_seq"]),
        head=row["head"],
        last_sync=row["last_sync"],
        revoked=row["revoked"],
        token_hash=row["token_hash"],
    )


EVENT_COLUMNS = (
    "event_id device_id seq hash prev created received via body attempt_id trainee_ref trainee_name "
    "pack_id pack_version case_id case_version case_title specialty competencies model started ended "
    "seconds turns score passed scorer_version practice"
).split()


class HubDB:
    """One connection, used by one thread at a time (the lock), with explicit transactions.

    Every method that writes must be called inside `write()`; methods that only read may be
    called anywhere (each statement sees committed data).
    """

    def __init__(self, path: Path, dialect: Dialect | None = None) -> None:
        self.path = path
        self.dialect = dialect or Dialect()
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self.conn = self.dialect.connect(path)
        except (OSError, sqlite3.Error) as err:
            raise EdgeTutorError(f"cannot open hub database {path}: {err}") from err
        try:
            self._migrate()
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise EdgeTutorError(f"cannot open hub database {path}: {err}") from err

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> HubDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self.conn.execute(self.dialect.sql(sql), tuple(params)).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.conn.execute(self.dialect.sql(sql), tuple(params)).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all. A `write()` inside
        another joins the outer transaction (a USB import enrolls and ingests as one unit)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.dialect.begin_write(self.conn)
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.rollback()
                raise
            finally:
                self._depth = 0
            self.conn.commit()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: several SELECTs see the same committed state."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield
            finally:
                self.conn.rollback()

    def _migrate(self) -> None:
        self.run("CREATE TABLE IF NOT EXISTS hub_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        for name, step in MIGRATIONS:
            with self.write():
                if self.one("SELECT name FROM hub_migrations WHERE name = ?", (name,)):
                    continue
                step(self)
                self.run("INSERT INTO hub_migrations (name, applied) VALUES (?, ?)", (name, now()))

    # -- tokens --------------------------------------------------------------------------------
    def add_token(self, token: str, site: str, label: str | None, days: float = TOKEN_DAYS) -> str:
        """Store the token's hash; return when it expires (ISO UTC)."""
        issued = dt.datetime.now(dt.UTC)
        expires = (issued + dt.timedelta(days=days)).isoformat(timespec="milliseconds")
        self.run(
            "INSERT INTO tokens (hash, site, label, created, expires) VALUES (?, ?, ?, ?, ?)",
            (token_hash(token), site, label, issued.isoformat(timespec="milliseconds"), expires),
        )
        return expires

    def open_tokens(self) -> int:
        """Tokens issued, not used and not expired."""
        return int(
            self.rows("SELECT count(*) AS n FROM tokens WHERE used_by IS NULL AND expires > ?", (now(),))[0][
                "n"
            ]
        )

    def token(self, token: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM tokens WHERE hash = ?", (token_hash(token),))

    def use_token(self, hashed: str, device_id: str) -> None:
        self.run("UPDATE tokens SET used_by = ?, used_at = ? WHERE hash = ?", (device_id, now(), hashed))

    # -- devices -------------------------------------------------------------------------------
    def device(self, device_id: str, lock: bool = False) -> Device | None:
        row = self.one(
            "SELECT * FROM devices WHERE id = ?" + (self.dialect.for_update if lock else ""), (device_id,)
        )
        return _device(row) if row else None

    def devices(self) -> list[Device]:
        return [_device(r) for r in self.rows("SELECT * FROM devices ORDER BY site, enrolled, id")]

    def add_device(
        self,
        device_id: str,
        public_key: str,
        site: str,
        label: str | None,
        hashed_token: str,
        via: str,
        head: str,
    ) -> None:
        self.run(
            "INSERT INTO devices (id, public_key, site, label, token_hash, enrolled, enrolled_via, acked_seq, head)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (device_id, public_key, site, label, hashed_token, now(), via, head),
        )

    def advance(self, device_id: str, acked_seq: int, head: str) -> None:
        self.run(
            "UPDATE devices SET acked_seq = ?, head = ?, last_sync = ? WHERE id = ?",
            (acked_seq, head, now(), device_id),
        )

    def revoke(self, device_id: str) -> bool:
        return (
            self.run("UPDATE devices SET revoked = ? WHERE id = ? AND revoked IS NULL", (now(), device_id))
            > 0
        )

    # -- events --------------------------------------------------------------------------------
    def event_by_id(self, event_id: str) -> dict[str, Any] | None:
        return self.one("SELECT event_id, device_id, seq, hash FROM events WHERE event_id = ?", (event_id,))

    def event_by_seq(self, device_id: str, seq: int) -> dict[str, Any] | None:
        return self.one(
            "SELECT event_id, device_id, seq, hash FROM events WHERE device_id = ? AND seq = ?",
            (device_id, seq),
        )

    def add_event(self, values: dict[str, Any]) -> None:
        names = ", ".join(EVENT_COLUMNS)
        marks = ", ".join("?" for _ in EVENT_COLUMNS)
        self.run(f"INSERT INTO events ({names}) VALUES ({marks})", [values.get(c) for c in EVENT_COLUMNS])

    def count_events(self, device_id: str | None = None) -> int:
        if device_id is None:
            row = self.one("SELECT COUNT(*) AS n FROM events")
        else:
            row = self.one("SELECT COUNT(*) AS n FROM events WHERE device_id = ?", (device_id,))
        return int(row["n"]) if row else 0

    def practice_count(self) -> int:
        row = self.one("SELECT COUNT(*) AS n FROM events WHERE practice = 1")
        return int(row["n"]) if row else 0

    def scored_events(self) -> list[dict[str, Any]]:
        """The columns reports need, joined with the device's site and label."""
        return self.rows(
            "SELECT e.event_id, e.device_id, d.site, d.label, e.attempt_id, e.trainee_ref, e.trainee_name,"
            " e.case_id, e.case_title, e.specialty, e.competencies, e.started, e.ended, e.seconds, e.turns,"
            " e.score, e.passed, e.created, e.received, e.seq, e.practice"
            " FROM events e JOIN devices d ON d.id = e.device_id ORDER BY e.device_id, e.seq"
        )

    # -- anomalies -----------------------------------------------------------------------------
    def add_anomaly(
        self,
        via: str,
        device_id: str | None,
        kind: str,
        reason: str,
        event_id: str | None = None,
        seq: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.run(
            "INSERT INTO anomalies (at, via, device_id, kind, event_id, seq, reason, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (now(), via, device_id, kind, event_id, seq, reason, detail),
        )

    def anomalies(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, at, via, device_id, kind, event_id, seq, reason, detail FROM anomalies"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    def anomaly_counts(self) -> dict[str, int]:
        rows = self.rows(
            "SELECT device_id, COUNT(*) AS n FROM anomalies WHERE device_id IS NOT NULL GROUP BY device_id"
        )
        return {r["device_id"]: int(r["n"]) for r in rows}

    # -- idempotency keys ----------------------------------------------------------------------
    def idempotent(self, device_id: str, key: str) -> dict[str, Any] | None:
        return self.one(
            "SELECT request_hash, response FROM idempotency WHERE device_id = ? AND idem_key = ?",
            (device_id, key),
        )

    def remember(self, device_id: str, key: str, request_hash: str, response: str) -> None:
        self.run(
            "INSERT INTO idempotency (device_id, idem_key, request_hash, response, created) VALUES (?, ?, ?, ?, ?)",
            (device_id, key, request_hash, response, now()),
        )

    def prune_idempotency(self, days: int) -> int:
        """Forget idempotency records older than `days`; return how many. A batch replayed after
        that is still answered right: the event chain marks events it holds as duplicates."""
        cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat(timespec="milliseconds")
        with self.write():
            before = int(self.rows("SELECT count(*) AS n FROM idempotency")[0]["n"])
            self.run("DELETE FROM idempotency WHERE created < ?", (cutoff,))
            after = int(self.rows("SELECT count(*) AS n FROM idempotency")[0]["n"])
        return before - after

    # -- pack catalogue ------------------------------------------------------------------------
    def pack(self, digest: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM packs WHERE digest = ?", (digest,))

    def pack_version(self, pack_id: str, version: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM packs WHERE pack_id = ? AND version = ?", (pack_id, version))

    def add_pack(self, row: dict[str, Any]) -> None:
        self.run(
            "INSERT INTO packs (digest, pack_id, version, title, publisher_key_id, content_digest, size, published)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["digest"],
                row["pack_id"],
                row["version"],
                row["title"],
                row["publisher_key_id"],
                row["content_digest"],
                row["size"],
                now(),
            ),
        )

    def packs(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM packs ORDER BY pack_id, version")
