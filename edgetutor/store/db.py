"""The local database: trainees, their attempts at cases, every turn, scores and result events.

One SQLite file (`home()/edgetutor.db`) in WAL mode. Every write is its own short
`BEGIN IMMEDIATE` transaction, committed before the call returns, so a session killed at any moment
(power cut, OOM, SIGKILL) loses at most the turn being written and can be resumed by replaying
`turns()`.

Result sync: finishing an attempt with a score also appends its signed, hash-chained result event
and an outbox row in that same transaction (see `edgetutor.sync` and docs/sync.md); the sync
client reads and acknowledges them through the `events`/`outbox`/`sync_state` methods below.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from .. import paths
from ..errors import EdgeTutorError, KeyFileError
from .migrations import migrate

if TYPE_CHECKING:
    # Imported in open_db(): sqlite_utils pulls in numpy, click and dateutil (~100 ms), which
    # commands that never touch the database should not pay for.
    from sqlite_utils import Database

AttemptStatus = Literal["in_progress", "finished", "interrupted"]
TurnKind = Literal["opening", "question", "examine", "order", "diagnose", "plan", "end", "note"]
TurnSource = Literal["model", "authored", "lookup", "system"]

DB_NAME = "edgetutor.db"
BUSY_TIMEOUT_MS = 5000
# An attempt owned by another machine cannot be checked for a live process; after this long
# without a new turn we assume that session is gone.
STALE_AFTER = dt.timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Trainee:
    id: int
    name: str
    created: dt.datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    trainee_id: int
    pack_id: str
    pack_version: int
    pack_digest: str
    case_id: str
    case_version: int
    model: str | None
    started: dt.datetime
    ended: dt.datetime | None
    status: AttemptStatus
    pid: int | None
    host: str | None
    diagnosis: str | None
    plan: str | None


@dataclass(frozen=True, slots=True)
class SyncState:
    """The `sync_state` row: this device's identity, hub and enrollment, and the last sync."""

    device_id: str | None
    hub_url: str | None
    site: str | None
    enrolled: bool
    enroll_token: str | None
    acked_seq: int
    last_sync: dt.datetime | None
    last_error: str | None
    continues: str | None = None  # the device whose chain this key carries on (a new key)
    rotated_with: str | None = None  # SHA-256 of the token the new key was made for


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One result event as `results list` shows it."""

    seq: int
    state: Literal["pending", "sent"]
    attempt_id: str
    trainee: str
    case_id: str
    total: float
    passed: bool
    created: dt.datetime
    tries: int
    last_error: str | None


_SYNC_FIELDS = frozenset(
    {
        "device_id",
        "hub_url",
        "site",
        "enrolled",
        "enroll_token",
        "acked_seq",
        "last_sync",
        "last_error",
        "continues",
        "rotated_with",
    }
)


@dataclass(frozen=True, slots=True)
class Turn:
    id: int
    attempt_id: str
    seq: int
    kind: TurnKind
    utterance: str
    matched: list[str]
    reply: str
    source: TurnSource
    guard: dict[str, Any] | None
    timings: dict[str, Any]
    created: dt.datetime


def default_path() -> Path:
    return paths.home() / DB_NAME


def _enable_wal(db: Database) -> None:
    """Switch to WAL. Two processes opening a new database at once can get "database is locked"
    at once: SQLite skips the busy handler when waiting could deadlock. Retried until the busy
    timeout, as the busy handler would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_db(path: Path | None = None, sealer: Sealer | None = None) -> Store:
    """Open (creating if needed) the database at `path`, default `home()/edgetutor.db`.

    Creates the parent folder, turns on WAL, foreign keys and a busy timeout, then applies any
    pending migrations. Raises EdgeTutorError if the file cannot be opened or is not a database.
    `sealer` signs the result event of each scored attempt (see `Sealer`); the app opens its
    database through `edgetutor.service.open_store()`, which passes the device's.
    """
    from sqlite_utils import Database

    path = path or default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the UI records turns from a worker thread; Store serialises
        # all use of the connection with its own lock.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    except (OSError, sqlite3.Error) as err:
        raise EdgeTutorError(f"cannot open database {path}: {err}") from err
    try:
        # execute_plugins=False: an installed sqlite-utils plugin must not alter our connection.
        db = Database(conn, execute_plugins=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        _enable_wal(db)
        # FULL fsyncs the WAL on every commit: a turn survives a power cut, not just a crash.
        db.execute("PRAGMA synchronous = FULL")
        migrated = migrate(db)
        store = Store(db, path, tuple(migrated), sealer)
        if "m007_result_events" in migrated and sealer is not None:
            # Attempts scored before result events existed get theirs now, oldest first. If the
            # device key is unusable they wait: the next finish, sync or export seals them (and
            # reports the key problem), so opening the database never fails because of it.
            with contextlib.suppress(EdgeTutorError):
                store.seal_backlog()
    except sqlite3.DatabaseError as err:
        conn.close()
        raise EdgeTutorError(f"cannot open database {path}: {err}") from err
    except BaseException:
        conn.close()
        raise
    return store


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


def _attempt(row: Mapping[str, Any]) -> Attempt:
    return Attempt(
        id=row["id"],
        trainee_id=row["trainee_id"],
        pack_id=row["pack_id"],
        pack_version=row["pack_version"],
        pack_digest=row["pack_digest"],
        case_id=row["case_id"],
        case_version=row["case_version"],
        model=row["model"],
        started=dt.datetime.fromisoformat(row["started"]),
        ended=_parse(row["ended"]),
        status=cast(AttemptStatus, row["status"]),
        pid=row["pid"],
        host=row["host"],
        diagnosis=row["diagnosis"],
        plan=row["plan"],
    )


def _turn(row: Mapping[str, Any]) -> Turn:
    return Turn(
        id=row["id"],
        attempt_id=row["attempt_id"],
        seq=row["seq"],
        kind=cast(TurnKind, row["kind"]),
        utterance=row["utterance"],
        matched=json.loads(row["matched"]),
        reply=row["reply"],
        source=cast(TurnSource, row["source"]),
        guard=json.loads(row["guard"]) if row["guard"] is not None else None,
        timings=json.loads(row["timings"]),
        created=dt.datetime.fromisoformat(row["created"]),
    )


if sys.platform == "win32":

    def _pid_alive(pid: int) -> bool:
        # os.kill(pid, 0) would *terminate* the process on Windows; ask the kernel instead.
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: exists, not ours
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)

else:

    def _pid_alive(pid: int) -> bool:
        if pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        return True


class Sealer(Protocol):
    """What signs the result event of a scored attempt (`edgetutor.sync.seal.EventSealer`).

    The store calls it inside its own write transaction, so a score and its signed event are
    written together or not at all; the store itself knows nothing of keys or signatures.
    """

    genesis: str

    def prepare(self, bound_device_id: str | None) -> str:
        """Make the signing key ready before the write; return its device id. Raises KeyFileError."""
        ...

    def case_info(self, case_ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        """Case facts (title, specialty, tags) for installed cases, for results sealed late."""
        ...

    def seal(
        self,
        attempt: Mapping[str, Any],
        trainee: Mapping[str, Any],
        score: Mapping[str, Any],
        info: Mapping[str, Any] | None,
        *,
        event_id: str,
        seq: int,
        prev: str,
        created: str,
    ) -> dict[str, Any]:
        """The signed event (a dict with at least "event_id" and "hash")."""
        ...


class Store:
    """Typed access to the database; get one from `open_db()`. Safe to share between threads.

    Opened with a `sealer`, scoring an attempt also appends its signed result event and outbox
    row; opened without one (tools that only read, tests of the store alone), scored attempts wait
    unsealed and are sealed, oldest first, the next time the database is opened with a sealer.
    """

    def __init__(
        self, db: Database, path: Path, migrated: tuple[str, ...] = (), sealer: Sealer | None = None
    ) -> None:
        self.db = db
        self.path = path
        self.sealer = sealer
        #: migrations applied by this open (empty when the schema was already current)
        self.migrated = migrated
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One committed transaction; IMMEDIATE takes the write lock before we read, so `seq`
        and status checks cannot race another process."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.rollback()
                raise
            self.db.commit()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, list(params)))

    # -- trainees ----------------------------------------------------------------------------

    def trainee(self, name: str) -> Trainee:
        """The trainee called `name` (case-insensitive, surrounding spaces ignored), created if new.

        The first spelling used is kept. Raises EdgeTutorError if the name is empty.
        """
        clean = name.strip()
        if not clean:
            raise EdgeTutorError("trainee name must not be empty")
        with self._write():
            self.db.table("trainees").insert({"name": clean, "created": _stamp(_now())}, ignore=True)
            row = self.db.execute("SELECT id, name, created FROM trainees WHERE name = ?", [clean]).fetchone()
        return Trainee(id=row[0], name=row[1], created=dt.datetime.fromisoformat(row[2]))

    def trainees(self) -> list[Trainee]:
        """Every trainee, by name."""
        return [
            Trainee(id=r["id"], name=r["name"], created=dt.datetime.fromisoformat(r["created"]))
            for r in self._rows("SELECT * FROM trainees ORDER BY name")
        ]

    # -- attempts ----------------------------------------------------------------------------

    def start_attempt(
        self,
        trainee: Trainee,
        pack_id: str,
        pack_version: int,
        pack_digest: str,
        case_id: str,
        case_version: int,
        model: str | None,
    ) -> Attempt:
        """Start a new 'in_progress' attempt owned by this process (pid and host are recorded).

        Raises EdgeTutorError if the trainee is not in this database.
        """
        attempt_id = uuid.uuid4().hex
        row: dict[str, object] = {
            "id": attempt_id,
            "trainee_id": trainee.id,
            "pack_id": pack_id,
            "pack_version": pack_version,
            "pack_digest": pack_digest,
            "case_id": case_id,
            "case_version": case_version,
            "model": model,
            "started": _stamp(_now()),
            "status": "in_progress",
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        with self._write():
            if self.db.execute("SELECT 1 FROM trainees WHERE id = ?", [trainee.id]).fetchone() is None:
                raise EdgeTutorError(f"unknown trainee {trainee.name!r} (id {trainee.id})")
            self.db.table("attempts").insert(row)
        return self.attempt(attempt_id)

    def attempt(self, attempt_id: str) -> Attempt:
        """The attempt with this id. Raises EdgeTutorError if there is none."""
        rows = self._rows("SELECT * FROM attempts WHERE id = ?", [attempt_id])
        if not rows:
            raise EdgeTutorError(f"no attempt {attempt_id!r}")
        return _attempt(rows[0])

    def attempts(self, trainee: Trainee | None = None, case_id: str | None = None) -> list[Attempt]:
        """Attempts, oldest first, optionally only one trainee's and/or one case's."""
        return self._select_attempts(trainee, case_id, status=None)

    def open_attempts(self, case_id: str | None = None, trainee: Trainee | None = None) -> list[Attempt]:
        """Attempts still 'in_progress' (possibly by a live process elsewhere), oldest first."""
        return self._select_attempts(trainee, case_id, status="in_progress")

    def _select_attempts(
        self, trainee: Trainee | None, case_id: str | None, status: AttemptStatus | None
    ) -> list[Attempt]:
        where: list[str] = ["1"]
        params: list[str | int] = []
        if trainee is not None:
            where.append("trainee_id = ?")
            params.append(trainee.id)
        if case_id is not None:
            where.append("case_id = ?")
            params.append(case_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT * FROM attempts WHERE {' AND '.join(where)} ORDER BY started, rowid"
        return [_attempt(r) for r in self._rows(sql, params)]

    def _require_in_progress(self, attempt_id: str, action: str) -> None:
        row = self.db.execute("SELECT status FROM attempts WHERE id = ?", [attempt_id]).fetchone()
        if row is None:
            raise EdgeTutorError(f"no attempt {attempt_id!r}")
        if row[0] != "in_progress":
            hint = " (resume it first)" if row[0] == "interrupted" else ""
            raise EdgeTutorError(f"cannot {action}: attempt {attempt_id} is {row[0]}{hint}")

    def set_answer(self, attempt_id: str, diagnosis: str | None = None, plan: str | None = None) -> None:
        """Record the trainee's diagnosis and/or plan (None leaves that field unchanged).

        Raises EdgeTutorError if the attempt does not exist or is not 'in_progress'.
        """
        with self._write():
            self._require_in_progress(attempt_id, "set the answer")
            self.db.execute(
                "UPDATE attempts SET diagnosis = coalesce(?, diagnosis), plan = coalesce(?, plan) WHERE id = ?",
                [diagnosis, plan, attempt_id],
            )

    def finish_attempt(
        self,
        attempt_id: str,
        score: Mapping[str, Any] | None = None,
        case_info: Mapping[str, Any] | None = None,
    ) -> Attempt:
        """Mark the attempt 'finished' now, storing its `score` (a Score.as_dict()) in the same
        transaction.

        With a score, that transaction also appends the attempt's signed result event and its
        'pending' outbox row (after any scored attempt still without one). `case_info` is
        {"title", "specialty", "tags"} of the case (`edgetutor.sync.events.case_info`); the store
        does not read case files itself. An attempt finished without a score gets no event.

        Raises EdgeTutorError unless it is 'in_progress'; KeyFileError if the device key is
        unusable (then nothing is written: the attempt stays open and is finished once the key
        is restored).
        """
        device_id = self._prepare_sealer() if score is not None and self.sealer is not None else None
        with self._write():
            self._require_in_progress(attempt_id, "finish")
            now = _stamp(_now())
            self.db.execute(
                "UPDATE attempts SET status = 'finished', ended = ? WHERE id = ?", [now, attempt_id]
            )
            if score is not None:
                pack = score["pack"]
                self.db.execute(
                    "INSERT INTO scores (attempt_id, total, passed, pack_id, pack_version, pack_digest,"
                    " scorer_version, detail, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        attempt_id, score["total"], int(bool(score["passed"])), pack["id"], pack["version"],
                        pack["digest"], score["scorer_version"], json.dumps(score, sort_keys=True), now,
                    ],
                )  # fmt: skip
                if device_id is not None:
                    case_id = self.db.execute(
                        "SELECT case_id FROM attempts WHERE id = ?", [attempt_id]
                    ).fetchone()[0]
                    self._seal_unsealed(device_id, {case_id: case_info} if case_info is not None else {})
        return self.attempt(attempt_id)

    def scored(self, trainee: Trainee | None = None) -> list[tuple[Attempt, dict[str, Any]]]:
        """Finished attempts with their stored scores, oldest first (one trainee's, or everyone's)."""
        sql = "SELECT a.*, s.detail AS score_detail FROM attempts a JOIN scores s ON s.attempt_id = a.id"
        params: list[Any] = []
        if trainee is not None:
            sql += " WHERE a.trainee_id = ?"
            params.append(trainee.id)
        rows = self._rows(sql + " ORDER BY a.ended, a.id", params)
        return [
            (_attempt({k: v for k, v in r.items() if k != "score_detail"}), json.loads(r["score_detail"]))
            for r in rows
        ]

    def score(self, attempt_id: str) -> dict[str, Any] | None:
        """The stored score of a finished attempt (None if it has none)."""
        rows = self._rows("SELECT detail FROM scores WHERE attempt_id = ?", [attempt_id])
        return json.loads(rows[0]["detail"]) if rows else None

    def mark_interrupted_stale(self) -> list[str]:
        """Mark 'in_progress' attempts whose session is gone as 'interrupted'; return their ids.

        Gone means: on this host, its process no longer exists; on another host (or with no owner
        recorded), no turn for `STALE_AFTER` (12 h). Attempts of this very process are never
        touched. Call on app start. Raises nothing beyond database errors.
        """
        host, me = socket.gethostname(), os.getpid()
        cutoff = _now() - STALE_AFTER
        stale: list[str] = []
        with self._write():
            rows = self.db.execute(
                """
                SELECT a.id, a.pid, a.host,
                       coalesce((SELECT max(t.created) FROM turns t WHERE t.attempt_id = a.id), a.started)
                FROM attempts a WHERE a.status = 'in_progress'
                """
            ).fetchall()
            for attempt_id, pid, owner_host, last_active in rows:
                if owner_host == host and pid is not None:
                    gone = pid != me and not _pid_alive(pid)
                else:
                    gone = dt.datetime.fromisoformat(last_active) < cutoff
                if gone:
                    stale.append(attempt_id)
            if stale:
                marks = ", ".join("?" * len(stale))
                self.db.execute(f"UPDATE attempts SET status = 'interrupted' WHERE id IN ({marks})", stale)
        return stale

    def resume(self, attempt_id: str) -> Attempt:
        """Take over an 'in_progress' or 'interrupted' attempt: it becomes 'in_progress', owned by
        this process. Replay `turns(attempt_id)` to rebuild the conversation.

        Raises EdgeTutorError if the attempt does not exist, is finished, or is still open in
        another live process on this machine (two writers would interleave their turns).
        """
        host, me = socket.gethostname(), os.getpid()
        with self._write():
            row = self.db.execute(
                "SELECT status, pid, host FROM attempts WHERE id = ?", [attempt_id]
            ).fetchone()
            if row is None:
                raise EdgeTutorError(f"no attempt {attempt_id!r}")
            status, pid, owner_host = row
            if status == "finished":
                raise EdgeTutorError(f"cannot resume attempt {attempt_id}: it is finished")
            if status == "in_progress" and owner_host == host and pid not in (None, me) and _pid_alive(pid):
                raise EdgeTutorError(
                    f"cannot resume attempt {attempt_id}: it is open in another EdgeTutor process (pid {pid})"
                )
            self.db.execute(
                "UPDATE attempts SET status = 'in_progress', pid = ?, host = ? WHERE id = ?",
                [me, host, attempt_id],
            )
        return self.attempt(attempt_id)

    # -- turns -------------------------------------------------------------------------------

    def record_turn(
        self,
        attempt_id: str,
        kind: TurnKind,
        utterance: str,
        matched: Sequence[str],
        reply: str,
        source: TurnSource,
        guard: Mapping[str, Any] | None = None,
        timings: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Append a turn with the next `seq` (1, 2, ...) and commit it before returning.

        Raises EdgeTutorError if the attempt does not exist or is not 'in_progress';
        sqlite3.IntegrityError if `kind` or `source` is not an allowed value (nothing is written);
        TypeError if `guard` or `timings` is not JSON-serialisable.
        """
        created = _stamp(_now())
        row: dict[str, Any] = {
            "attempt_id": attempt_id,
            "kind": kind,
            "utterance": utterance,
            "matched": json.dumps(list(matched), ensure_ascii=False),
            "reply": reply,
            "source": source,
            "guard": json.dumps(dict(guard), ensure_ascii=False) if guard is not None else None,
            "timings": json.dumps(dict(timings or {}), ensure_ascii=False),
            "created": created,
        }
        with self._write():
            self._require_in_progress(attempt_id, "record a turn")
            row["seq"] = self.db.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM turns WHERE attempt_id = ?", [attempt_id]
            ).fetchone()[0]
            cursor = self.db.execute(
                f"INSERT INTO turns ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            row["id"] = cursor.lastrowid
        return _turn(row)

    def turns(self, attempt_id: str) -> list[Turn]:
        """The attempt's turns in order (seq 1..n); empty if it has none or does not exist."""
        return [
            _turn(r)
            for r in self._rows("SELECT * FROM turns WHERE attempt_id = ? ORDER BY seq", [attempt_id])
        ]

    # -- result events and the outbox (edgetutor.sync) ------------------------------------------

    def _prepare_sealer(self) -> str:
        assert self.sealer is not None
        return self.sealer.prepare(self.sync_state().device_id)

    def _unsealed(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                """
                SELECT a.*, t.name AS trainee_name, s.detail AS score_detail
                FROM scores s JOIN attempts a ON a.id = s.attempt_id JOIN trainees t ON t.id = a.trainee_id
                WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.attempt_id = s.attempt_id)
                ORDER BY a.ended, a.rowid
                """
            )
        )

    def _seal_unsealed(self, device_id: str, infos: Mapping[str, Mapping[str, Any]]) -> int:
        """Append an event and an outbox row for every scored attempt without one, oldest first.
        Runs inside the caller's write transaction, after `_prepare_sealer()`."""
        sealer = self.sealer
        assert sealer is not None
        rows = self._unsealed()
        if not rows:
            return 0
        bound = self.db.execute("SELECT device_id FROM sync_state WHERE id = 1").fetchone()[0]
        if bound is None:
            self.db.execute("UPDATE sync_state SET device_id = ? WHERE id = 1", [device_id])
        elif bound != device_id:  # another process changed the key since _prepare_sealer()
            raise KeyFileError(f"the device key is not the key of device {bound}")
        info = dict(infos)
        unknown = {r["case_id"] for r in rows} - set(info)
        if unknown:
            info |= sealer.case_info(unknown)
        last = self.db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0], last[1]) if last else (0, sealer.genesis)
        for row in rows:
            seq += 1
            score = json.loads(row["score_detail"])
            created = _stamp(_now())
            event = sealer.seal(
                row,
                {"id": row["trainee_id"], "name": row["trainee_name"]},
                score,
                info.get(row["case_id"]),
                event_id=uuid.uuid4().hex,
                seq=seq,
                prev=prev,
                created=created,
            )
            self.db.execute(
                "INSERT INTO events (seq, event_id, attempt_id, device_id, prev, hash, created, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, event["event_id"], row["id"], device_id, prev, event["hash"], created,
                 json.dumps(event, ensure_ascii=False, sort_keys=True)],
            )  # fmt: skip
            self.db.execute("INSERT INTO outbox (seq) VALUES (?)", [seq])
            prev = event["hash"]
        return len(rows)

    def seal_backlog(self) -> int:
        """Give every scored attempt that has no result event one (attempts scored before the
        events table existed), oldest first; return how many. Raises KeyFileError if some need
        sealing and the device key is unusable (nothing is written then); EdgeTutorError if the
        database was opened without a sealer."""
        with self._lock:
            if not self._unsealed():
                return 0
            if self.sealer is None:
                raise EdgeTutorError("results cannot be signed: the database was opened without a sealer")
            device_id = self._prepare_sealer()
            with self._write():
                return self._seal_unsealed(device_id, {})

    def sync_state(self) -> SyncState:
        r = self._rows("SELECT * FROM sync_state WHERE id = 1")[0]
        return SyncState(
            device_id=r["device_id"],
            hub_url=r["hub_url"],
            site=r["site"],
            enrolled=bool(r["enrolled"]),
            enroll_token=r["enroll_token"],
            acked_seq=r["acked_seq"],
            last_sync=_parse(r["last_sync"]),
            last_error=r["last_error"],
            continues=r["continues"],
            rotated_with=r["rotated_with"],
        )

    def update_sync_state(self, **fields: Any) -> None:
        """Set columns of the sync state (datetimes are stored as ISO text). Raises ValueError
        for an unknown column."""
        unknown = set(fields) - _SYNC_FIELDS
        if unknown:
            raise ValueError(f"unknown sync state field(s): {', '.join(sorted(unknown))}")
        if not fields:
            return
        values = [_stamp(v) if isinstance(v, dt.datetime) else v for v in fields.values()]
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._write():
            self.db.execute(f"UPDATE sync_state SET {sets} WHERE id = 1", values)

    def last_seq(self) -> int:
        return int(self._rows("SELECT coalesce(max(seq), 0) AS n FROM events")[0]["n"])

    def pending_count(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM outbox WHERE state = 'pending'")[0]["n"])

    def events(self, after: int = 0, limit: int | None = None, pending: bool = False) -> list[dict[str, Any]]:
        """Signed events with seq > `after`, in order (only 'pending' ones if `pending`)."""
        sql = "SELECT e.body FROM events e JOIN outbox o ON o.seq = e.seq WHERE e.seq > ?"
        if pending:
            sql += " AND o.state = 'pending'"
        sql += " ORDER BY e.seq"
        params: list[Any] = [after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [json.loads(r["body"]) for r in self._rows(sql, params)]

    def event_hash(self, seq: int) -> str | None:
        rows = self._rows("SELECT hash FROM events WHERE seq = ?", [seq])
        return rows[0]["hash"] if rows else None

    def results(self) -> list[ResultRow]:
        """Every result event with its outbox state, oldest first."""
        rows = self._rows(
            """
            SELECT e.seq, o.state, e.attempt_id, t.name AS trainee, a.case_id, s.total, s.passed,
                   e.created, o.tries, o.last_error
            FROM events e JOIN outbox o ON o.seq = e.seq JOIN attempts a ON a.id = e.attempt_id
            JOIN trainees t ON t.id = a.trainee_id JOIN scores s ON s.attempt_id = e.attempt_id
            ORDER BY e.seq
            """
        )
        return [
            ResultRow(
                seq=r["seq"],
                state=r["state"],
                attempt_id=r["attempt_id"],
                trainee=r["trainee"],
                case_id=r["case_id"],
                total=r["total"],
                passed=bool(r["passed"]),
                created=dt.datetime.fromisoformat(r["created"]),
                tries=r["tries"],
                last_error=r["last_error"],
            )
            for r in rows
        ]

    def set_acked(self, acked_seq: int) -> tuple[int, int]:
        """Record that the hub holds this device's events 1..acked_seq: those become 'sent', later
        ones 'pending' again (a hub restored from an older backup gets them resent). Returns
        (newly sent, reopened). Raises EdgeTutorError if acked_seq is beyond the last event."""
        with self._write():
            last = self.db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            if acked_seq < 0 or acked_seq > last:
                raise EdgeTutorError(
                    f"the hub acknowledges result #{acked_seq}, but this device has results up to #{last} only"
                )
            sent = self.db.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL"
                " WHERE seq <= ? AND state = 'pending'",
                [_stamp(_now()), acked_seq],
            ).rowcount
            reopened = self.db.execute(
                "UPDATE outbox SET state = 'pending', sent_at = NULL WHERE seq > ? AND state = 'sent'",
                [acked_seq],
            ).rowcount
            self.db.execute("UPDATE sync_state SET acked_seq = ? WHERE id = 1", [acked_seq])
        return sent, reopened

    def note_send_failure(self, first: int, last: int, error: str) -> None:
        """Count a failed try on the pending events first..last and keep the reason."""
        with self._write():
            self.db.execute(
                "UPDATE outbox SET tries = tries + 1, last_error = ?"
                " WHERE seq BETWEEN ? AND ? AND state = 'pending'",
                [error, first, last],
            )
