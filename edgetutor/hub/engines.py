"""The two database engines the hub runs on, and the one place that tells them apart.

`--db` names the database: a file path is SQLite (the default, one file beside the hub, nothing
to operate), `postgresql://user@host:port/name` (or `postgres://`) is PostgreSQL, for a hub that
many facilities sync to and that a ministry runs on a server it already backs up. Every SQL
statement the hub runs is written once (`edgetutor/hub/db.py`); an engine supplies only:

- how to connect (SQLite: WAL, synchronous=FULL, busy timeout; PostgreSQL: autocommit, so
  transactions are begun explicitly, exactly as on SQLite);
- how a write transaction begins. SQLite's `BEGIN IMMEDIATE` takes the database write lock
  before the first read, so two writers can never read the same chain head. PostgreSQL's
  `BEGIN` takes no lock: the code that reads a chain head locks that device's row
  (`SELECT ... FOR UPDATE`, `for_update`), so batches of *one* device are serialised while
  batches of different devices run side by side;
- the DDL of an auto-numbered key and the placeholder style (`?` is rewritten to `%s`);
- how many rows go into one table at once (SQLite: one prepared INSERT run per row; PostgreSQL:
  COPY, which costs the hub less than half the CPU of an INSERT per row, and the server less);
- which driver errors mean "another writer got there first, run the transaction again"
  (a unique-key race between two devices, a serialisation failure, a deadlock);
- whether one connection is shared under a lock (SQLite: one writer at a time anyway) or each
  thread has its own (PostgreSQL: several batches in flight per hub process).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import EdgeTutorError

BUSY_TIMEOUT_S = 10.0
PG_SCHEMES = ("postgresql", "postgres")
# The transaction-scoped lock two hub processes take before migrating the same PostgreSQL
# database at once (any constant; it only has to be the same in every process).
MIGRATION_LOCK = 0x45445455


class Dialect:
    """SQLite: the default engine; one file, one writer at a time."""

    name = "sqlite"
    serial_pk = "INTEGER PRIMARY KEY"
    for_update = ""
    shared_connection = True

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def pack_dir(self) -> Path:
        """Where published pack files live: beside the database file."""
        return self.path.with_name(self.path.name + ".packs")

    def connect(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly (see begin_write), never
        # implicitly by the driver. check_same_thread=False: HubDB serialises use with a lock.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL fsyncs the WAL at each commit: an acknowledged batch survives a power cut.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def begin_read(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def lock_migrations(self, conn: Any) -> None:
        """Nothing: BEGIN IMMEDIATE already keeps a second process out."""

    def sql(self, text: str) -> str:
        return text

    def params(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(values)

    def insert_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert `rows` (values in `columns` order) into `table`, in the caller's transaction."""
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def is_race(self, err: Exception) -> bool:
        return isinstance(err, sqlite3.IntegrityError)


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3: a connection per thread, row locks per device."""

    name = "postgresql"
    serial_pk = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    for_update = " FOR UPDATE"
    shared_connection = False
    _PLACEHOLDER = re.compile(r"\?")

    def __init__(self, url: str, pack_dir: Path | None = None) -> None:
        self.url = url
        self._pack_dir = pack_dir

    def describe(self) -> str:
        """The URL without its password: what may be printed or logged."""
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"

    def pack_dir(self) -> Path:
        """No file to sit beside: `EDGETUTOR_HUB_PACKS`, else `<EDGETUTOR_HOME>/hub-packs/<db name>`.
        Every hub process serving one database must see the same folder (a shared disk)."""
        if self._pack_dir is not None:
            return self._pack_dir
        import os

        from ..paths import home

        env = os.environ.get("EDGETUTOR_HUB_PACKS")
        if env:
            return Path(env)
        name = urlsplit(self.url).path.strip("/") or "edgetutor"
        return home() / "hub-packs" / re.sub(r"[^A-Za-z0-9_.-]", "_", name)

    def connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def begin_read(self, conn: Any) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def lock_migrations(self, conn: Any) -> None:
        conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")

    def sql(self, text: str) -> str:
        # The hub's SQL holds no literal '%' or '?' inside strings: a plain rewrite is exact.
        return self._PLACEHOLDER.sub("%s", text)

    def params(self, values: Sequence[Any]) -> tuple[Any, ...]:
        # PostgreSQL text cannot hold NUL; SQLite can, and JSON allows "\u0000" in a name. The
        # signed body is stored as escaped JSON either way; a column read by reports shows U+FFFD.
        return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in values)

    def insert_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        # COPY fails as the INSERTs would (a unique key taken: UniqueViolation, a race to retry).
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(self.params(row))

    def errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    def is_race(self, err: Exception) -> bool:
        import psycopg.errors as pg

        return isinstance(err, pg.UniqueViolation | pg.SerializationFailure | pg.DeadlockDetected)


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in PG_SCHEMES


def dialect_for(target: str | Path) -> Dialect:
    """The engine a `--db` value names: a postgresql:// URL, else a SQLite file path."""
    if isinstance(target, str) and "://" in target:
        scheme = urlsplit(target).scheme
        if scheme not in PG_SCHEMES:
            raise EdgeTutorError(
                f"unsupported hub database URL scheme {scheme!r}: use a file path (SQLite) or postgresql://"
            )
        try:
            import psycopg  # noqa: F401
        except ImportError as err:
            raise EdgeTutorError("a postgresql:// hub database needs the psycopg package") from err
        return PostgresDialect(target)
    return Dialect(Path(target))
