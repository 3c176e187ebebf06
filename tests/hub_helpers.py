"""A real hub in a subprocess, and devices that are only an Ed25519 key and a chain of events.

Used by the hub tests, the dashboard test and the hub benchmark: no device code is involved, so
the hub is tested against the protocol alone.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgetutor.packs.signing import key_id, public_pem
from edgetutor.sync import protocol

ROOT = Path(__file__).resolve().parents[1]


class Hub:
    """`edgetutor hub serve --port 0` on 127.0.0.1, started and stopped by the caller."""

    def __init__(
        self, db: Path, extra_env: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgetutor",
                "hub",
                "serve",
                "--db",
                str(db),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(extra_env or {})},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the hub prints this once it is listening
        if "listening on" not in line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise RuntimeError(f"hub did not start: {line!r} {err!r}")
        self.line = line.strip()
        self.url = line.split("listening on ")[1].split()[0]

    def stop(self) -> str:
        """Stop gracefully (SIGTERM) and return what the hub logged on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=20)
        return err

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=20)

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


def issue_token(db: Path, site: str = "Kisumu Clinic", label: str | None = None) -> str:
    from edgetutor.hub.db import HubDB
    from edgetutor.hub.ingest import new_token

    with HubDB(db) as hub_db:
        return new_token(hub_db, site, label)


def enrolled(hub: Hub, site: str = "Kisumu Clinic") -> Device:
    device = Device()
    status, reply = hub.post(f"{protocol.API}/enroll", device.enroll_body(issue_token(hub.db, site)))
    assert status == 200, reply
    return device


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Query the hub database directly (read-only), as a coordinator's auditor would."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stored_seqs(db: Path, device_id: str) -> list[int]:
    return [r[0] for r in rows(db, "SELECT seq FROM events WHERE device_id = ? ORDER BY seq", (device_id,))]


def wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False
