"""Many devices syncing at once: a real hub (`edgetutor hub serve`, SQLite or PostgreSQL) on
loopback, hundreds of simulated devices, each an Ed25519 key with its own chain of signed results.

Every device enrols over HTTP with its own token, then sends its results in batches; `--clients`
threads play the devices concurrently, each over its own keep-alive connection. A 429 (a rate
limit) is waited out as the real client does (Retry-After) and counted. Reported: sustained
events/s over the sending phase, batch round trip median and p95, when the first limit answered,
and the check that matters: every event stored exactly once (events in the database = events
sent; no (device, seq) twice). Database bytes per event give the sizing note in docs/hub.md.

Each batch is sent as the device client sends it (sync/client.py): its JSON body and its
Idempotency-Key, so the hub checks and stores the key as it would in the field. Signing and
serialising are the device's cost and are done before the clock starts. All simulated devices share one
address (127.0.0.1): the per-address limit is raised for the run (`--per-address`), as a hub
behind which many clinics share one NAT address would be configured.

PostgreSQL is a real server started for the run from the OS's binaries (tests/postgres.py), with
fsync on, as a hub would run it.

Usage: python benchmarks/bench_hub_load.py [--engine sqlite|postgresql] [--workers 1]
       [--devices 200] [--events 50] [--batch 200] [--clients 16] [--per-address 5000/s:10000] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgetutor.sync import protocol  # noqa: E402
from edgetutor.sync.client import BATCH_SIZE, idempotency_key  # noqa: E402
from tests.hub_helpers import Device, Hub, issue_token, rows  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402


def run(
    devices: int,
    events: int,
    batch: int,
    clients: int,
    per_address: str,
    engine: str = "sqlite",
    workers: int = 1,
) -> dict[str, Any]:
    server = PostgresServer(durable=True) if engine == "postgresql" else None
    try:
        return _run(devices, events, batch, clients, per_address, server, workers)
    finally:
        if server is not None:
            server.stop()


def _sizes(events: int, batch: int) -> list[int]:
    """How many results each request carries: `batch` at a time, the rest in a last one."""
    return [min(batch, events - start) for start in range(0, events, batch)]


def _request(device_id: str, events: list[dict[str, Any]]) -> tuple[bytes, str]:
    """A batch as the device client sends it: the body and its Idempotency-Key."""
    return json.dumps({"device_id": device_id, "events": events}).encode(), idempotency_key(device_id, events)


def _db_bytes(db: Path | str) -> int:
    if isinstance(db, Path):
        return db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob("hub.db-*"))
    return int(rows(db, "SELECT pg_database_size(current_database())")[0][0])


def _run(
    devices: int,
    events: int,
    batch: int,
    clients: int,
    per_address: str,
    server: PostgresServer | None,
    workers: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgetutor-load-") as tmp:
        db: Path | str = server.new_database("load") if server else Path(tmp) / "hub.db"
        tokens = [issue_token(db, f"Site {i % 20}") for i in range(devices)]
        fleet = [Device() for _ in range(devices)]
        # Each device's results, split as the client splits its pending results (at most `batch`).
        batches = [
            [
                _request(d.id, d.events(n, trainee=f"Trainee {i}-{j}"))
                for j, n in enumerate(_sizes(events, batch))
            ]
            for i, d in enumerate(fleet)
        ]
        hub = Hub(db, workers=workers, args=("--per-address", per_address, "--per-device", "100/s:200"))
        host, port = hub.url.removeprefix("http://").split(":")
        lock = threading.Lock()
        latencies: list[float] = []
        limited = [0]
        first_limit: list[float] = []
        start_at = [0.0]

        def post(
            conn: http.client.HTTPConnection, path: str, body: dict[str, Any] | bytes, key: str | None = None
        ) -> dict[str, Any]:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
            while True:
                t0 = time.perf_counter()
                conn.request("POST", path, data, headers)
                resp = conn.getresponse()
                reply = json.loads(resp.read())
                took = time.perf_counter() - t0
                if resp.status == 429:
                    with lock:
                        limited[0] += 1
                        if not first_limit:
                            first_limit.append(time.perf_counter() - start_at[0])
                    time.sleep(float(resp.getheader("Retry-After") or 1))
                    continue
                if resp.status != 200:
                    raise RuntimeError(f"hub answered {resp.status}: {reply}")
                return {"reply": reply, "took": took}

        def play(i: int) -> int:
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            sent = 0
            for data, key in batches[i]:
                out = post(conn, f"{protocol.API}/events", data, key)
                with lock:
                    latencies.append(out["took"])
                sent += int(out["reply"]["accepted"])
            conn.close()
            return sent

        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            for device, token in zip(fleet, tokens, strict=True):
                post(conn, f"{protocol.API}/enroll", device.enroll_body(token))
            conn.close()
            start_at[0] = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                accepted = sum(pool.map(play, range(devices)))
            elapsed = time.perf_counter() - start_at[0]
        finally:
            hub.stop()
        sent = devices * events
        stored = rows(db, "SELECT count(*) FROM events")[0][0]
        doubled = rows(
            db,
            "SELECT count(*) FROM (SELECT device_id, seq FROM events GROUP BY 1, 2 HAVING count(*) > 1) AS doubled",
        )[0][0]
        size = _db_bytes(db)
        latencies.sort()
        return {
            "engine": "sqlite" if server is None else "postgresql",
            "workers": workers,
            "devices": devices,
            "events_sent": sent,
            "events_accepted": accepted,
            "events_stored": stored,
            "lost": sent - stored,
            "stored_twice": doubled,
            "seconds": round(elapsed, 2),
            "events_per_s": round(sent / elapsed),
            "batch_ms_median": round(statistics.median(latencies) * 1000, 1),
            "batch_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
            "limited_answers": limited[0],
            "first_limit_s": round(first_limit[0], 2) if first_limit else None,
            "db_bytes_per_event": round(size / max(stored, 1)),
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="hub server processes")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--events", type=int, default=50, help="results per device")
    parser.add_argument(
        "--batch", type=int, default=BATCH_SIZE, help="most results per request (default: as the client)"
    )
    parser.add_argument("--clients", type=int, default=16, help="devices syncing at the same moment")
    parser.add_argument("--per-address", default="5000/s:10000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        args.devices, args.events, args.batch, args.clients, args.per_address, args.engine, args.workers
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['devices']} devices, {result['events_sent']:,} events in batches of at most {args.batch}, "
            f"{args.clients} at once, into {result['engine']}: {result['events_per_s']:,} events/s sustained; "
            f"batch round trip median {result['batch_ms_median']} ms, p95 {result['batch_ms_p95']} ms; "
            f"lost {result['lost']}, stored twice {result['stored_twice']}; "
            f"429 answers {result['limited_answers']} (first after {result['first_limit_s']} s); "
            f"{result['db_bytes_per_event']:,} database bytes per event"
        )
    return result


if __name__ == "__main__":
    main()
