"""The hub's storage: every SQL statement the hub runs, behind one small class.

The queries are plain SQL that SQLite and PostgreSQL both accept: `?` placeholders, TEXT/BIGINT/
DOUBLE PRECISION columns, ISO 8601 UTC timestamps stored as TEXT (they sort as text), booleans
stored as 0/1 integers, no upserts, no JSON functions, no `RETURNING`, no date arithmetic. What
differs between engines lives in `edgetutor.hub.engines` and nowhere else, so both engines run
the same migrations and the same ingest code.

Aggregation for reports is done in Python over plain SELECTs (`edgetutor.hub.report`), so it does
not depend on an engine's aggregate or window functions either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import EdgeTutorError
from .engines import Dialect, dialect_for

T = TypeVar("T")
# A transaction that lost a race (two devices' batches inserting the same event id, two
# enrollments of one device) is run again from the start; it then sees the winner's rows.
RACE_RETRIES = 5


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


# How long an enrollment token stays valid unless `hub enroll --valid-days` says otherwise: long
# enough to carry it to a remote site, short enough that a lost slip of paper soon means nothing.
TOKEN_DAYS = 7.0


def later(days: float) -> str:
    """The timestamp `days` from now, in the same text form as `now()` (they compare as text)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(timespec="milliseconds")


def lifetime(days: float) -> tuple[str, str]:
    """(now, `days` from now) from one reading of the clock: a 7-day token lasts exactly 7 days."""
    start = dt.datetime.now(dt.UTC)
    end = start + dt.timedelta(days=days)
    return start.isoformat(timespec="milliseconds"), end.isoformat(timespec="milliseconds")


def token_hash(token: str) -> str:
    """Tokens are stored only as this hash: a copy of the database does not enroll anything."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
def m003_credentials(db: HubDB) -> None:
    # Enrollment tokens expire. Tokens issued before this step never did: the unused ones get
    # the default lifetime from the upgrade on, so none stays valid for ever.
    db.run("ALTER TABLE tokens ADD COLUMN expires TEXT")
    db.run("ALTER TABLE tokens ADD COLUMN replaces TEXT")
    db.run("ALTER TABLE devices ADD COLUMN revoked_reason TEXT")
    db.run("ALTER TABLE devices ADD COLUMN replaces TEXT")
    db.run("UPDATE tokens SET expires = ? WHERE used_by IS NULL", (later(TOKEN_DAYS),))


@migration
def m004_accounts(db: HubDB) -> None:
    # Coordinator accounts (edgetutor/hub/accounts.py): which district each site is in, the
    # people who read the dashboard, their sign-in sessions, and what each of them looked at.
    db.run("CREATE TABLE sites (site TEXT PRIMARY KEY, district TEXT NOT NULL, assigned TEXT NOT NULL)")
    db.run(
        """CREATE TABLE users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, scope TEXT, password TEXT NOT NULL,
            created TEXT NOT NULL, changed TEXT NOT NULL)"""
    )
    db.run(
        """CREATE TABLE sessions (
            hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL, created TEXT NOT NULL,
            seen TEXT NOT NULL, expires TEXT NOT NULL, address TEXT)"""
    )
    db.run("CREATE INDEX sessions_user ON sessions (user_name)")
    db.run(
        f"""CREATE TABLE audit (
            id {db.dialect.serial_pk}, at TEXT NOT NULL, user_name TEXT, address TEXT,
            action TEXT NOT NULL, detail TEXT)"""
    )
    db.run("CREATE INDEX audit_user ON audit (user_name)")


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
    replaces: str | None = None  # the device whose key this one replaced (hub rotate)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def _rollback(raw: Any) -> None:
    try:
        raw.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - a broken connection has no transaction left to end
        pass


def _within(column: str, sites: Sequence[str] | None) -> tuple[str, list[Any]]:
    """A WHERE condition keeping rows whose `column` is one of `sites` (None: every row; an
    empty list: none), and its parameters."""
    if sites is None:
        return "1 = 1", []
    if not sites:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' for _ in sites)})", list(sites)


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
        replaces=row["replaces"],
    )


EVENT_COLUMNS = (
    "event_id device_id seq hash prev created received via body attempt_id trainee_ref trainee_name "
    "pack_id pack_version case_id case_version case_title specialty competencies model started ended "
    "seconds turns score passed scorer_version practice"
).split()


class _Conn:
    """One driver connection, the lock that serialises its use, and its transaction depth."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.lock = threading.RLock()
        self.depth = 0


class HubDB:
    """The hub database, SQLite or PostgreSQL (`target`: a file path or a postgresql:// URL).

    SQLite: one connection shared by the process's threads under a lock (one writer at a time
    is all SQLite allows). PostgreSQL: one connection per thread, so batches from different
    devices are verified and written side by side. Every method that writes must be called
    inside `write()`; methods that only read may be called anywhere (each statement sees
    committed data).
    """

    def __init__(self, target: str | Path, dialect: Dialect | None = None) -> None:
        self.dialect = dialect or dialect_for(target)
        self.target = self.dialect.describe()  # printable: never a password
        self._local = threading.local()
        self._all: list[_Conn] = []
        self._all_lock = threading.Lock()
        self._shared: _Conn | None = None
        failures: tuple[type[BaseException], ...] = (OSError, *self.dialect.errors())
        try:
            first = self._conn()
        except failures as err:
            raise EdgeTutorError(f"cannot open hub database {self.target}: {_one_line(err)}") from err
        try:
            self._migrate()
        except self.dialect.errors() as err:
            first.raw.close()
            raise EdgeTutorError(f"cannot open hub database {self.target}: {_one_line(err)}") from err

    @property
    def path(self) -> Path:
        """The SQLite file (the pack catalogue and tests look beside it)."""
        return Path(self.target)

    def pack_dir(self) -> Path:
        return self.dialect.pack_dir()

    def _conn(self) -> _Conn:
        if self.dialect.shared_connection:
            if self._shared is None:
                self._shared = _Conn(self.dialect.connect())
                self._all.append(self._shared)
            return self._shared
        conn: _Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed:
            conn = _Conn(self.dialect.connect())
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with conn.lock:
                    conn.raw.close()
            self._all.clear()

    def __enter__(self) -> HubDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        conn = self._conn()
        with conn.lock:
            return int(conn.raw.execute(self.dialect.sql(sql), self.dialect.params(params)).rowcount)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Many rows into one table in one go (the engine's fastest way: engines.py)."""
        if not rows:
            return
        conn = self._conn()
        with conn.lock:
            self.dialect.insert_rows(conn.raw, table, columns, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        conn = self._conn()
        with conn.lock:
            return [
                dict(r)
                for r in conn.raw.execute(self.dialect.sql(sql), self.dialect.params(params)).fetchall()
            ]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all. A `write()` inside
        another joins the outer transaction (a USB import enrolls and ingests as one unit)."""
        conn = self._conn()
        with conn.lock:
            if conn.depth:
                conn.depth += 1
                try:
                    yield
                finally:
                    conn.depth -= 1
                return
            self.dialect.begin_write(conn.raw)
            conn.depth = 1
            try:
                yield
            except BaseException:
                _rollback(conn.raw)
                raise
            finally:
                conn.depth = 0
            conn.raw.execute("COMMIT")

    def in_transaction(self) -> bool:
        return self._conn().depth > 0

    def retrying(self, work: Callable[[], T]) -> T:
        """Run `work` (which opens its own `write()`), again if it lost a race to another writer
        (see RACE_RETRIES); inside an outer transaction it runs once (the outer one decides)."""
        if self.in_transaction():
            return work()
        for attempt in range(RACE_RETRIES):
            try:
                return work()
            except self.dialect.errors() as err:
                if not self.dialect.is_race(err) or attempt == RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: several SELECTs see the same committed state."""
        conn = self._conn()
        with conn.lock:
            self.dialect.begin_read(conn.raw)
            try:
                yield
            finally:
                _rollback(conn.raw)

    def _migrate(self) -> None:
        with self.write():
            self.dialect.lock_migrations(self._conn().raw)
            self.run(
                "CREATE TABLE IF NOT EXISTS hub_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)"
            )
        for name, step in MIGRATIONS:
            with self.write():
                # Two hub processes starting on one PostgreSQL database: the second waits here
                # for the first's step, then finds it recorded and skips it.
                self.dialect.lock_migrations(self._conn().raw)
                if self.one("SELECT name FROM hub_migrations WHERE name = ?", (name,)):
                    continue
                step(self)
                self.run("INSERT INTO hub_migrations (name, applied) VALUES (?, ?)", (name, now()))

    def migrations(self) -> list[str]:
        return [r["name"] for r in self.rows("SELECT name FROM hub_migrations ORDER BY name")]

    # -- tokens --------------------------------------------------------------------------------
    def add_token(
        self, token: str, site: str, label: str | None, valid_days: float, replaces: str | None = None
    ) -> None:
        created, expires = lifetime(valid_days)
        self.run(
            "INSERT INTO tokens (hash, site, label, created, expires, replaces) VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash(token), site, label, created, expires, replaces),
        )

    def open_tokens(self, sites: Sequence[str] | None = None) -> int:
        """Tokens issued, not used and not expired (at `sites` only, unless None)."""
        where, params = _within("site", sites)
        return int(
            self.rows(
                f"SELECT count(*) AS n FROM tokens WHERE used_by IS NULL AND expires > ? AND {where}",
                (now(), *params),
            )[0]["n"]
        )

    def token(self, token: str, lock: bool = False) -> dict[str, Any] | None:
        """The token's row; `lock` holds it until the transaction ends (two enrollments racing
        for one token on PostgreSQL: the second waits, then sees it used)."""
        return self.one(
            "SELECT * FROM tokens WHERE hash = ?" + (self.dialect.for_update if lock else ""),
            (token_hash(token),),
        )

    def use_token(self, hashed: str, device_id: str) -> None:
        self.run("UPDATE tokens SET used_by = ?, used_at = ? WHERE hash = ?", (device_id, now(), hashed))

    # -- devices -------------------------------------------------------------------------------
    def device(self, device_id: str, lock: bool = False) -> Device | None:
        row = self.one(
            "SELECT * FROM devices WHERE id = ?" + (self.dialect.for_update if lock else ""), (device_id,)
        )
        return _device(row) if row else None

    def device_for_batch(
        self, device_id: str, idem_key: str | None
    ) -> tuple[Device | None, dict[str, Any] | None]:
        """The device's row, locked until commit as `device(lock=True)`, and the stored reply to
        `idem_key` (None when unseen): one round trip at the start of every batch."""
        row = self.one(
            "SELECT d.*, i.request_hash AS idem_request_hash, i.response AS idem_response"
            " FROM devices d LEFT JOIN idempotency i ON i.device_id = d.id AND i.idem_key = ?"
            " WHERE d.id = ?" + (self.dialect.for_update + " OF d" if self.dialect.for_update else ""),
            (idem_key, device_id),
        )
        if row is None:
            return None, None
        seen = None
        if row["idem_request_hash"] is not None:
            seen = {"request_hash": row["idem_request_hash"], "response": row["idem_response"]}
        return _device(row), seen

    def devices(self, sites: Sequence[str] | None = None) -> list[Device]:
        where, params = _within("site", sites)
        return [
            _device(r)
            for r in self.rows(f"SELECT * FROM devices WHERE {where} ORDER BY site, enrolled, id", params)
        ]

    def add_device(
        self,
        device_id: str,
        public_key: str,
        site: str,
        label: str | None,
        hashed_token: str,
        via: str,
        head: str,
        acked_seq: int = 0,
    ) -> None:
        self.run(
            "INSERT INTO devices (id, public_key, site, label, token_hash, enrolled, enrolled_via, acked_seq, head)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (device_id, public_key, site, label, hashed_token, now(), via, acked_seq, head),
        )

    def advance(self, device_id: str, acked_seq: int, head: str) -> None:
        self.run(
            "UPDATE devices SET acked_seq = ?, head = ?, last_sync = ? WHERE id = ?",
            (acked_seq, head, now(), device_id),
        )

    def revoke(self, device_id: str, reason: str = "revoked") -> bool:
        return (
            self.run(
                "UPDATE devices SET revoked = ?, revoked_reason = ? WHERE id = ? AND revoked IS NULL",
                (now(), reason, device_id),
            )
            > 0
        )

    def set_replaces(self, device_id: str, old_id: str) -> None:
        self.run("UPDATE devices SET replaces = ? WHERE id = ?", (old_id, device_id))

    def replaced_keys(self, device: Device, hops: int = 16) -> dict[str, str]:
        """{device id: public key} of the devices `device` replaced, directly or through others
        (at most `hops` back): the keys whose events it may vouch for."""
        found: dict[str, str] = {}
        current = device.replaces
        while current and current != device.id and current not in found and len(found) < hops:
            row = self.one("SELECT id, public_key, replaces FROM devices WHERE id = ?", (current,))
            if row is None:
                break
            found[row["id"]] = row["public_key"]
            current = row["replaces"]
        return found

    # -- events --------------------------------------------------------------------------------
    def event_by_id(self, event_id: str) -> dict[str, Any] | None:
        return self.one("SELECT event_id, device_id, seq, hash FROM events WHERE event_id = ?", (event_id,))

    def event_by_seq(self, device_id: str, seq: int) -> dict[str, Any] | None:
        return self.one(
            "SELECT event_id, device_id, seq, hash FROM events WHERE device_id = ? AND seq = ?",
            (device_id, seq),
        )

    def events_by_ids(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """{event_id: {device_id, seq, hash}} for those of `event_ids` already stored (one query
        per 1,000 ids, not one per event: a batch's lookups cost a few round trips)."""
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(event_ids))
        for i in range(0, len(unique), 1000):
            chunk = unique[i : i + 1000]
            marks = ", ".join("?" for _ in chunk)
            for r in self.rows(
                f"SELECT event_id, device_id, seq, hash FROM events WHERE event_id IN ({marks})", chunk
            ):
                found[r["event_id"]] = r
        return found

    def hashes_by_seq(self, device_id: str, low: int, high: int) -> dict[int, str]:
        """{seq: hash} of the device's stored events with low <= seq <= high."""
        return {
            int(r["seq"]): r["hash"]
            for r in self.rows(
                "SELECT seq, hash FROM events WHERE device_id = ? AND seq >= ? AND seq <= ?",
                (device_id, low, high),
            )
        }

    def add_event(self, values: dict[str, Any]) -> None:
        self.add_events([values])

    def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert_rows("events", EVENT_COLUMNS, [[v.get(c) for c in EVENT_COLUMNS] for v in rows])

    def count_events(self, device_id: str | None = None) -> int:
        if device_id is None:
            row = self.one("SELECT COUNT(*) AS n FROM events")
        else:
            row = self.one("SELECT COUNT(*) AS n FROM events WHERE device_id = ?", (device_id,))
        return int(row["n"]) if row else 0

    def practice_count(self, sites: Sequence[str] | None = None) -> int:
        where, params = _within("d.site", sites)
        row = self.one(
            f"SELECT COUNT(*) AS n FROM events e JOIN devices d ON d.id = e.device_id"
            f" WHERE e.practice = 1 AND {where}",
            params,
        )
        return int(row["n"]) if row else 0

    def scored_events(self, sites: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The columns reports need, joined with the device's site and label (events from
        devices at `sites` only, unless None)."""
        where, params = _within("d.site", sites)
        return self.rows(
            "SELECT e.event_id, e.device_id, d.site, d.label, e.attempt_id, e.trainee_ref, e.trainee_name,"
            " e.case_id, e.case_title, e.specialty, e.competencies, e.started, e.ended, e.seconds, e.turns,"
            " e.score, e.passed, e.created, e.received, e.seq, e.practice"
            f" FROM events e JOIN devices d ON d.id = e.device_id WHERE {where} ORDER BY e.device_id, e.seq",
            params,
        )

    def event_result(self, event_id: str) -> dict[str, Any] | None:
        """One event's body and what its page shows, with its device's site."""
        return self.one(
            "SELECT e.body, e.case_title, e.trainee_name, e.received, d.site FROM events e"
            " JOIN devices d ON d.id = e.device_id WHERE e.event_id = ?",
            (event_id,),
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

    def anomalies(self, limit: int = 200, sites: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The latest anomalies; with `sites`, only those of devices at those sites (an anomaly
        from no known device belongs to no site, so only an unscoped reader sees it)."""
        if sites is None:
            return self.rows(
                "SELECT id, at, via, device_id, kind, event_id, seq, reason, detail FROM anomalies"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        where, params = _within("d.site", sites)
        return self.rows(
            "SELECT a.id, a.at, a.via, a.device_id, a.kind, a.event_id, a.seq, a.reason, a.detail"
            f" FROM anomalies a JOIN devices d ON d.id = a.device_id WHERE {where}"
            " ORDER BY a.id DESC LIMIT ?",
            (*params, limit),
        )

    def anomaly_counts(self) -> dict[str, int]:
        rows = self.rows(
            "SELECT device_id, COUNT(*) AS n FROM anomalies WHERE device_id IS NOT NULL GROUP BY device_id"
        )
        return {r["device_id"]: int(r["n"]) for r in rows}

    # -- idempotency keys ----------------------------------------------------------------------
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

    # -- coordinator accounts (edgetutor/hub/accounts.py decides; these only store) -------------
    def count_users(self) -> int:
        row = self.one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    def user(self, name: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM users WHERE name = ?", (name,))

    def users(self) -> list[dict[str, Any]]:
        return self.rows("SELECT name, role, scope, created, changed FROM users ORDER BY name")

    def add_user(self, name: str, role: str, scope: str | None, password: str) -> None:
        stamp = now()
        self.run(
            "INSERT INTO users (name, role, scope, password, created, changed) VALUES (?, ?, ?, ?, ?, ?)",
            (name, role, scope, password, stamp, stamp),
        )

    def set_password(self, name: str, password: str) -> bool:
        return (
            self.run("UPDATE users SET password = ?, changed = ? WHERE name = ?", (password, now(), name)) > 0
        )

    def remove_user(self, name: str) -> bool:
        self.end_sessions(name)
        return self.run("DELETE FROM users WHERE name = ?", (name,)) > 0

    def set_district(self, site: str, district: str) -> None:
        self.run("DELETE FROM sites WHERE site = ?", (site,))
        self.run("INSERT INTO sites (site, district, assigned) VALUES (?, ?, ?)", (site, district, now()))

    def districts(self) -> dict[str, str]:
        """{site: district} for every site given a district."""
        return {r["site"]: r["district"] for r in self.rows("SELECT site, district FROM sites")}

    def sites_of(self, district: str) -> list[str]:
        return [
            r["site"]
            for r in self.rows("SELECT site FROM sites WHERE district = ? ORDER BY site", (district,))
        ]

    def known_sites(self) -> list[str]:
        """Every site the hub has heard of: devices', tokens' and districts'."""
        rows = self.rows(
            "SELECT site FROM devices UNION SELECT site FROM tokens UNION SELECT site FROM sites"
        )
        return sorted(r["site"] for r in rows)

    def add_session(self, hashed: str, user: str, csrf: str, expires: str, address: str | None) -> None:
        stamp = now()
        self.run(
            "INSERT INTO sessions (hash, user_name, csrf, created, seen, expires, address) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (hashed, user, csrf, stamp, stamp, expires, address),
        )

    def session(self, hashed: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM sessions WHERE hash = ?", (hashed,))

    def touch_session(self, hashed: str) -> None:
        self.run("UPDATE sessions SET seen = ? WHERE hash = ?", (now(), hashed))

    def end_session(self, hashed: str) -> None:
        self.run("DELETE FROM sessions WHERE hash = ?", (hashed,))

    def end_sessions(self, user: str) -> int:
        return self.run("DELETE FROM sessions WHERE user_name = ?", (user,))

    def prune_sessions(self, idle_before: str) -> int:
        """Forget sessions past their end, or idle since before `idle_before`."""
        return self.run("DELETE FROM sessions WHERE expires < ? OR seen < ?", (now(), idle_before))

    def add_audit(self, user: str | None, address: str | None, action: str, detail: str | None) -> None:
        self.run(
            "INSERT INTO audit (at, user_name, address, action, detail) VALUES (?, ?, ?, ?, ?)",
            (now(), user, address, action, detail),
        )

    def audit(self, limit: int = 100, user: str | None = None) -> list[dict[str, Any]]:
        """The latest audit records, newest first (one user's only, if named)."""
        if user is None:
            return self.rows(
                "SELECT id, at, user_name, address, action, detail FROM audit ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return self.rows(
            "SELECT id, at, user_name, address, action, detail FROM audit WHERE user_name = ?"
            " ORDER BY id DESC LIMIT ?",
            (user, limit),
        )
