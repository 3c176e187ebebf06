"""The one way tests and benchmarks start a hub, and devices that are only a key and a chain.

`Hub` runs the real `edgetutor hub serve` (uvicorn on a free port on 127.0.0.1) in its own
process over a SQLite file or a PostgreSQL URL; every hub and sync test, and the hub benchmarks,
start their hubs through it (the `sqlite_hub` fixture of tests/conftest.py is one on a fresh
SQLite file). No device code is involved in `Device`, so the hub is tested against the protocol
alone.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgetutor.packs.signing import key_id, public_pem
from edgetutor.sync import protocol

ROOT = Path(__file__).resolve().parents[1]
# The installed console script: what a user runs, in its own process.
EDGETUTOR = [str(Path(sys.executable).with_name("edgetutor"))]


def is_url(db: Path | str) -> bool:
    return isinstance(db, str) and db.startswith("postgresql://")


class Hub:
    """`edgetutor hub serve --db DB --host 127.0.0.1 --port 0` in its own process.

    `db` is a SQLite path or a postgresql:// URL; `extra_env` is added to the environment of the
    hub process and of the coordinator's commands (`run`), e.g. their own EDGETUTOR_HOME. Started
    by the constructor unless `start=False`; `stop()` ends it gracefully and returns what it
    logged on stderr.
    """

    def __init__(
        self,
        db: Path | str,
        extra_env: dict[str, str] | None = None,
        *,
        workers: int = 1,
        start: bool = True,
        args: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.extra_env = extra_env or {}
        self.workers = workers
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.line = ""
        self._stderr: Any = None
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> Hub:
        command = [sys.executable, "-m", "edgetutor", "hub", "serve", "--db", str(self.db)]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers), *self.args]
        # stderr goes to a file: a chatty hub can never block on a full pipe.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.5)[0]:
                line = self.proc.stdout.readline()
                match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if match:
                    self.line, self.port = line.strip(), int(match.group(1))
                    threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                    return self
                if not line:
                    break
            elif self.proc.poll() is not None:
                break
        err = self.stop(signal.SIGKILL)
        raise RuntimeError(f"hub did not start: {err!r}")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop (gracefully by default) and return what the hub logged on stderr."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
            self.proc = None
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text: str = self._stderr.read()
        self._stderr.close()
        self._stderr = None
        return text

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`edgetutor hub ARGS --db DB` as the coordinator runs it: the installed command, in its
        own process, with the hub's `extra_env`. Raises when it fails unless `check=False`."""
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **self.extra_env}
        command = [*EDGETUTOR, "hub", *args, "--db", str(self.db)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(
                f"edgetutor hub {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def enroll(self, site: str = "Kumasi") -> str:
        """A new enrollment token for `site`, issued with `edgetutor hub enroll`."""
        return self.run("enroll", "--site", site).stdout.strip()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON or raw bytes) for one HTTP request; errors are returned, not raised."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, payload, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, payload, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        return status, json.loads(payload) if "json" in ctype else payload

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def get_text(self, path: str) -> tuple[int, str]:
        """(status, body as text) of a GET: pages, CSV, and errors as their JSON text."""
        status, body = self.request("GET", path)
        return status, body.decode("utf-8") if isinstance(body, bytes) else json.dumps(body)

    def post(self, path: str, body: Any, idem: str | None = None) -> tuple[int, Any]:
        return self.request("POST", path, body, {"Idempotency-Key": idem} if idem else None)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return rows(self.db, sql, params)

    def seqs(self, device_id: str) -> list[int]:
        return stored_seqs(self.db, device_id)

    def event_ids(self) -> list[str]:
        return [r[0] for r in self.query("SELECT event_id FROM events ORDER BY device_id, seq")]


@contextmanager
def running_hub(db: Path | str, **kw: Any) -> Iterator[Hub]:
    hub = Hub(db, **kw)
    try:
        yield hub
    finally:
        hub.stop()


def payload(
    trainee: str = "Amina Okafor",
    case_id: str = "malaria-uncomplicated-adult",
    total: float = 0.8,
    *,
    trainee_id: int = 1,
    title: str | None = None,
    specialty: str = "infectious-disease",
    competencies: tuple[str, ...] = ("malaria", "fever"),
    ended: str = "2025-03-01T10:20:00+00:00",
    pass_mark: float = 0.6,
    attempt_id: str | None = None,
) -> dict[str, Any]:
    """An attempt.finished payload as a device writes it."""
    return {
        "attempt_id": attempt_id or uuid.uuid4().hex,
        "trainee": {"id": trainee_id, "name": trainee},
        "pack": {"id": "demo", "version": 1, "digest": "d" * 64},
        "case": {
            "id": case_id,
            "version": 1,
            "title": title or case_id.replace("-", " ").capitalize(),
            "specialty": specialty,
            "competencies": [specialty, *competencies],
        },
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "started": "2025-03-01T10:00:00+00:00",
        "ended": ended,
        "seconds": 1200.0,
        "turns": 14,
        "score": {
            "total": total,
            "raw": total * 40,
            "passed": total >= pass_mark,
            "pass_mark": pass_mark,
            "domains": {"history": total, "diagnosis": total},
            "scorer_version": "1",
        },
        "debrief": {"missed": [], "critical": [], "stewardship": []},
        "extra_key_from_a_newer_device": True,
    }


class Device:
    """A device as the hub sees it: a key, an id and the head of its chain."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.id = key_id(self.key.public_key())
        self.pem = public_pem(self.key.public_key())
        self.seq = 0
        self.head = protocol.GENESIS

    def event(self, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """The next event of the chain (advancing it), or any event when seq/prev are given."""
        seq = kw.pop("seq", None)
        prev = kw.pop("prev", None)
        key = kw.pop("key", self.key)
        chained = seq is None and prev is None
        event = protocol.seal_event(
            key,
            event_id=kw.pop("event_id", uuid.uuid4().hex),
            device_id=kw.pop("device_id", self.id),
            seq=self.seq + 1 if seq is None else seq,
            prev=self.head if prev is None else prev,
            created=kw.pop("created", "2025-03-01T10:20:01+00:00"),
            payload=body if body is not None else payload(**kw),
        )
        if chained:
            self.seq, self.head = event["seq"], event["hash"]
        return event

    def events(self, n: int, **kw: Any) -> list[dict[str, Any]]:
        return [self.event(**kw) for _ in range(n)]

    def enroll_body(self, token: str, label: str = "laptop") -> dict[str, Any]:
        return {
            "token": token,
            "device_id": self.id,
            "public_key": self.pem,
            "label": label,
            "proof": protocol.enroll_proof(self.key, token, self.id),
        }

    def bundle(self, events: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
        return protocol.seal_bundle(
            self.key,
            {
                "v": protocol.PROTOCOL_VERSION,
                "kind": protocol.BUNDLE_KIND,
                "device_id": self.id,
                "public_key": self.pem,
                "created": "2025-03-02T08:00:00+00:00",
                "enroll": {"token": token} if token else None,
                "events": events,
            },
        )


def issue_token(db: Path | str, site: str = "Kisumu Clinic", label: str | None = None) -> str:
    from edgetutor.hub.db import HubDB
    from edgetutor.hub.ingest import new_token

    with HubDB(db) as hub_db:
        return new_token(hub_db, site, label)


def enrolled(hub: Hub, site: str = "Kisumu Clinic") -> Device:
    device = Device()
    status, reply = hub.post(f"{protocol.API}/enroll", device.enroll_body(issue_token(hub.db, site)))
    assert status == 200, reply
    return device


def rows(db: Path | str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Query the hub database directly, as a coordinator's auditor would: read-only on SQLite,
    a fresh connection on PostgreSQL (either way it sees only what was committed)."""
    if is_url(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), params).fetchall()]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stored_seqs(db: Path | str, device_id: str) -> list[int]:
    return [r[0] for r in rows(db, "SELECT seq FROM events WHERE device_id = ? ORDER BY seq", (device_id,))]


def wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False
