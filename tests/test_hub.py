"""The coordinator hub, tested as devices meet it: a real `edgetutor hub serve` on 127.0.0.1,
real Ed25519 keys, real HTTP, and the hub's SQLite database read back after every step."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgetutor.cli import make_cli
from edgetutor.sync import protocol
from tests.conftest import ENGINES, hub_database
from tests.hub_helpers import Device, Hub, enrolled, issue_token, payload, rows, stored_seqs
from tests.postgres import PostgresServer

API = protocol.API


@pytest.fixture(scope="module", params=ENGINES)
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[Hub]:
    """One hub per engine for the tests that each use their own fresh devices: every such test
    runs on SQLite and on a real PostgreSQL server."""
    folder = tmp_path_factory.mktemp("hub")
    # Published packs of a PostgreSQL hub live in a folder every hub process and command shares.
    server = Hub(
        hub_database(request.param, folder, postgres), {"EDGETUTOR_HUB_PACKS": str(folder / "packs")}
    )
    yield server
    server.stop()


def cli(*args: str) -> Any:
    return CliRunner().invoke(make_cli(), list(args))


def anomalies(db: Path, device_id: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in rows(db, "SELECT kind, reason FROM anomalies WHERE device_id = ? ORDER BY id", (device_id,))
    ]


def state(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every hub table: compare before/after to prove a refusal wrote nothing."""
    tables = ("tokens", "devices", "events", "anomalies", "idempotency", "packs")
    return {t: rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in tables}


def assert_each_once(db: Path, device: Device, seqs: list[int]) -> None:
    assert stored_seqs(db, device.id) == seqs
    found = rows(
        db, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events WHERE device_id = ?", (device.id,)
    )
    assert found == [(len(seqs), len(seqs))]


# -- serve, ping, enroll ----------------------------------------------------------------------
def test_serve_prints_the_real_port_and_answers_ping(hub: Hub) -> None:
    assert hub.line == f"EdgeTutor hub listening on {hub.url} (db {hub.db})"
    assert not hub.url.endswith(":0")
    status, reply = hub.get(f"{API}/ping")
    assert status == 200 and reply["hub"] == "edgetutor" and reply["protocol"] == 1


def test_serve_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(RuntimeError, match="cannot open hub database"):
        Hub(bad)
    assert bad.read_text() == "this is not sqlite " * 100


def test_enroll_command_prints_a_token_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    result = cli("hub", "enroll", "--db", str(db), "--site", "Kisumu Clinic", "--label", "laptop 3")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert len(token) >= 30
    stored = rows(db, "SELECT hash, site, label, used_by FROM tokens")
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(), "Kisumu Clinic", "laptop 3", None)]
    assert token.encode() not in db.read_bytes()
    empty = cli("hub", "enroll", "--db", str(db), "--site", "  ")
    assert empty.exit_code == 1 and "Error: the site name must not be empty" in empty.output
    assert len(rows(db, "SELECT * FROM tokens")) == 1


def test_enroll_rules(hub: Hub) -> None:
    device = Device()
    token = issue_token(hub.db, "Kisumu Clinic", label="ward laptop")
    before = state(hub.db)

    def refused(body: dict[str, Any], message: str) -> None:
        status, reply = hub.post(f"{API}/enroll", body)
        assert (status, reply) == (403, {"error": message})

    refused(device.enroll_body("not-a-token"), "unknown enrollment token")
    wrong_proof = device.enroll_body(token) | {
        "proof": protocol.enroll_proof(device.key, token + "x", device.id)
    }
    refused(wrong_proof, "enrollment proof does not verify with the public key")
    other = Device()
    refused(device.enroll_body(token) | {"device_id": other.id}, "device_id is not the id of the public key")
    refused(
        device.enroll_body(token) | {"public_key": "-----BEGIN nonsense"},
        "the public key is not an Ed25519 PEM public key",
    )
    assert state(hub.db) == before

    status, reply = hub.post(f"{API}/enroll", device.enroll_body(token))
    assert status == 200
    assert reply == {
        "device_id": device.id,
        "site": "Kisumu Clinic",
        "acked_seq": 0,
        "head": protocol.GENESIS,
    }
    # The same key with the token it used: the reply is lost and retried, so it is the same answer.
    assert hub.post(f"{API}/enroll", device.enroll_body(token)) == (200, reply)
    after = state(hub.db)
    # Another key cannot reuse the token, nor can the device take a second one.
    refused(other.enroll_body(token), "enrollment token already used")
    refused(device.enroll_body(issue_token(hub.db)), f"device {device.id} is already enrolled")
    assert state(hub.db)["devices"] == after["devices"]
    stored = rows(hub.db, "SELECT id, site, label, public_key FROM devices WHERE id = ?", (device.id,))
    assert stored == [(device.id, "Kisumu Clinic", "ward laptop", device.pem)]
    assert rows(
        hub.db, "SELECT used_by FROM tokens WHERE used_by IS NOT NULL AND used_by = ?", (device.id,)
    ) == [(device.id,)]


# -- upload -----------------------------------------------------------------------------------
def test_upload_then_reupload_stores_each_event_once(hub: Hub) -> None:
    device = enrolled(hub)
    events = device.events(5)
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events[:3]}, idem="k1")
    assert status == 200
    assert reply == {"acked_seq": 3, "head": events[2]["hash"], "accepted": 3, "replayed": 0, "rejected": []}
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events}, idem="k2")
    assert reply == {"acked_seq": 5, "head": events[4]["hash"], "accepted": 2, "replayed": 3, "rejected": []}
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events}, idem="k3")
    assert (reply["accepted"], reply["replayed"], reply["acked_seq"]) == (0, 5, 5)
    assert_each_once(hub.db, device, [1, 2, 3, 4, 5])
    assert hub.get(f"{API}/devices/{device.id}/ack") == (
        200,
        {"acked_seq": 5, "head": events[4]["hash"], "revoked": False},
    )
    # The whole signed event is kept, byte for byte as canonical JSON, so it can be re-verified.
    body = rows(hub.db, "SELECT body FROM events WHERE event_id = ?", (events[0]["event_id"],))[0][0]
    assert json.loads(body) == events[0]
    assert protocol.check_event(json.loads(body), device.key.public_key()) is None
    assert anomalies(hub.db, device.id) == []


def test_idempotency_key_returns_the_stored_reply(hub: Hub) -> None:
    device = enrolled(hub)
    events = device.events(4)
    batch = {"device_id": device.id, "events": events[:2]}
    first = hub.post(f"{API}/events", batch, idem="batch-1")
    hub.post(f"{API}/events", {"device_id": device.id, "events": events[2:]}, idem="batch-2")
    # A retry of the first request gets the first reply, not a recount against the newer state.
    assert hub.post(f"{API}/events", batch, idem="batch-1") == first
    assert first[1]["acked_seq"] == 2 and first[1]["accepted"] == 2
    before = state(hub.db)
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events}, idem="batch-1")
    assert (status, reply) == (422, {"error": "Idempotency-Key was already used for a different request"})
    assert state(hub.db) == before
    assert_each_once(hub.db, device, [1, 2, 3, 4])


def test_malformed_requests_are_refused_with_a_json_error(hub: Hub) -> None:
    device = enrolled(hub)
    before = state(hub.db)
    assert hub.request("POST", f"{API}/events", raw=b"{not json") == (
        400,
        {"error": "request body is not JSON"},
    )
    assert hub.post(f"{API}/events", {"device_id": device.id, "events": "x"}) == (
        400,
        {"error": "events must be a list"},
    )
    assert hub.post(f"{API}/events", {"events": []}) == (400, {"error": "device_id is missing or malformed"})
    lone_surrogate = b'{"device_id": "\\ud800", "events": []}'
    assert hub.request("POST", f"{API}/events", raw=lone_surrogate) == (
        400,
        {"error": "request body holds text that is not valid Unicode"},
    )
    assert state(hub.db) == before
    # A real emoji escaped as a surrogate pair is fine, and numbers too large for a column are
    # kept in the signed body but not extracted.
    body = payload(trainee="Amina \U0001f600")
    body["pack"]["version"] = 2**70
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [device.event(body)]})
    assert (status, reply["accepted"]) == (200, 1)
    huge = device.event(seq=2**64, prev=device.head)
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [huge]})
    assert reply["rejected"] == [
        {"event_id": huge["event_id"], "seq": None, "reason": "malformed sequence number"}
    ]
    assert rows(
        hub.db, "SELECT trainee_name, pack_version FROM events WHERE device_id = ?", (device.id,)
    ) == [("Amina \U0001f600", None)]


# -- refusals -----------------------------------------------------------------------------------
def test_forged_signature_is_refused_logged_and_stops_the_batch(hub: Hub) -> None:
    device = enrolled(hub)
    good = device.events(2)
    hub.post(f"{API}/events", {"device_id": device.id, "events": good})
    forger = Device()
    forged = device.event(key=forger.key, total=1.0)  # claims to be seq 3 of the device
    after = device.event()  # a genuine seq 4 that can no longer chain in this batch
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [forged, after]})
    assert status == 200
    assert reply["accepted"] == 0 and reply["acked_seq"] == 2
    assert reply["rejected"] == [
        {"event_id": forged["event_id"], "seq": 3, "reason": "bad signature"},
        {"event_id": after["event_id"], "seq": 4, "reason": "not processed: follows a refused event"},
    ]
    assert anomalies(hub.db, device.id) == [("bad-signature", "bad signature")]
    assert_each_once(hub.db, device, [1, 2])
    # An edited score with the old signature: the hash no longer matches the content.
    edited = json.loads(json.dumps(good[1]))
    edited["payload"]["score"]["total"] = 1.0
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [edited]})
    assert reply["rejected"][0]["reason"] == "hash does not match content"
    assert_each_once(hub.db, device, [1, 2])


def test_replayed_event_with_changed_score(hub: Hub) -> None:
    device = enrolled(hub)
    events = device.events(3, total=0.4)
    hub.post(f"{API}/events", {"device_id": device.id, "events": events})
    original = events[1]
    changed = dict(original["payload"], score=dict(original["payload"]["score"], total=0.95, passed=True))
    # Re-signed by the real key (a device whose database was edited): a conflict, logged.
    resigned = device.event(changed, seq=2, prev=original["prev"], event_id=original["event_id"])
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [resigned]})
    reason = f"conflicting content: event {original['event_id']} was already accepted with a different hash"
    assert reply["rejected"] == [{"event_id": original["event_id"], "seq": 2, "reason": reason}]
    assert (reply["acked_seq"], reply["accepted"]) == (3, 0)
    # Signed by another key: not even the device's.
    other = Device().key
    forged = device.event(changed, seq=2, prev=original["prev"], event_id=original["event_id"], key=other)
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [forged]})
    assert reply["rejected"][0]["reason"] == "bad signature"
    assert anomalies(hub.db, device.id) == [("conflict", reason), ("bad-signature", "bad signature")]
    assert_each_once(hub.db, device, [1, 2, 3])
    assert rows(hub.db, "SELECT score FROM events WHERE event_id = ?", (original["event_id"],)) == [(0.4,)]


def test_gap_is_refused_and_logged_then_filled(hub: Hub) -> None:
    device = enrolled(hub)
    events = device.events(5)
    hub.post(f"{API}/events", {"device_id": device.id, "events": events[:2]})
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events[3:]})
    assert reply["rejected"] == [
        {"event_id": events[3]["event_id"], "seq": 4, "reason": "gap: expected seq 3, got 4"},
        {"event_id": events[4]["event_id"], "seq": 5, "reason": "not processed: follows a refused event"},
    ]
    assert reply["acked_seq"] == 2
    assert anomalies(hub.db, device.id) == [("gap", "gap: expected seq 3, got 4")]
    assert_each_once(hub.db, device, [1, 2])
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": events[2:]})
    assert (reply["accepted"], reply["acked_seq"], reply["rejected"]) == (3, 5, [])
    assert_each_once(hub.db, device, [1, 2, 3, 4, 5])


def test_fork_is_refused_and_logged(hub: Hub) -> None:
    device = enrolled(hub)
    events = device.events(3)
    hub.post(f"{API}/events", {"device_id": device.id, "events": events})
    # A rewritten seq 2 (new id, new content, correctly chained to seq 1): a fork of accepted history.
    fork = device.event(seq=2, prev=events[0]["hash"], total=0.99)
    # A seq 4 chained to something other than the accepted seq 3.
    stray = device.event(seq=4, prev=fork["hash"])
    nxt = device.event()  # the genuine seq 4
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [fork, stray, nxt]})
    assert reply["rejected"] == [
        {
            "event_id": fork["event_id"],
            "seq": 2,
            "reason": "fork: seq 2 was already accepted with a different hash",
        },
        {
            "event_id": stray["event_id"],
            "seq": 4,
            "reason": "fork: prev of seq 4 does not match the hash of seq 3",
        },
        {"event_id": nxt["event_id"], "seq": 4, "reason": "not processed: follows a refused event"},
    ]
    assert reply["acked_seq"] == 3 and reply["accepted"] == 0
    assert [k for k, _ in anomalies(hub.db, device.id)] == ["fork", "fork"]
    assert_each_once(hub.db, device, [1, 2, 3])
    # A refused event below the acknowledged seq does not block the genuine next one.
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [fork, nxt]})
    assert (reply["accepted"], reply["acked_seq"], len(reply["rejected"])) == (1, 4, 1)
    assert_each_once(hub.db, device, [1, 2, 3, 4])


def test_event_of_another_device_in_a_batch_is_refused(hub: Hub) -> None:
    device, other = enrolled(hub), enrolled(hub)
    event = other.event()
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [event]})
    assert reply["rejected"][0]["reason"] == "event belongs to another device"
    assert stored_seqs(hub.db, device.id) == [] and stored_seqs(hub.db, other.id) == []


def test_unknown_and_revoked_devices_cannot_write(hub: Hub) -> None:
    stranger = Device()
    status, reply = hub.post(f"{API}/events", {"device_id": stranger.id, "events": [stranger.event()]})
    assert (status, reply) == (401, {"error": f"device {stranger.id} is not enrolled"})
    assert stored_seqs(hub.db, stranger.id) == []
    assert anomalies(hub.db, stranger.id) == [("unknown-device", f"device {stranger.id} is not enrolled")]

    device = enrolled(hub)
    hub.post(f"{API}/events", {"device_id": device.id, "events": device.events(2)})
    result = cli("hub", "revoke", device.id, "--db", str(hub.db))
    assert result.exit_code == 0 and f"Revoked device {device.id}" in result.output
    status, reply = hub.post(f"{API}/events", {"device_id": device.id, "events": [device.event()]})
    assert (status, reply) == (403, {"error": f"device {device.id} is revoked"})
    assert_each_once(hub.db, device, [1, 2])  # what it sent before stays
    assert anomalies(hub.db, device.id) == [("revoked-device", f"device {device.id} is revoked")]
    again = cli("hub", "revoke", device.id, "--db", str(hub.db))
    assert again.exit_code == 0 and "already revoked" in again.output
    unknown = cli("hub", "revoke", "0123456789abcdef", "--db", str(hub.db))
    assert (
        unknown.exit_code == 1 and unknown.output.strip() == "Error: no device 0123456789abcdef is enrolled"
    )

    listing = cli("hub", "devices", "--db", str(hub.db))
    line = next(x for x in listing.output.splitlines() if x.startswith(device.id))
    assert "Kisumu Clinic" in line and " 2 " in line and "never" not in line and line.split()[-1] == "1"


# -- USB bundles --------------------------------------------------------------------------------
def write_bundle(path: Path, bundle: dict[str, Any]) -> Path:
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def test_bundle_import_twice_and_after_network_sync_changes_nothing(hub: Hub, tmp_path: Path) -> None:
    device = enrolled(hub)
    events = device.events(12)
    hub.post(f"{API}/events", {"device_id": device.id, "events": events[:5]})
    bundle = write_bundle(tmp_path / "results.etres", device.bundle(events))
    first = cli("hub", "import", str(bundle), "--db", str(hub.db))
    assert first.exit_code == 0, first.output
    assert "7 new, 5 already present, 0 refused; acknowledged up to seq 12" in first.output
    before = state(hub.db)
    second = cli("hub", "import", str(bundle), "--db", str(hub.db))
    assert "0 new, 12 already present" in second.output and second.exit_code == 0
    assert state(hub.db)["events"] == before["events"]
    assert_each_once(hub.db, device, list(range(1, 13)))
    assert set(r[0] for r in rows(hub.db, "SELECT via FROM events WHERE device_id = ?", (device.id,))) == {
        "http",
        "usb",
    }


def test_tampered_bundle_is_refused_and_writes_nothing(hub: Hub, tmp_path: Path) -> None:
    device = enrolled(hub)
    bundle = device.bundle(device.events(3, total=0.3))
    bundle["events"][1]["payload"]["score"]["total"] = 1.0  # edited after export
    path = write_bundle(tmp_path / "tampered.etres", bundle)
    before = state(hub.db)
    result = cli("hub", "import", str(path), "--db", str(hub.db))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: tampered.etres: bundle signature does not verify with the key enrolled for device {device.id}"
        " (altered, or not from that device)\n"
    )
    assert state(hub.db) == before
    garbage = write_bundle(tmp_path / "garbage.etres", {"kind": "something else"})
    result = cli("hub", "import", str(garbage), "--db", str(hub.db))
    assert result.output == "Error: garbage.etres is not an EdgeTutor results bundle\n"
    assert state(hub.db) == before


def test_bundle_enrolls_its_device_with_a_token(hub: Hub, tmp_path: Path) -> None:
    device = Device()
    token = issue_token(hub.db, "Lodwar Health Centre")
    events = device.events(4)
    before = state(hub.db)
    # Without a token, an unknown device's bundle is refused and nothing is written.
    bare = write_bundle(tmp_path / "bare.etres", device.bundle(events))
    result = cli("hub", "import", str(bare), "--db", str(hub.db))
    assert (
        result.output
        == f"Error: device {device.id} is not enrolled and bare.etres carries no enrollment token\n"
    )
    # A bundle whose token was edited in: its signature fails before the token is looked at.
    edited = device.bundle(events)
    edited["enroll"] = {"token": token}
    result = cli("hub", "import", str(write_bundle(tmp_path / "edited.etres", edited)), "--db", str(hub.db))
    assert result.output == "Error: edited.etres: bundle signature does not verify (altered after export)\n"
    assert state(hub.db) == before

    path = write_bundle(tmp_path / "first.etres", device.bundle(events, token=token))
    result = cli("hub", "import", str(path), "--db", str(hub.db))
    assert result.exit_code == 0, result.output
    assert f"Enrolled device {device.id} at site 'Lodwar Health Centre'" in result.output
    assert "4 new, 0 already present" in result.output
    assert rows(hub.db, "SELECT site, enrolled_via FROM devices WHERE id = ?", (device.id,)) == [
        ("Lodwar Health Centre", "usb")
    ]
    assert_each_once(hub.db, device, [1, 2, 3, 4])
    # The same bundle again (its token now used by this very device): nothing changes.
    again = cli("hub", "import", str(path), "--db", str(hub.db))
    assert again.exit_code == 0 and "0 new, 4 already present" in again.output
    # Another device cannot ride on the used token.
    thief = Device()
    stolen = write_bundle(tmp_path / "stolen.etres", thief.bundle(thief.events(1), token=token))
    before = state(hub.db)
    result = cli("hub", "import", str(stolen), "--db", str(hub.db))
    assert result.output == "Error: enrollment token already used\n"
    assert state(hub.db) == before


def test_bundle_with_a_gap_imports_what_chains_and_reports_the_rest(hub: Hub, tmp_path: Path) -> None:
    device = enrolled(hub)
    events = device.events(4)
    path = write_bundle(tmp_path / "gap.etres", device.bundle([events[0], events[2], events[3]]))
    result = cli("hub", "import", str(path), "--db", str(hub.db))
    assert result.exit_code == 1
    assert "1 new, 0 already present, 2 refused" in result.output
    assert "Refused seq 3" in result.output and "gap: expected seq 2, got 3" in result.output
    assert_each_once(hub.db, device, [1])
    assert anomalies(hub.db, device.id) == [("gap", "gap: expected seq 2, got 3")]


# -- reports ------------------------------------------------------------------------------------
def seed_cohort(hub: Hub) -> tuple[Device, Device, Device]:
    """Two sites; Amina practises on two laptops at site A; a retried case counts its latest score."""
    a1, a2, b = enrolled(hub, "Site A"), enrolled(hub, "Site A"), enrolled(hub, "Site B")
    early, late = "2025-03-01T10:00:00+00:00", "2025-03-05T10:00:00+00:00"
    batches = {
        a1: [
            a1.event(trainee="Amina", case_id="malaria", total=0.4, competencies=("malaria",), ended=early),
            a1.event(
                trainee="Amina", case_id="pneumonia", total=0.9, competencies=("respiratory",), ended=early
            ),
        ],
        a2: [a2.event(trainee="Amina", case_id="malaria", total=0.8, competencies=("malaria",), ended=late)],
        b: [
            b.event(trainee="Amina", case_id="malaria", total=0.2, competencies=("malaria",), ended=late),
            b.event(
                trainee="Baraka", case_id="pneumonia", total=0.5, competencies=("respiratory",), ended=late
            ),
        ],
    }
    for device, events in batches.items():
        assert hub.post(f"{API}/events", {"device_id": device.id, "events": events})[1]["accepted"] == len(
            events
        )
    return a1, a2, b


@pytest.fixture(scope="module")
def cohort_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    server = Hub(tmp_path_factory.mktemp("cohort") / "hub.db")
    seed_cohort(server)
    yield server
    server.stop()


def report(hub: Hub, by: str, fmt: str) -> Any:
    result = cli("hub", "report", "--db", str(hub.db), "--by", by, "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        return json.loads(result.stdout)
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_report_by_trainee(cohort_hub: Hub) -> None:
    data = report(cohort_hub, "trainee", "json")
    by = {(r["site"], r["trainee"]): r for r in data["rows"]}
    assert set(by) == {("Site A", "Amina"), ("Site B", "Amina"), ("Site B", "Baraka")}
    amina = by[("Site A", "Amina")]
    # Same person on two laptops of one site; malaria retried: latest 0.8 counts, with pneumonia 0.9.
    assert (amina["devices"], amina["attempts"], amina["cases"], amina["passed"]) == (2, 3, 2, 2)
    assert amina["mean_score"] == 0.85 and amina["pass_rate"] == 0.667
    assert amina["weakest"] == "malaria (80%)"
    rows_ = {(r["site"], r["trainee"]): r for r in report(cohort_hub, "trainee", "csv")}
    assert rows_[("Site A", "Amina")]["mean_score"] == "0.850"
    assert rows_[("Site B", "Baraka")]["pass_rate"] == "0.000"


def test_report_by_case(cohort_hub: Hub) -> None:
    data = report(cohort_hub, "case", "json")
    malaria = next(r for r in data["rows"] if r["case_id"] == "malaria")
    assert (malaria["attempts"], malaria["trainees"], malaria["min"], malaria["max"]) == (3, 2, 0.2, 0.8)
    assert malaria["histogram"] == [0, 0, 1, 0, 1, 0, 0, 0, 1, 0]
    assert malaria["pass_rate"] == 0.333
    csv_rows = {r["case_id"]: r for r in report(cohort_hub, "case", "csv")}
    assert csv_rows["pneumonia"]["attempts"] == "2" and csv_rows["pneumonia"]["median"] == "0.700"
    assert csv_rows["malaria"]["histogram"] == "0 0 1 0 1 0 0 0 1 0"


def test_report_by_competency(cohort_hub: Hub) -> None:
    data = report(cohort_hub, "competency", "json")
    levels = {r["competency"]: r["level"] for r in data["rows"]}
    # malaria: latest per (trainee, case): Site A Amina 0.8, Site B Amina 0.2 -> 0.5
    # respiratory: Site A Amina 0.9, Baraka 0.5 -> 0.7. A controlled competency id is shown by its
    # label (cases/competencies.yaml); anything else a device sent is shown as it came.
    assert levels == {"malaria": 0.5, "Cough and breathing problems": 0.7, "infectious-disease": 0.6}
    assert data["rows"][0]["competency"] == "malaria"  # weakest first
    csv_rows = report(cohort_hub, "competency", "csv")
    assert [r["competency"] for r in csv_rows] == [
        "malaria",
        "infectious-disease",
        "Cough and breathing problems",
    ]
    assert csv_rows[0]["trainees"] == "2"


def test_report_by_site_and_device(cohort_hub: Hub, tmp_path: Path) -> None:
    sites = {r["site"]: r for r in report(cohort_hub, "site", "json")["rows"]}
    assert (sites["Site A"]["devices"], sites["Site A"]["trainees"], sites["Site A"]["attempts"]) == (2, 1, 3)
    assert sites["Site B"]["mean_score"] == 0.35 and sites["Site B"]["last_sync"]
    assert {r["site"]: r["attempts"] for r in report(cohort_hub, "site", "csv")} == {
        "Site A": "3",
        "Site B": "2",
    }
    devices = report(cohort_hub, "device", "json")["rows"]
    assert sorted(d["attempts"] for d in devices) == [1, 2, 2]
    assert all(d["acked_seq"] == d["attempts"] and d["anomalies"] == 0 for d in devices)
    assert len(report(cohort_hub, "device", "csv")) == 3
    out = tmp_path / "r.csv"
    result = cli(
        "hub", "report", "--db", str(cohort_hub.db), "--by", "site", "--format", "csv", "--out", str(out)
    )
    assert result.exit_code == 0 and out.read_text().startswith("site,devices,trainees")
    table = cli("hub", "report", "--db", str(cohort_hub.db), "--by", "case")
    assert table.output.splitlines()[0].split()[:3] == ["CASE_ID", "TITLE", "SPECIALTY"]
    status, api = cohort_hub.get(f"{API}/report?by=competency")
    assert status == 200 and api["rows"] == report(cohort_hub, "competency", "json")["rows"]
    assert cohort_hub.get(f"{API}/report?by=colour") == (
        400,
        {"error": "unknown report axis 'colour' (one of trainee, case, competency, site, device)"},
    )


def test_csv_report_defuses_spreadsheet_formulas(hub: Hub, tmp_path: Path) -> None:
    device = enrolled(hub, "Formula Site")
    hub.post(f"{API}/events", {"device_id": device.id, "events": [device.event(trainee="=HYPERLINK(1)")]})
    names = [r["trainee"] for r in report(hub, "trainee", "csv") if r["site"] == "Formula Site"]
    assert names == ["'=HYPERLINK(1)"]


def test_payload_without_a_score_is_stored_but_not_reported(hub: Hub) -> None:
    device = enrolled(hub, "Sparse Site")
    event = device.event({"attempt_id": "x", "something": "new"})
    assert hub.post(f"{API}/events", {"device_id": device.id, "events": [event]})[1]["accepted"] == 1
    assert_each_once(hub.db, device, [1])
    assert [r for r in report(hub, "trainee", "json")["rows"] if r["site"] == "Sparse Site"] == []


# -- pack catalogue -----------------------------------------------------------------------------
def test_pack_catalogue_lists_newest_and_serves_the_bytes(
    hub: Hub, make_pack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGETUTOR_HUB_PACKS", hub.extra_env["EDGETUTOR_HUB_PACKS"])
    v1, v2 = make_pack(version=1, pack_id="cat-pack"), make_pack(version=2, pack_id="cat-pack")
    other = make_pack(version=1, pack_id="cat-other")
    for pack in (v1, v2, other):
        result = cli("hub", "publish", str(pack), "--db", str(hub.db))
        assert result.exit_code == 0 and result.output.startswith("Published cat-")
    status, listing = hub.get(f"{API}/packs")
    mine = {p["pack_id"]: p for p in listing["packs"] if p["pack_id"].startswith("cat-")}
    assert {k: v["version"] for k, v in mine.items()} == {"cat-pack": 2, "cat-other": 1}
    entry = mine["cat-pack"]
    assert (
        entry["digest"] == hashlib.sha256(v2.read_bytes()).hexdigest() and entry["size"] == v2.stat().st_size
    )
    status, data = hub.get(entry["url"])
    assert status == 200 and data == v2.read_bytes()
    assert hub.get(f"{API}/packs/{'0' * 64}.etpack") == (404, {"error": "no such pack"})
    assert hub.get(f"{API}/packs/..%2F..%2Fhub.db.etpack")[0] == 404

    before = state(hub.db)
    again = cli("hub", "publish", str(v2), "--db", str(hub.db))
    assert again.exit_code == 1 and again.output.startswith("Error: cat-pack v2 is already published (")
    changed = make_pack(version=2, pack_id="cat-pack", note="different content")
    refused = cli("hub", "publish", str(changed), "--db", str(hub.db))
    assert refused.output == (
        "Error: cat-pack v2 is already published with different content: raise the version to publish a change\n"
    )
    junk = tmp_path / "junk.etpack"
    junk.write_bytes(b"PK not really")
    bad = cli("hub", "publish", str(junk), "--db", str(hub.db))
    assert bad.exit_code == 1 and bad.output.startswith("Error: junk.etpack is not a pack file")
    assert state(hub.db) == before


def asgi_get(app: Any, path: str, client: str) -> tuple[int, bytes]:
    """One GET through the ASGI app as if from `client` (the address uvicorn would report)."""
    import asyncio

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"hub")],
        "client": (client, 50000),
        "server": ("127.0.0.1", 8765),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_dashboard_and_reports_answer_only_this_machine_by_default(tmp_path: Path) -> None:
    from edgetutor.hub.db import HubDB
    from edgetutor.hub.server import make_app

    with HubDB(tmp_path / "hub.db") as db:
        app = make_app(db)
        for path in ("/", f"{API}/report?by=case"):
            status, body = asgi_get(app, path, "192.0.2.10")
            assert status == 403
            assert json.loads(body)["error"].startswith(
                "the dashboard and reports are served to this machine only"
            )
            assert asgi_get(app, path, "127.0.0.1")[0] == 200
        assert asgi_get(app, f"{API}/ping", "192.0.2.10")[0] == 200  # devices' endpoints answer everyone
        opened = make_app(db, dashboard_anywhere=True)
        assert asgi_get(opened, "/", "192.0.2.10")[0] == 200
        assert asgi_get(opened, f"{API}/report?by=case", "192.0.2.10")[0] == 200


def test_serve_on_a_busy_port_and_reading_a_missing_hub_fail_in_one_line(hub: Hub, tmp_path: Path) -> None:
    import subprocess
    import sys

    port = hub.url.rsplit(":", 1)[1]
    second = subprocess.run(
        [sys.executable, "-m", "edgetutor", "hub", "serve", "--db", str(tmp_path / "b.db"), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    for command in ("devices", "report"):
        result = cli("hub", command, "--db", str(tmp_path / "typo.db"))
        assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "typo.db").exists()


def test_bundle_larger_than_one_batch_is_ingested_in_chunks(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgetutor.hub import ingest

    monkeypatch.setattr(ingest, "MAX_BATCH", 3)  # the CLI runs in this process
    device = enrolled(hub)
    events = device.events(8)
    path = write_bundle(tmp_path / "big.etres", device.bundle(events))
    result = cli("hub", "import", str(path), "--db", str(hub.db))
    assert "8 new, 0 already present, 0 refused; acknowledged up to seq 8" in result.output
    assert_each_once(hub.db, device, list(range(1, 9)))
    # A gap in the second chunk: the first chunk stays, the rest is listed, one anomaly only.
    more = device.events(8)
    gapped = write_bundle(tmp_path / "gapped.etres", device.bundle(more[:4] + more[5:]))
    result = cli("hub", "import", str(gapped), "--db", str(hub.db))
    assert result.exit_code == 1
    assert "4 new, 0 already present, 3 refused; acknowledged up to seq 12" in result.output
    assert result.output.count("not processed: follows a refused event") == 2
    assert anomalies(hub.db, device.id) == [("gap", "gap: expected seq 13, got 14")]
    assert_each_once(hub.db, device, list(range(1, 13)))
