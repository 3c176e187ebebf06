"""Hub ingest speed: signed events accepted per second over real HTTP on loopback, into SQLite.

Starts `edgetutor hub serve --port 0` on 127.0.0.1 with a fresh database, enrolls one device,
signs N events beforehand (signing is the device's cost, not timed), then times, in one run:
- `ingest`: every event sent once, in batches of B over one keep-alive connection; each batch is
  verified (hash, Ed25519 signature, chain), stored and committed with a full fsync before the reply;
- `replay`: the same batches sent again (as after a lost reply): every event recognised, none stored.
Also reported: median and 95th-percentile batch round trip, and database bytes per event.

Usage: python benchmarks/bench_hub.py [--events N] [--batch B] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def payload(i: int) -> dict[str, Any]:
    total = (i * 37 % 100) / 100
    return {
        "attempt_id": uuid.uuid4().hex,
        "trainee": {"id": i % 40, "name": f"Trainee {i % 40}"},
        "pack": {"id": "demo", "version": 1, "digest": "d" * 64},
        "case": {
            "id": f"case-{i % 13}",
            "version": 1,
            "title": f"Case {i % 13}",
            "specialty": "general",
            "competencies": ["general", f"topic-{i % 5}"],
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgetutor.hub.db import HubDB
    from edgetutor.hub.ingest import new_token
    from edgetutor.packs.signing import key_id, public_pem
    from edgetutor.sync import protocol

    key = Ed25519PrivateKey.generate()
    device_id = key_id(key.public_key())
    events, prev = [], protocol.GENESIS
    for seq in range(1, args.events + 1):
        event = protocol.seal_event(
            key,
            event_id=uuid.uuid4().hex,
            device_id=device_id,
            seq=seq,
            prev=prev,
            created="2025-03-01T10:20:01+00:00",
            payload=payload(seq),
        )
        events.append(event)
        prev = event["hash"]
    batches = [
        json.dumps({"device_id": device_id, "events": events[i : i + args.batch]}).encode()
        for i in range(0, len(events), args.batch)
    ]

    with tempfile.TemporaryDirectory() as tmp_name:
        db = Path(tmp_name) / "hub.db"
        with HubDB(db) as hub_db:
            token = new_token(hub_db, "Bench Site")
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgetutor", "hub", "serve", "--db", str(db), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "listening on" not in line:
                raise SystemExit(f"hub did not start: {line!r}")
            port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

            def post(path: str, body: bytes, idem: str | None = None) -> dict[str, Any]:
                headers = {"Content-Type": "application/json"}
                if idem:
                    headers["Idempotency-Key"] = idem
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = json.loads(resp.read())
                if resp.status != 200:
                    raise SystemExit(f"hub answered {resp.status}: {data}")
                return data  # type: ignore[no-any-return]

            enroll = {
                "token": token,
                "device_id": device_id,
                "public_key": public_pem(key.public_key()),
                "label": "bench",
                "proof": protocol.enroll_proof(key, token, device_id),
            }
            post(f"{protocol.API}/enroll", json.dumps(enroll).encode())

            def run(tag: str) -> tuple[float, list[float], int]:
                latencies, accepted = [], 0
                start = time.perf_counter()
                for n, body in enumerate(batches):
                    t0 = time.perf_counter()
                    reply = post(f"{protocol.API}/events", body, f"{tag}-{n}")
                    latencies.append(time.perf_counter() - t0)
                    if reply["rejected"]:
                        raise SystemExit(f"refused: {reply['rejected'][:1]}")
                    accepted += reply["accepted"]
                return time.perf_counter() - start, latencies, accepted

            ingest_s, ingest_lat, accepted = run("first")
            replay_s, _, replayed_new = run("again")
            conn.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        size = sum(p.stat().st_size for p in db.parent.glob("hub.db*"))

    if accepted != args.events or replayed_new != 0:
        raise SystemExit(f"expected {args.events} accepted then 0, got {accepted} and {replayed_new}")
    ordered = sorted(ingest_lat)
    result: dict[str, Any] = {
        "events": args.events,
        "batch": args.batch,
        "ingest_s": round(ingest_s, 3),
        "events_per_s": round(args.events / ingest_s),
        "replay_s": round(replay_s, 3),
        "replay_events_per_s": round(args.events / replay_s),
        "batch_ms_median": round(statistics.median(ingest_lat) * 1000, 1),
        "batch_ms_p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1),
        "db_bytes_per_event": round(size / args.events),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Hub ingest over HTTP on loopback, SQLite, {args.events} events in batches of {args.batch}:")
        print(f"  ingest: {result['ingest_s']} s, {result['events_per_s']} events/s")
        print(f"  replay: {result['replay_s']} s, {result['replay_events_per_s']} events/s (nothing stored)")
        print(f"  batch round trip: median {result['batch_ms_median']} ms, p95 {result['batch_ms_p95']} ms")
        print(f"  database: {result['db_bytes_per_event']} bytes per event")
    return result


if __name__ == "__main__":
    main()
