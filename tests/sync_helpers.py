"""Helpers for the result-sync tests: real scored attempts, the `edgetutor` command, loopback proxies.

The hub itself is `tests.hub_helpers.Hub` (the `sqlite_hub` fixture of tests/conftest.py).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from edgetutor.cases.loader import load_case
from edgetutor.cases.schema import Case
from edgetutor.scoring.checklist import Transcript, score
from edgetutor.store.db import Attempt, Store
from edgetutor.sync.events import case_info

from .conftest import EXAMPLE_CASE
from .hub_helpers import EDGETUTOR

PACK = {"id": "test-pack", "version": 1, "digest": "sha256:" + "ab" * 32}


def example_case() -> Case:
    return load_case(EXAMPLE_CASE)


def finish(
    store: Store,
    trainee: str = "Ama",
    diagnosis: str | None = "uncomplicated falciparum malaria",
    case: Case | None = None,
    model: str | None = None,
) -> Attempt:
    """A real scored attempt: started, answered, scored by the checklist scorer, finished (which
    seals its result event). Faster than playing an encounter, same store path as the app."""
    case = case or example_case()
    person = store.trainee(trainee)
    attempt = store.start_attempt(
        person, PACK["id"], PACK["version"], PACK["digest"], case.id, case.version, model
    )
    store.record_turn(attempt.id, "diagnose", diagnosis or "", [], "Noted.", "system")
    store.set_answer(attempt.id, diagnosis=diagnosis)
    transcript = Transcript(["fever"], ["vitals"], [], diagnosis, "artemether-lumefantrine", 3, 42.0)
    result = score(case, transcript, PACK)
    return store.finish_attempt(attempt.id, result.as_dict(), case_info(case))


def cli(*args: str, home: Path, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `edgetutor ARGS` as its own process with EDGETUTOR_HOME=home."""
    env = {**os.environ, "EDGETUTOR_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([*EDGETUTOR, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"edgetutor {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


class Proxy:
    """A loopback TCP proxy in front of the hub, one HTTP request per connection.

    mode "forward": pass everything through (optionally slowly: `delay` seconds per 4 kB sent
    upstream, so a batch is still in flight when a test acts).
    mode "drop": forward the request, read the hub's whole answer (so the hub has committed),
    then close the client's socket without sending it: the "committed but never heard" case.
    `drops` limits how many requests are dropped (then it forwards), counting only requests
    whose first line contains `match`.
    """

    def __init__(
        self, upstream: int, mode: str = "forward", match: str = "", drops: int = 1 << 30, delay: float = 0.0
    ) -> None:
        self.upstream = upstream
        self.mode, self.match, self.drops, self.delay = mode, match, drops, delay
        self.dropped = 0
        self.requests: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)  # accept() wakes up to notice close()
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _read_request(self, client: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, client: socket.socket) -> None:
        try:
            request = self._read_request(client)
            if not request:
                return
            first = request.split(b"\r\n", 1)[0].decode("latin-1")
            self.requests.append(first)
            # One request per connection, answered in full before closing.
            request = request.replace(b"Connection: keep-alive", b"Connection: close")
            drop = self.mode == "drop" and self.match in first and self.dropped < self.drops
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=60)
            except OSError:
                return  # hub down: the client sees its connection closed
            with up:
                if self.delay:
                    for i in range(0, len(request), 4096):
                        up.sendall(request[i : i + 4096])
                        time.sleep(self.delay)
                else:
                    up.sendall(request)
                answer = b""
                while True:
                    try:
                        chunk = up.recv(65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    answer += chunk
            if drop:
                self.dropped += 1
                return  # the hub answered; the client never hears it
            client.sendall(answer)
        except OSError:
            return
        finally:
            client.close()


def device_events(home: Path) -> list[tuple[int, str, str]]:
    """(seq, event_id, outbox state) of every event in a device database."""
    conn = sqlite3.connect(home / "edgetutor.db")
    try:
        return conn.execute(
            "SELECT e.seq, e.event_id, o.state FROM events e JOIN outbox o ON o.seq = e.seq ORDER BY e.seq"
        ).fetchall()
    finally:
        conn.close()
