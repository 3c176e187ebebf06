"""The local database: trainees, their attempts at cases, and every turn of each attempt.

One SQLite file (`home()/edgetutor.db`) in WAL mode. Every write is its own short
`BEGIN IMMEDIATE` transaction, committed before the call returns, so a session killed at any moment
(power cut, OOM, SIGKILL) loses at most the turn being written and can be resumed by replaying
`turns()`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

from .. import paths
from ..errors import EdgeTutorError
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


def open_db(path: Path | None = None) -> Store:
    """Open (creating if needed) the database at `path`, default `home()/edgetutor.db`.

    Creates the parent folder, turns on WAL, foreign keys and a busy timeout, then applies any
    pending migrations. Raises EdgeTutorError if the file cannot be opened or is not a database.
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
        db.enable_wal()
        # FULL fsyncs the WAL on every commit: a turn survives a power cut, not just a crash.
        db.execute("PRAGMA synchronous = FULL")
        migrated = migrate(db)
    except sqlite3.DatabaseError as err:
        conn.close()
        raise EdgeTutorError(f"cannot open database {path}: {err}") from err
    except BaseException:
        conn.close()
        raise
    return Store(db, path, tuple(migrated))


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


class Store:
    """Typed access to the database; get one from `open_db()`. Safe to share between threads."""

    def __init__(self, db: Database, path: Path, migrated: tuple[str, ...] = ()) -> None:
        self.db = db
        self.path = path
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

    def finish_attempt(self, attempt_id: str, score: Mapping[str, Any] | None = None) -> Attempt:
        """Mark the attempt 'finished' now, storing its `score` (a Score.as_dict()) in the same
        transaction. Raises EdgeTutorError unless it is 'in_progress'."""
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
