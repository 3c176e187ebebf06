"""A real, throwaway PostgreSQL server for the hub's tests and benchmarks.

It runs the operating system's own server binaries (Debian: /usr/lib/postgresql/<version>/bin,
installed by `scripts/test` when missing) in a temporary folder, on a free TCP port on 127.0.0.1.
PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (`runuser`).
Each test that needs a clean hub asks for a fresh database (`new_database`).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def bin_dir() -> Path:
    """The newest server binaries on this machine, or an AssertionError saying how to get them."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise AssertionError(
        "PostgreSQL server binaries not found: apt-get install postgresql (scripts/test does)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """initdb + pg_ctl start in a temporary folder; `stop()` removes everything.

    `durable=False` (tests) turns off fsync: the same engine, locks and isolation, without
    waiting on the disk. Benchmarks keep the default, durable commits, as a real hub would.
    """

    def __init__(self, durable: bool = False) -> None:
        self.bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="edgetutor-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        else:
            import getpass

            self.user = getpass.getuser()
        self._names = itertools.count(1)
        settings = [
            f"-p {self.port}",
            f"-k {self.root}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=300",
            "-c shared_buffers=128MB",
        ]
        if not durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", " ".join(settings), "start")  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            raise AssertionError(
                f"{tool} failed: {done.stderr.strip()} {log.read_text() if log.exists() else ''}"
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "hub") -> str:
        """A fresh empty database and its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump_tool(self, tool: str) -> list[str]:
        """The command line to run a client tool (pg_dump, pg_restore) as the server's user."""
        return [str(self.bin / tool)]

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
