"""Result sync speed: N pending results sent over loopback to a real hub.

Builds a device database with N finished, scored attempts (default 10,000; one real checklist
score reused with different totals), seals their signed, chained events through the store's own
back-fill path (`seal`), starts `edgetutor hub serve` on 127.0.0.1 as a subprocess (tests/hub_helpers.Hub), enrolls,
then times one `edgetutor.sync.client.sync()` that sends them all (`sync`), and a second sync
with nothing to send (`resync`: the cost of asking the hub where it stands). Packs are not pulled.

Usage: python benchmarks/bench_sync.py [--events N] [--batch-size B] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hub_helpers import Hub  # noqa: E402  (the one way a hub is started)

EXAMPLE = ROOT / "casepacks" / "demo" / "cases" / "malaria-uncomplicated-adult.yaml"
EDGETUTOR = str(Path(sys.executable).with_name("edgetutor"))


def fill(store: Any, n: int) -> None:
    """N finished, scored attempts written straight into the database (one transaction)."""
    from edgetutor.cases.loader import load_case
    from edgetutor.scoring.checklist import Transcript, score

    case = load_case(EXAMPLE)
    pack = {"id": "bench-pack", "version": 1, "digest": "sha256:" + "0" * 64}
    base = score(
        case, Transcript(["fever"], ["vitals"], [], "malaria", "artemether", 6, 300.0), pack
    ).as_dict()
    db = store.db
    trainees = [store.trainee(f"Trainee {i:03d}").id for i in range(50)]
    db.execute("BEGIN IMMEDIATE")
    for i in range(n):
        attempt_id = uuid.uuid4().hex
        started = "2025-01-01T08:00:00.000+00:00"
        ended = f"2025-01-01T{8 + i // 3600 % 16:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000+00:00"
        detail = dict(base, total=round((i % 100) / 100, 2), passed=i % 100 >= 60)
        db.execute(
            "INSERT INTO attempts (id, trainee_id, pack_id, pack_version, pack_digest, case_id, case_version,"
            " model, started, ended, status) VALUES (?, ?, ?, 1, ?, ?, ?, NULL, ?, ?, 'finished')",
            [
                attempt_id,
                trainees[i % len(trainees)],
                pack["id"],
                pack["digest"],
                case.id,
                case.version,
                started,
                ended,
            ],
        )
        db.execute(
            "INSERT INTO scores (attempt_id, total, passed, pack_id, pack_version, pack_digest, scorer_version,"
            " detail, created) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
            [attempt_id, detail["total"], int(detail["passed"]), pack["id"], pack["digest"],
             detail["scorer_version"], json.dumps(detail), ended],
        )  # fmt: skip
    db.conn.commit()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "device"
        previous = os.environ.get("EDGETUTOR_HOME")
        os.environ["EDGETUTOR_HOME"] = str(home)
        hub_env = {**os.environ, "EDGETUTOR_HOME": str(tmp / "hub-home")}
        hub_db = tmp / "hub.db"
        hub: Hub | None = None
        try:
            from edgetutor.service import open_store
            from edgetutor.sync import client

            with open_store() as store:
                fill(store, args.events)
                start = time.perf_counter()
                sealed = store.seal_backlog()
                seal_s = time.perf_counter() - start
                body_bytes = sum(len(json.dumps(e)) for e in store.events(limit=100)) / min(100, sealed)
                token = subprocess.run(
                    [EDGETUTOR, "hub", "enroll", "--db", str(hub_db), "--site", "Bench"],
                    env=hub_env, capture_output=True, text=True, check=True,
                ).stdout.strip()  # fmt: skip
                hub = Hub(hub_db, {"EDGETUTOR_HOME": hub_env["EDGETUTOR_HOME"]})
                url = hub.url
                start = time.perf_counter()
                report = client.sync(store, url, token, batch_size=args.batch_size, pull=False)
                sync_s = time.perf_counter() - start
                start = time.perf_counter()
                again = client.sync(store, url, pull=False)
                resync_s = time.perf_counter() - start
                pending = store.pending_count()
            conn = sqlite3.connect(hub_db)
            hub_events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            conn.close()
        finally:
            if hub is not None:
                hub.stop()
            if previous is None:
                os.environ.pop("EDGETUTOR_HOME", None)
            else:
                os.environ["EDGETUTOR_HOME"] = previous

    result: dict[str, Any] = {
        "events": sealed,
        "batch_size": args.batch_size,
        "event_bytes": round(body_bytes),
        "seal_s": round(seal_s, 3),
        "seal_per_s": round(sealed / seal_s),
        "sync_s": round(sync_s, 3),
        "sync_per_s": round(report.sent / sync_s),
        "sent": report.sent,
        "resync_s": round(resync_s, 3),
        "resent": again.sent,
        "pending_after": pending,
        "hub_events": hub_events,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{sealed} results, ~{result['event_bytes']} bytes each, batches of {args.batch_size}")
        print(f"seal (sign + chain + outbox): {seal_s:.2f} s, {result['seal_per_s']} events/s")
        print(f"sync to a hub over loopback: {sync_s:.2f} s, {result['sync_per_s']} events/s")
        print(f"second sync (nothing to send): {resync_s * 1000:.0f} ms")
        print(f"hub holds {hub_events} events; {pending} pending on the device")
    return result


if __name__ == "__main__":
    main()
