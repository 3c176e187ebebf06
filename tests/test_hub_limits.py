"""Credentials that expire and limits that answer clearly, on a real hub over HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.cli import make_cli
from edgetutor.hub.db import HubDB
from edgetutor.hub.limits import Buckets, Rate, RateLimited, SharedBuckets, create_table
from edgetutor.sync import protocol
from tests.hub_helpers import Device, Hub, enrolled, issue_token, rows


def test_a_bucket_refills_at_its_rate() -> None:
    buckets = Buckets(Rate(2.0, 3), "device")
    for _ in range(3):
        buckets.take("d1", now=100.0)
    with pytest.raises(RateLimited) as err:
        buckets.take("d1", now=100.0)
    assert err.value.status == 429 and err.value.retry_after == 1
    assert str(err.value) == "too many requests from this device (limit 2/s): retry in 0.5 s"
    buckets.take("d2", now=100.0)  # another key has its own bucket
    buckets.take("d1", now=100.5)  # half a second later: one token back
    assert buckets.first_hit == 100.0
    assert Rate.parse("50/s:200") == Rate(50.0, 200)
    with pytest.raises(ValueError, match="a rate is written like 50/s:200"):
        Rate.parse("fast")


def test_workers_sharing_a_table_share_each_bucket(tmp_path: Path) -> None:
    table = tmp_path / "device.table"
    create_table(table)
    # two workers' views of one table: a token spent in one is gone in the other
    one, two = SharedBuckets(Rate(2.0, 3), "device", table), SharedBuckets(Rate(2.0, 3), "device", table)
    one.take("d1", now=100.0)
    two.take("d1", now=100.0)
    one.take("d1", now=100.0)
    with pytest.raises(RateLimited) as err:
        two.take("d1", now=100.0)
    assert str(err.value) == "too many requests from this device (limit 2/s): retry in 0.5 s"
    one.take("d2", now=100.0)  # another key has its own bucket
    two.take("d1", now=100.5)  # half a second later: one token back, seen by every worker
    with pytest.raises(RateLimited):
        one.take("d1", now=100.5)
    assert two.first_hit == 100.0 and one.first_hit == 100.5
    one.close()
    two.close()


def test_a_full_shared_table_forgets_the_stalest_bucket_and_never_grows(tmp_path: Path) -> None:
    table = tmp_path / "address.table"
    create_table(table, slots=16)
    size = table.stat().st_size
    buckets = SharedBuckets(Rate(1.0, 1), "address", table)
    for i in range(500):  # a flood of made-up addresses, each with its one token
        buckets.take(f"10.0.{i // 256}.{i % 256}", now=1000.0 + i / 1000)
    buckets.take("10.9.9.9", now=1001.0)
    with pytest.raises(RateLimited):  # its bucket was kept while the table was full
        buckets.take("10.9.9.9", now=1001.0)
    buckets.close()
    assert table.stat().st_size == size


TAKE_FIVE = """
import contextlib, sys
from pathlib import Path
from edgetutor.hub.limits import Rate, RateLimited, SharedBuckets
buckets = SharedBuckets(Rate(0.001, 5), "address", Path(sys.argv[1]))
sys.stdin.readline()  # both processes start taking together
taken = 0
for _ in range(5):
    with contextlib.suppress(RateLimited):
        buckets.take("10.0.0.1")
        taken += 1
print(taken)
"""


def test_two_worker_processes_spend_one_bucket(tmp_path: Path) -> None:
    table = tmp_path / "address.table"
    create_table(table)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", TAKE_FIVE, str(table)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate("go\n", timeout=60)[0] for w in workers]
    # 5 tokens for the address in all: each process alone would have taken 5
    assert sum(int(out) for out in outputs) == 5, outputs


def test_a_hub_with_workers_limits_from_tables_it_removes_when_it_stops(tmp_path: Path) -> None:
    before = set(Path(tempfile.gettempdir()).glob("edgetutor-hub-limits-*"))
    # 4 requests per address in all (refilled once in 100 s). The kernel may hand every
    # connection to one worker; the test above shows two processes spending one bucket.
    hub = Hub(tmp_path / "hub.db", workers=2, args=("--per-address", "0.01/s:4"))
    try:
        tables = set(Path(tempfile.gettempdir()).glob("edgetutor-hub-limits-*")) - before
        assert len(tables) == 1
        statuses = []
        for _ in range(12):
            try:
                with urllib.request.urlopen(f"{hub.url}{protocol.API}/packs", timeout=30) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as err:
                statuses.append(err.code)
    finally:
        log = hub.stop()
    assert statuses.count(200) == 4 and statuses.count(429) == 8, (statuses, log)
    assert not any(t.exists() for t in tables)


def test_an_expired_enrolment_token_is_refused_and_enrols_nothing(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    token = issue_token(db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE tokens SET expires = '2020-01-01T00:00:00.000+00:00'")
    conn.commit()
    conn.close()
    hub = Hub(db)
    try:
        status, reply = hub.post(f"{protocol.API}/enroll", Device().enroll_body(token))
    finally:
        hub.stop()
    assert status == 403
    assert reply["error"] == "enrollment token expired on 2020-01-01 00:00 UTC; issue a new one"
    assert rows(db, "SELECT count(*) FROM devices") == [(0,)]
    assert rows(db, "SELECT used_by FROM tokens") == [(None,)]


def test_enrol_tokens_default_to_seven_days_and_the_cli_checks_the_range(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    runner = CliRunner()
    ok = runner.invoke(make_cli(), ["hub", "enroll", "--db", str(db), "--site", "Kisumu"])
    assert ok.exit_code == 0 and "valid 7 days" in ok.output
    ((created, expires),) = rows(db, "SELECT created, expires FROM tokens")
    from datetime import datetime

    span = datetime.fromisoformat(expires) - datetime.fromisoformat(created)
    assert span.days == 7 and span.seconds == 0
    bad = runner.invoke(
        make_cli(), ["hub", "enroll", "--db", str(db), "--site", "Kisumu", "--valid-days", "365"]
    )
    assert bad.exit_code == 1 and "at most 90 days" in bad.output
    assert rows(db, "SELECT count(*) FROM tokens") == [(1,)]  # nothing written for the refused one
    with HubDB(db) as hub_db:
        assert hub_db.open_tokens() == 1


def _post_raw(url: str, body: dict[str, object]) -> tuple[int, dict[str, str], dict[str, object]]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read())


def test_a_device_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hub.db", args=("--per-device", "0.2/s:2"))
    try:
        device = enrolled(hub)
        url = hub.url + f"{protocol.API}/events"
        answers = [_post_raw(url, {"device_id": device.id, "events": [device.event()]}) for _ in range(3)]
    finally:
        hub.stop()
    (s1, _, r1), (s2, _, r2), (s3, headers, r3) = answers
    assert (s1, s2, s3) == (200, 200, 429)
    assert r1["accepted"] == r2["accepted"] == 1
    assert str(r3["error"]).startswith("too many requests from this device (limit 0.2/s): retry in ")
    assert int(headers["retry-after"]) >= 1
    # the refused batch stored nothing: the device resends it after the wait
    assert rows(tmp_path / "hub.db", "SELECT count(*) FROM events") == [(2,)]


def test_old_idempotency_records_are_pruned_and_a_late_replay_still_stores_nothing_twice(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hub.db"
    hub = Hub(db)
    try:
        device = enrolled(hub)
        batch = {"device_id": device.id, "events": device.events(3)}
        status, first = hub.post(f"{protocol.API}/events", batch, idem="k1")
        assert status == 200 and first["accepted"] == 3
    finally:
        hub.stop()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE idempotency SET created = '2020-01-01T00:00:00.000+00:00'")
    conn.commit()
    conn.close()
    with HubDB(db) as hub_db:
        assert hub_db.prune_idempotency(30) == 1
    assert rows(db, "SELECT count(*) FROM idempotency") == [(0,)]
    hub = Hub(db)
    try:
        status, again = hub.post(f"{protocol.API}/events", batch, idem="k1")
    finally:
        hub.stop()
    assert status == 200 and again["accepted"] == 0 and again["acked_seq"] == 3
    assert rows(db, "SELECT count(*) FROM events") == [(3,)]


@pytest.mark.slow
def test_the_device_client_backs_off_and_finishes_under_a_tight_limit(tmp_path: Path) -> None:
    """A real device syncs 30 results in batches of 5 to a hub that allows one batch a second."""
    from edgetutor.service import open_store
    from edgetutor.sync.client import sync
    from tests.sync_helpers import finish

    hub = Hub(tmp_path / "hub.db", args=("--per-device", "1/s:1"))
    try:
        with open_store() as store:
            for _ in range(30):
                finish(store)
            start = time.monotonic()
            report = sync(
                store, hub.url, issue_token(hub.db), batch_size=5, tries=8, base_delay=0.2, pull=False
            )
            took = time.monotonic() - start
            assert store.pending_count() == 0
        assert report.sent == 30
    finally:
        hub.stop()
    assert rows(tmp_path / "hub.db", "SELECT count(*) FROM events") == [(30,)]
    assert took >= 4  # six batches at one a second: it waited rather than failed
