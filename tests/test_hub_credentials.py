"""Device credentials: enrollment tokens expire, keys are rotated and revoked from the command
line, and no secret reaches the hub's log. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgetutor.cli import make_cli
from edgetutor.hub.db import HubDB, token_hash
from edgetutor.sync import protocol
from tests.conftest import ENGINES, hub_database
from tests.hub_helpers import Device, Hub, enrolled, issue_token, rows
from tests.postgres import PostgresServer

API = protocol.API


@pytest.fixture(scope="module", params=ENGINES)
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[Hub]:
    server = Hub(
        hub_database(request.param, tmp_path_factory.mktemp("hub"), postgres), args=("--log-level", "info")
    )
    yield server
    server.stop()


def cli(*args: str) -> Any:
    return CliRunner().invoke(make_cli(), list(args))


def state(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in ("tokens", "devices", "events")}


def expire(db: Path | str, token: str) -> None:
    """Move a token's expiry into the past, as the passing of its lifetime would."""
    with HubDB(db) as hub_db, hub_db.write():
        hub_db.run(
            "UPDATE tokens SET expires = ? WHERE hash = ?",
            ("2020-01-01T00:00:00.000+00:00", token_hash(token)),
        )


def test_a_token_expires_after_seven_days_by_default(hub: Hub) -> None:
    result = cli("hub", "enroll", "--db", str(hub.db), "--site", "Kisumu Clinic")
    assert result.exit_code == 0 and "valid 7 days" in result.stderr
    token = result.stdout.strip()
    expires = rows(hub.db, "SELECT expires FROM tokens WHERE hash = ?", (token_hash(token),))[0][0]
    left = dt.datetime.fromisoformat(expires) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=7) - dt.timedelta(minutes=5) < left <= dt.timedelta(days=7)
    short = cli(
        "hub", "enroll", "--db", str(hub.db), "--site", "Kisumu Clinic", "--valid-days", "0.5"
    ).stdout.strip()
    expires = rows(hub.db, "SELECT expires FROM tokens WHERE hash = ?", (token_hash(short),))[0][0]
    assert dt.datetime.fromisoformat(expires) - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)


def test_a_lifetime_out_of_bounds_is_refused_and_issues_nothing(hub: Hub) -> None:
    before = state(hub.db)
    for days in ("0", "-1", "91"):
        result = cli("hub", "enroll", "--db", str(hub.db), "--site", "Kisumu Clinic", "--valid-days", days)
        assert result.exit_code == 1
        assert result.output == "Error: a token is valid for more than 0 and at most 90 days\n"
    assert state(hub.db) == before


def test_an_expired_token_enrolls_nothing_over_the_network_or_by_usb(hub: Hub, tmp_path: Path) -> None:
    token = issue_token(hub.db)
    expire(hub.db, token)
    device = Device()
    before = state(hub.db)
    status, reply = hub.post(f"{API}/enroll", device.enroll_body(token))
    assert status == 403
    assert reply == {"error": "enrollment token expired on 2020-01-01 00:00 UTC; issue a new one"}
    bundle = tmp_path / "results.etres"
    bundle.write_text(json.dumps(device.bundle(device.events(2), token=token)), encoding="utf-8")
    result = cli("hub", "import", str(bundle), "--db", str(hub.db))
    assert result.exit_code == 1
    assert result.output == "Error: enrollment token expired on 2020-01-01 00:00 UTC; issue a new one\n"
    assert state(hub.db) == before


def test_a_device_that_enrolled_may_repeat_its_enrollment_after_the_token_expired(hub: Hub) -> None:
    # A device that lost the hub's reply retries: harmless, whatever the date.
    device, token = Device(), issue_token(hub.db)
    assert hub.post(f"{API}/enroll", device.enroll_body(token))[0] == 200
    expire(hub.db, token)
    status, reply = hub.post(f"{API}/enroll", device.enroll_body(token))
    assert status == 200 and reply["device_id"] == device.id


def test_rotation_retires_the_old_key_and_enrolls_the_new_one_in_its_place(hub: Hub) -> None:
    old = enrolled(hub, site="Lodwar Health Centre")
    assert hub.post(f"{API}/events", {"device_id": old.id, "events": old.events(2)})[1]["acked_seq"] == 2
    result = cli("hub", "rotate", old.id, "--db", str(hub.db))
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token not in result.stderr and f"Device {old.id} can send nothing more" in result.stderr
    status, reply = hub.post(f"{API}/events", {"device_id": old.id, "events": old.events(1)})
    assert status == 403 and reply == {"error": f"device {old.id} is revoked"}
    new = Device()
    status, reply = hub.post(f"{API}/enroll", new.enroll_body(token, label="ignored"))
    assert status == 200 and reply["site"] == "Lodwar Health Centre"
    assert rows(
        hub.db,
        "SELECT id, revoked_reason, replaces FROM devices WHERE id IN (?, ?) ORDER BY enrolled",
        (old.id, new.id),
    ) == [
        (old.id, "rotated", None),
        (new.id, None, old.id),
    ]
    assert rows(hub.db, "SELECT COUNT(*) FROM events WHERE device_id = ?", (old.id,)) == [(2,)]  # kept
    assert hub.post(f"{API}/events", {"device_id": new.id, "events": new.events(3)})[1]["accepted"] == 3


def test_a_new_key_continues_the_old_chain_only_with_what_it_vouches_for(hub: Hub) -> None:
    old = enrolled(hub, site="Moroto")
    assert hub.post(f"{API}/events", {"device_id": old.id, "events": old.events(2)})[1]["acked_seq"] == 2
    unsent = old.events(2)  # signed by the old key before the rotation, never sent
    token = cli("hub", "rotate", old.id, "--db", str(hub.db)).stdout.strip()
    new = Device()
    status, reply = hub.post(f"{API}/enroll", new.enroll_body(token) | {"continues": old.id})
    assert status == 200 and (reply["acked_seq"], reply["head"]) == (2, unsent[0]["prev"])
    new.seq, new.head = 4, unsent[1]["hash"]
    stranger = Device()  # another device's genuine event is never this one's to send
    refusals = {
        "no vouch": ({}, "is not vouched for by this device's key"),
        "vouched by the old key itself": (
            {unsent[0]["event_id"]: protocol.vouch(old.key, unsent[0]["hash"])},
            "is not vouched for by this device's key",
        ),
        "a vouch for another event": (
            {unsent[0]["event_id"]: protocol.vouch(new.key, unsent[1]["hash"])},
            "is not vouched for by this device's key",
        ),
    }
    chain = "SELECT id, acked_seq, head FROM devices ORDER BY id"
    before = (rows(hub.db, chain), state(hub.db)["events"])
    for vouch, reason in refusals.values():
        status, reply = hub.post(f"{API}/events", {"device_id": new.id, "events": unsent[:1], "vouch": vouch})
        assert status == 200 and reply["accepted"] == 0
        assert reply["rejected"][0]["reason"] == f"event of replaced device {old.id} {reason}"
    status, reply = hub.post(
        f"{API}/events", {"device_id": new.id, "events": [stranger.event(seq=3, prev=unsent[0]["prev"])]}
    )
    assert reply["rejected"][0]["reason"] == "event belongs to another device"
    # refusals store nothing and move no chain (they are in the anomaly log)
    assert (rows(hub.db, chain), state(hub.db)["events"]) == before
    kinds = rows(
        hub.db,
        "SELECT kind, COUNT(*) FROM anomalies WHERE device_id = ? GROUP BY kind ORDER BY kind",
        (new.id,),
    )
    assert kinds == [("unvouched", 3), ("wrong-device", 1)]
    vouch = {e["event_id"]: protocol.vouch(new.key, e["hash"]) for e in unsent}
    mine = new.events(1)
    status, reply = hub.post(
        f"{API}/events", {"device_id": new.id, "events": [*unsent, *mine], "vouch": vouch}
    )
    assert (reply["accepted"], reply["acked_seq"], reply["rejected"]) == (3, 5, [])
    assert rows(
        hub.db, "SELECT seq, device_id FROM events WHERE device_id IN (?, ?) ORDER BY seq", (old.id, new.id)
    ) == [
        (1, old.id),
        (2, old.id),
        (3, old.id),
        (4, old.id),
        (5, new.id),
    ]
    # the old key alone still sends nothing, even events that chain
    status, reply = hub.post(f"{API}/events", {"device_id": old.id, "events": [old.event()]})
    assert status == 403 and reply == {"error": f"device {old.id} is revoked"}


def test_continuing_a_device_the_token_does_not_replace_is_refused_and_writes_nothing(hub: Hub) -> None:
    old = enrolled(hub)
    plain = issue_token(hub.db)
    before = state(hub.db)
    new = Device()
    status, reply = hub.post(f"{API}/enroll", new.enroll_body(plain) | {"continues": old.id})
    assert (status, reply) == (
        403,
        {
            "error": f"this enrollment token does not replace device {old.id}: the coordinator issues one with hub rotate {old.id}"
        },
    )
    status, reply = hub.post(f"{API}/enroll", new.enroll_body(plain) | {"continues": "not a device id"})
    assert (status, reply) == (400, {"error": "continues is not a device id"})
    assert state(hub.db) == before


def test_rotating_an_unknown_or_revoked_device_is_refused_and_issues_nothing(hub: Hub) -> None:
    device = enrolled(hub)
    assert cli("hub", "revoke", device.id, "--db", str(hub.db)).exit_code == 0
    before = state(hub.db)
    again = cli("hub", "rotate", device.id, "--db", str(hub.db))
    assert again.exit_code == 1
    assert (
        again.output == f"Error: device {device.id} is already revoked; issue a new token with hub enroll\n"
    )
    unknown = cli("hub", "rotate", "0123456789abcdef", "--db", str(hub.db))
    assert unknown.exit_code == 1 and unknown.output == "Error: no device 0123456789abcdef is enrolled\n"
    assert state(hub.db) == before


def test_no_token_reaches_the_hub_log(hub: Hub) -> None:
    good, bad, expired = issue_token(hub.db), "not-a-real-token-" + "x" * 20, issue_token(hub.db)
    expire(hub.db, expired)
    device = Device()
    assert hub.post(f"{API}/enroll", device.enroll_body(good))[0] == 200
    assert hub.post(f"{API}/enroll", Device().enroll_body(bad))[0] == 403
    assert hub.post(f"{API}/enroll", Device().enroll_body(expired))[0] == 403
    assert hub.post(f"{API}/enroll", {"token": good, "device_id": "x", "public_key": "y"})[0] == 403
    log = hub.stop()
    hub.start()
    assert f"enrolled device {device.id}" in log  # the log is there, and says what happened
    for reason in (
        "unknown enrollment token",
        "enrollment token expired",
        "the public key is not an Ed25519",
    ):
        assert f"refused POST /api/v1/enroll from 127.0.0.1 (403): {reason}" in log
    for secret in (good, bad, expired):
        assert secret not in log
