"""Hub load: hundreds of simulated devices syncing at once, over real HTTP on loopback.

Starts the real `edgetutor hub serve` (through tests/hub_helpers.py, the one way the test suite
starts a hub) on SQLite or on a real PostgreSQL server with durable commits (tests/postgres.py),
enrolls D devices, signs E events per device beforehand (signing is each device's own cost, not
the hub's: not timed), then times C concurrent clients, each taking the next device and sending
its whole chain in batches of B over one keep-alive connection, as a device's sync does.

Reported: sustained events/s (all events / wall time), batch round trip median and p95, the
first refusal that was not a 200 (a limit: status and message; "none" when nothing refused),
and a check of the database afterwards: events lost and duplicated (both must be 0), and the
database bytes per event. Then the same batches again (`replay`: every event recognised, none
stored), which is what a hub sees after devices lose its replies.

All simulated devices share one address (127.0.0.1): the per-address limit is raised for the run
(`--per-address`, default 5000/s:10000), as a hub behind which many clinics share one NAT address
would be configured. With the hub's default (50 requests/s per address, for the whole hub
whatever its workers) the limit, not the hub, would set the figure.

Usage: python benchmarks/bench_hub.py [--engine sqlite|postgresql] [--devices D]
       [--events-per-device E] [--batch B] [--clients C] [--workers W] [--per-address R] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hub_helpers import Device, Hub, issue_token, rows  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402


def payload(i: int) -> dict[str, Any]:
    total = (i * 37 % 100) / 100
    return {
        "attempt_id": uuid.uuid4().hex,
        "trainee": {"id": i % 40, "name": f"Trainee {i % 40}"},
        "pack": {"id": "national", "version": 1, "digest": "d" * 64},
        "case": {
            "id": f"case-{i % 13}",
            "version": 1,
            "title": f"Case {i % 13}",
            "specialty": "general",
            "competencies": ["history-taking", "diagnosis"],
        },
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "started": "2025-03-01T10:00:00+00:00",
        "ended": "2025-03-01T10:20:00+00:00",
        "seconds": 1200.0,
        "turns": 14,
        "score": {
            "total": total,
            "raw": total * 40,
            "passed": total >= 0.6,
            "pass_mark": 0.6,
            "domains": {"history": total, "examination": total, "diagnosis": total},
            "scorer_version": "1",
        },
        "debrief": {"missed": [{"id": "h1", "description": "Asked about travel", "domain": "history"}]},
    }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


class Load:
    """The devices' prepared requests and what the clients measured."""

    def __init__(self, hub: Hub, bodies: dict[str, list[bytes]], clients: int) -> None:
        self.hub, self.bodies, self.clients = hub, bodies, clients
        self.latencies: list[float] = []
        self.first_refusal: str | None = None
        self.accepted = 0
        self.replayed = 0
        self.lock = threading.Lock()

    def run(self, tag: str) -> float:
        todo: queue.Queue[str] = queue.Queue()
        for device_id in self.bodies:
            todo.put(device_id)

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.hub.port, timeout=300)
            while True:
                try:
                    device_id = todo.get_nowait()
                except queue.Empty:
                    break
                for n, body in enumerate(self.bodies[device_id]):
                    headers = {"Content-Type": "application/json", "Idempotency-Key": f"{tag}-{n}"}
                    while True:
                        t0 = time.perf_counter()
                        conn.request("POST", "/api/v1/events", body=body, headers=headers)
                        resp = conn.getresponse()
                        data = json.loads(resp.read())
                        took = time.perf_counter() - t0
                        if resp.status == 200:
                            break
                        with self.lock:
                            self.first_refusal = self.first_refusal or f"{resp.status}: {data.get('error')}"
                        time.sleep(float(resp.headers.get("Retry-After", "1")))
                    with self.lock:
                        self.latencies.append(took)
                        self.accepted += data["accepted"]
                        self.replayed += data["replayed"]
                        if data["rejected"]:
                            raise SystemExit(f"refused: {data['rejected'][:1]}")
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(self.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--events-per-device", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--per-address", default="5000/s:10000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from edgetutor.sync import protocol

    devices = [Device() for _ in range(args.devices)]
    chains = {d.id: [d.event(payload(i)) for i in range(args.events_per_device)] for d in devices}
    bodies = {
        device_id: [
            json.dumps({"device_id": device_id, "events": chain[i : i + args.batch]}).encode()
            for i in range(0, len(chain), args.batch)
        ]
        for device_id, chain in chains.items()
    }
    total = args.devices * args.events_per_device
    server = PostgresServer(durable=True) if args.engine == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp_name:
        db: Path | str = server.new_database("bench") if server else Path(tmp_name) / "hub.db"
        hub = Hub(db, workers=args.workers, args=("--per-address", args.per_address))
        try:
            for d in devices:
                token = issue_token(db, f"District {hash(d.id) % 20} / Site {hash(d.id) % 500}")
                status, reply = hub.post(f"{protocol.API}/enroll", d.enroll_body(token, "bench"))
                if status != 200:
                    raise SystemExit(f"enroll refused: {reply}")
            load = Load(hub, bodies, args.clients)
            ingest_s = load.run("first")
            ingest_lat, accepted = load.latencies, load.accepted
            load.latencies, load.accepted = [], 0
            replay_s = load.run("again")
            stored = rows(db, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")[0]
            if server:
                size = int(rows(db, "SELECT pg_database_size(current_database())")[0][0])
            else:
                size = sum(p.stat().st_size for p in Path(tmp_name).glob("hub.db*"))
        finally:
            hub.stop()
            if server:
                server.stop()

    result: dict[str, Any] = {
        "engine": args.engine,
        "workers": args.workers,
        "devices": args.devices,
        "events": total,
        "batch": args.batch,
        "clients": args.clients,
        "events_per_s": round(total / ingest_s),
        "batch_ms_median": round(statistics.median(ingest_lat) * 1000, 1),
        "batch_ms_p95": round(p95(ingest_lat) * 1000, 1),
        "replay_events_per_s": round(total / replay_s),
        "first_limit_hit": load.first_refusal or "none",
        "lost": total - int(stored[1]),
        "duplicated": int(stored[0]) - int(stored[1]),
        "accepted": accepted,
        "db_bytes_per_event": round(size / total),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"Hub load, {args.engine}, {args.workers} worker(s): {args.devices} devices x "
            f"{args.events_per_device} events, batches of {args.batch}, {args.clients} concurrent clients"
        )
        print(f"  ingest: {result['events_per_s']} events/s sustained")
        print(f"  batch round trip: median {result['batch_ms_median']} ms, p95 {result['batch_ms_p95']} ms")
        print(f"  replay: {result['replay_events_per_s']} events/s (nothing stored)")
        print(f"  first limit hit: {result['first_limit_hit']}")
        print(f"  lost {result['lost']}, duplicated {result['duplicated']}")
        print(f"  database: {result['db_bytes_per_event']} bytes per event")
    if result["lost"] or result["duplicated"] or accepted != total:
        raise SystemExit(f"integrity check failed: {result}")
    return result


if __name__ == "__main__":
    main()
