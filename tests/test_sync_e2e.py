"""Result sync end to end: real finished attempts on a device, a REAL hub subprocess on 127.0.0.1,
real failures (dropped answers, a killed client, a restarted hub, revocation, USB bundles).

After each scenario: every event is on the hub exactly once (its SQLite file is read directly) and
nothing is lost on the device (every event still there; the pending count right).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgetutor.errors import KeyFileError, SyncError
from edgetutor.packs.build import build_pack
from edgetutor.packs.install import PackStore
from edgetutor.packs.signing import generate
from edgetutor.service import open_store
from edgetutor.store import Store
from edgetutor.sync import client
from edgetutor.sync.device import key_id_of

from .conftest import write_source
from .hub_helpers import Hub
from .sync_helpers import EDGETUTOR, Proxy, cli, device_events, example_case, finish


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with open_store() as s:
        yield s


def assert_once_on_hub(hub: Hub, store: Store, pending: int = 0) -> None:
    """The hub holds this device's events 1..n exactly once, with the device's own hashes, and
    the device still has every event, `pending` of them not acknowledged."""
    device_id = store.sync_state().device_id
    assert device_id is not None
    ours = store.events()
    acked = len(ours) - pending
    theirs = hub.query(
        "SELECT seq, event_id, hash FROM events WHERE device_id = ? ORDER BY seq", (device_id,)
    )
    assert theirs == [(e["seq"], e["event_id"], e["hash"]) for e in ours[:acked]]
    assert len(hub.event_ids()) == len(set(hub.event_ids()))
    assert [seq for seq, *_ in device_events(store.path.parent)] == list(range(1, len(ours) + 1))
    assert store.pending_count() == pending
    assert [s for s, _, state in device_events(store.path.parent) if state == "pending"] == [
        e["seq"] for e in ours[acked:]
    ]


def quick(store: Store, url: str, token: str | None = None, **kw: Any) -> client.SyncReport:
    kw.setdefault("base_delay", 0.05)
    kw.setdefault("timeout", 20.0)
    return client.sync(store, url, token, **kw)


# -- the happy path -------------------------------------------------------------------------------


@pytest.mark.slow
def test_enroll_sync_and_resync_send_each_result_once(
    sqlite_hub: Hub,
    home: Path,
    tmp_path: Path,
    make_pack: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGETUTOR_UNQUALIFIED", "1")  # the real model speaks once, unqualified here
    cli("pack", "install", str(make_pack()), home=home)
    script = tmp_path / "script.txt"
    script.write_text(
        "Do you have a fever?\nexamine vitals\ndiagnose malaria\nplan artemether-lumefantrine\nend\n"
    )
    run = ["run", "malaria-uncomplicated-adult", "--script", str(script), "--json", "--trainee", "Abena"]
    played = [json.loads(cli(*run, "--no-model", home=home).stdout)]
    played.append(json.loads(cli(*run, home=home, timeout=300).stdout))  # the real model, once
    assert played[1]["model"] == "SmolLM2-135M-Instruct.Q4_1"
    with open_store() as store:
        finish(store, "Kofi")
        token = sqlite_hub.enroll("Kumasi")
        done = cli("sync", "--hub", sqlite_hub.url, "--token", token, home=home)
        assert done.stdout.splitlines() == [
            f"Enrolled with {sqlite_hub.url} (site Kumasi)",
            "Sent 3 results; 0 pending; hub acknowledged up to #3",
        ]
        assert_once_on_hub(sqlite_hub, store)
        # what the hub reports from is what the device scored
        for seq, doc in ((1, played[0]), (2, played[1])):
            row = sqlite_hub.query(
                "SELECT attempt_id, trainee_name, case_title, model, score, site FROM events JOIN devices"
                " ON devices.id = events.device_id WHERE seq = ?",
                (seq,),
            )[0]
            attempt_id = doc["attempt"]
            stored = store.score(attempt_id)
            assert stored is not None
            assert row[:2] == (attempt_id, "Abena") and row[2] == example_case().title
            assert row[3] == (played[1]["model"] if seq == 2 else None)
            assert row[4] == stored["total"] and row[5] == "Kumasi"
        again = cli("sync", home=home)  # the hub address and enrollment are remembered
        assert again.stdout.strip() == "Sent 0 results; 0 pending; hub acknowledged up to #3"
        finish(store, "Kofi")
        assert cli("sync", home=home).stdout.strip() == "Sent 1 result; 0 pending; hub acknowledged up to #4"
        assert_once_on_hub(sqlite_hub, store)
        status = client.status(store)
        assert (status.pending, status.hub, status.enrolled, status.last_error) == (
            0,
            sqlite_hub.url,
            True,
            None,
        )
        assert status.last_sync is not None
        assert client.probe(sqlite_hub.url) is True


# -- lost answers, killed client, restarted hub ---------------------------------------------------


def test_an_answer_lost_after_the_hub_committed_is_not_sent_twice(sqlite_hub: Hub, store: Store) -> None:
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    for name in ("Ama", "Kofi", "Esi"):
        finish(store, name)
    proxy = Proxy(sqlite_hub.port, mode="drop", match="POST /api/v1/events", drops=1)
    progress: list[tuple[int, int]] = []
    try:
        report = quick(store, proxy.url, batch_size=2, on_progress=lambda *p: progress.append(p))
    finally:
        proxy.close()
    assert proxy.dropped == 1 and progress == [(2, 3), (3, 3)]
    assert (report.sent, report.pending, report.acked_seq) == (3, 0, 3)
    # the first batch was committed by the hub, its answer lost, resent with the same key
    assert proxy.requests.count("POST /api/v1/events HTTP/1.1") == 3
    assert sqlite_hub.query("SELECT count(*) FROM idempotency")[0][0] == 2
    assert [r[0] for r in store.db.execute("SELECT tries FROM outbox ORDER BY seq").fetchall()] == [1, 1, 0]
    assert_once_on_hub(sqlite_hub, store)


def test_answers_that_never_arrive_mark_nothing_sent_and_the_next_sync_catches_up(
    sqlite_hub: Hub, store: Store
) -> None:
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    for name in ("Ama", "Kofi", "Esi"):
        finish(store, name)
    proxy = Proxy(sqlite_hub.port, mode="drop", match="POST /api/v1/events")
    try:
        with pytest.raises(SyncError) as err:
            quick(store, proxy.url, batch_size=2, tries=3)
    finally:
        proxy.close()
    assert str(err.value) == (
        f"cannot reach the hub at {proxy.url} (results #1-#2): connection closed before the reply after 3 tries;"
        " 3 results kept for the next sync"
    )
    assert sqlite_hub.seqs(store.sync_state().device_id or "") == [1, 2]  # the hub has the first batch
    assert_once_on_hub_pending_all(sqlite_hub, store)
    report = quick(store, sqlite_hub.url)
    assert (report.sent, report.pending, report.acked_seq) == (3, 0, 3)
    assert_once_on_hub(sqlite_hub, store)


def assert_once_on_hub_pending_all(hub: Hub, store: Store) -> None:
    # nothing is marked sent that the client did not hear acknowledged
    assert store.pending_count() == len(store.events()) == 3
    assert store.sync_state().acked_seq == 0


def test_sync_killed_mid_way_loses_nothing_and_duplicates_nothing(
    sqlite_hub: Hub, store: Store, home: Path
) -> None:
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    for i in range(30):
        finish(store, f"Trainee {i}")
    device_id = store.sync_state().device_id or ""
    proxy = Proxy(sqlite_hub.port, delay=0.03)  # about 0.2 s per batch of 5
    env = {**os.environ, "EDGETUTOR_HOME": str(home)}
    proc = subprocess.Popen(
        [*EDGETUTOR, "sync", "--hub", proxy.url, "--batch-size", "5", "--no-pull"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(sqlite_hub.seqs(device_id)) < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    finally:
        proxy.close()
    assert proc.returncode == -signal.SIGKILL
    on_hub = sqlite_hub.seqs(device_id)
    assert 10 <= len(on_hub) < 30, on_hub  # killed part-way
    sent = [seq for seq, _, state in device_events(home) if state == "sent"]
    assert set(sent) <= set(on_hub)  # never marked sent without the hub having it
    assert len(device_events(home)) == 30
    store.db.execute("SELECT 1")  # the in-process store still works on the same file
    done = cli("sync", "--hub", sqlite_hub.url, home=home)
    assert done.stdout.strip().endswith("0 pending; hub acknowledged up to #30")
    assert_once_on_hub(sqlite_hub, store)


@pytest.mark.slow
def test_the_hub_restarted_mid_batch(sqlite_hub: Hub, store: Store) -> None:
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    for i in range(20):
        finish(store, f"Trainee {i}")
    proxy = Proxy(sqlite_hub.port, delay=0.1)  # a 20-result batch takes a few seconds to reach the hub
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = quick(store, proxy.url, batch_size=20, tries=6, base_delay=0.3, pull=False)
        except Exception as err:  # noqa: BLE001 - reported to the test thread below
            outcome["error"] = err

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not any("POST /api/v1/events" in r for r in proxy.requests) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # part of the batch is on its way
        sqlite_hub.stop(signal.SIGKILL)
        sqlite_hub.start()
        proxy.upstream = sqlite_hub.port
        worker.join(timeout=120)
    finally:
        proxy.close()
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert (report.sent, report.pending, report.acked_seq) == (20, 0, 20)
    # the batch in flight when the hub died was sent again, to the new hub process
    assert sum("POST /api/v1/events" in r for r in proxy.requests) >= 2
    assert_once_on_hub(sqlite_hub, store)


# -- enrollment and revocation --------------------------------------------------------------------


def test_an_unenrolled_device_is_refused_and_keeps_everything(
    sqlite_hub: Hub, store: Store, home: Path
) -> None:
    finish(store)
    finish(store, "Kofi")
    no_token = cli("sync", "--hub", sqlite_hub.url, home=home, check=False)
    assert no_token.returncode == 1
    assert no_token.stderr.strip() == (
        "Error: this device is not enrolled with a hub: run `edgetutor sync --hub URL --token TOKEN`"
        " with the token from your coordinator"
    )
    wrong = cli("sync", "--token", "not-a-token", home=home, check=False)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        "Error: the hub refused the enrollment: unknown enrollment token; 2 results kept for the next sync"
    )
    assert sqlite_hub.query("SELECT count(*) FROM devices") == [(0,)] and sqlite_hub.event_ids() == []
    assert store.pending_count() == 2 and not store.sync_state().enrolled
    # a device that believes it is enrolled at a hub that does not know it (e.g. a new hub)
    store.update_sync_state(enrolled=1, enroll_token=None)
    with pytest.raises(SyncError) as err:
        quick(store, sqlite_hub.url)
    device_id = store.sync_state().device_id
    assert str(err.value) == (
        f"the hub refused the acknowledgement query: device {device_id} is not enrolled (ask the coordinator"
        " for an enrollment token, then `edgetutor sync --token TOKEN`); 2 results kept for the next sync"
    )
    assert sqlite_hub.event_ids() == [] and store.pending_count() == 2


def test_a_revoked_device_is_refused_and_keeps_its_results(sqlite_hub: Hub, store: Store, home: Path) -> None:
    finish(store)
    finish(store, "Kofi")
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    device_id = store.sync_state().device_id or ""
    sqlite_hub.run("revoke", device_id)
    finish(store, "Esi")
    refused = cli("sync", home=home, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Error: this device ({device_id}) is revoked at the hub; 1 result kept (ask the coordinator)"
    )
    assert_once_on_hub(sqlite_hub, store, pending=1)
    assert client.status(store).last_error == refused.stderr.strip()[len("Error: ") :]


# -- a new device key -----------------------------------------------------------------------------


def assert_chain_on_hub(hub: Hub, store: Store) -> None:
    """Every event of the device is on the hub once, under the key that signed it, unchanged."""
    ours = store.events()
    theirs = hub.query("SELECT seq, event_id, device_id, hash FROM events ORDER BY seq")
    assert theirs == [(e["seq"], e["event_id"], e["device_id"], e["hash"]) for e in ours]
    assert store.pending_count() == 0


def test_a_new_key_carries_on_the_chain_and_sends_what_the_old_key_signed(
    sqlite_hub: Hub, store: Store, home: Path
) -> None:
    for name in ("Ama", "Kofi"):
        finish(store, name)
    quick(store, sqlite_hub.url, sqlite_hub.enroll("Bolgatanga"))
    for name in ("Esi", "Yaw"):  # signed by the old key, never sent
        finish(store, name)
    old = store.sync_state().device_id or ""
    before = {e["seq"]: e["hash"] for e in store.events()}
    old_key = (home / "device" / "device.key").read_bytes()
    rotated = sqlite_hub.run("rotate", old)
    token = rotated.stdout.strip()
    assert "edgetutor sync --new-key --token TOKEN" in rotated.stderr and token not in rotated.stderr
    with pytest.raises(SyncError, match=f"this device \\({old}\\) is revoked at the hub; 2 results kept"):
        quick(store, sqlite_hub.url)
    done = cli("sync", "--new-key", "--token", token, home=home)
    new = store.sync_state().device_id or ""
    assert new != old
    assert done.stdout.splitlines() == [
        f"New device key {new} (carries on device {old})",
        f"Enrolled with {sqlite_hub.url} (site Bolgatanga)",
        "Sent 2 results; 0 pending; hub acknowledged up to #4",
    ]
    finish(store, "Akua")  # signed by the new key, continuing the same chain
    assert cli("sync", home=home).stdout.strip() == "Sent 1 result; 0 pending; hub acknowledged up to #5"
    events = store.events()
    assert {e["seq"]: e["hash"] for e in events[:4]} == before  # nothing was signed again
    assert [e["device_id"] for e in events] == [old] * 4 + [new]
    assert events[4]["prev"] == events[3]["hash"]
    assert_chain_on_hub(sqlite_hub, store)
    assert sqlite_hub.query(
        "SELECT id, acked_seq, replaces, revoked_reason FROM devices ORDER BY enrolled"
    ) == [
        (old, 2, None, "rotated"),
        (new, 5, old, None),
    ]
    retired = list((home / "device").glob(f"retired-{old}-*.key"))
    assert len(retired) == 1 and retired[0].read_bytes() == old_key
    # the same token cannot make a second key: refused, nothing changed
    again = cli("sync", "--new-key", "--token", token, home=home, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "Error: this device already has a new key for that token: run `edgetutor sync` to enroll it"
        " (or `edgetutor results export` for a USB stick)"
    )
    assert store.sync_state().device_id == new and len(list((home / "device").glob("retired-*"))) == 1
    assert cli("sync", "--new-key", home=home, check=False).returncode == 2  # no token: usage error


def test_a_lost_key_is_replaced_by_rotation_and_a_usb_bundle_enrolls_the_new_one(
    sqlite_hub: Hub, store: Store, home: Path, tmp_path: Path
) -> None:
    finish(store, "Ama")
    quick(store, sqlite_hub.url, sqlite_hub.enroll("Wa"))
    finish(store, "Kofi")
    old = store.sync_state().device_id or ""
    (home / "device" / "device.key").unlink()  # the laptop's key is lost; results stay
    with pytest.raises(KeyFileError, match="is missing"):
        finish(store, "Esi")
    token = sqlite_hub.run("rotate", old).stdout.strip()
    sqlite_hub.stop()  # from here the results travel on a USB stick
    old_id, new = client.new_key(store, token)
    assert old_id == old
    finish(store, "Esi")  # signed by the new key
    usb = tmp_path / "usb"
    wrote = cli("results", "export", "--out", str(usb), home=home)
    assert wrote.stdout.startswith("Wrote 2 results (#2-#3) and this device's enrollment token to ")
    (bundle,) = usb.glob("*.etres")
    sqlite_hub.start()
    imported = sqlite_hub.run("import", str(bundle))
    assert imported.stdout.splitlines()[1].endswith(
        f"device {new}: 2 new, 0 already present, 0 refused; acknowledged up to seq 3"
    )
    assert quick(store, sqlite_hub.url).acked_seq == 3  # the hub's acknowledgement marks them sent
    assert_chain_on_hub(sqlite_hub, store)
    assert [e["device_id"] for e in store.events()] == [old, old, new]


def test_a_key_change_stopped_half_way_is_finished_by_the_next_start(
    sqlite_hub: Hub, store: Store, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish(store, "Ama")
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    old = store.sync_state().device_id or ""
    token = sqlite_hub.run("rotate", old).stdout.strip()
    # the process stops after binding the database to the new key, before the key files moved
    with monkeypatch.context() as patched:
        patched.setattr(client, "install_next_key", lambda folder=None: None)
        _, new = client.new_key(store, token)
    folder = home / "device"
    assert key_id_of(folder / "device.key") == old and key_id_of(folder / "device.key.next") == new
    finish(store, "Kofi")  # the next use of the key finishes the change
    assert key_id_of(folder / "device.key") == new and not (folder / "device.key.next").exists()
    assert len(list(folder.glob(f"retired-{old}-*.key"))) == 1
    assert quick(store, sqlite_hub.url).acked_seq == 2
    assert_chain_on_hub(sqlite_hub, store)


# -- USB bundles ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_usb_bundle_imported_twice_and_after_a_network_sync(
    sqlite_hub: Hub, store: Store, home: Path, tmp_path: Path
) -> None:
    for name in ("Ama", "Kofi", "Esi"):
        finish(store, name)
    token = sqlite_hub.enroll("Tamale")
    sqlite_hub.stop()  # no network: the token is kept for the bundle
    with pytest.raises(SyncError, match="3 results kept for the next sync"):
        quick(store, sqlite_hub.url, token)
    usb = tmp_path / "usb"
    first = cli("results", "export", "--out", str(usb), home=home)
    assert first.stdout.startswith("Wrote 3 results (#1-#3) and this device's enrollment token to ")
    (bundle1,) = usb.glob("*.etres")
    sqlite_hub.start()
    sqlite_hub.run("import", str(bundle1))
    sqlite_hub.run("import", str(bundle1))  # again: nothing new
    device_id = store.sync_state().device_id or ""
    assert sqlite_hub.seqs(device_id) == [1, 2, 3]
    assert store.pending_count() == 3  # exporting and importing mark nothing sent on the device
    # the network sync enrolls with the same token (already used by this very device) and
    # learns from the hub's acknowledgement that the three arrived
    net = cli("sync", "--hub", sqlite_hub.url, home=home)
    assert net.stdout.splitlines()[-1] == "Sent 3 results; 0 pending; hub acknowledged up to #3"
    assert_once_on_hub(sqlite_hub, store)
    finish(store, "Yaw")
    finish(store, "Akua")
    second = cli("results", "export", "--out", str(usb), home=home)
    assert second.stdout.startswith("Wrote 2 results (#4-#5) to ")
    bundle2 = next(p for p in usb.glob("*.etres") if p != bundle1)
    quick(store, sqlite_hub.url)
    sqlite_hub.run("import", str(bundle2))  # after the same results came by network
    sqlite_hub.run("import", str(bundle1))
    assert_once_on_hub(sqlite_hub, store)
    assert sqlite_hub.query("SELECT count(*) FROM events") == [(5,)]


# -- packs pulled from the hub --------------------------------------------------------------------


def _tampered(pack: Path, out: Path) -> Path:
    """The pack with one case file changed after signing (its manifest hash no longer matches)."""
    with zipfile.ZipFile(pack) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("cases/"):
                data = data.replace(b"malaria", b"malarja", 1)
            dst.writestr(item, data)
    return out


def test_newer_packs_are_pulled_and_untrusted_or_tampered_ones_refused(
    sqlite_hub: Hub, store: Store, home: Path, tmp_path: Path, make_pack: Callable[..., Path]
) -> None:
    cli("pack", "install", str(make_pack(1)), home=home)
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    sqlite_hub.run("publish", str(make_pack(2)))
    stranger_key, _, _ = generate(tmp_path / "stranger-keys", "stranger")
    stranger = tmp_path / "stranger.etpack"
    build_pack(write_source(tmp_path / "src-stranger", "stranger-pack", 1), stranger_key, stranger)
    sqlite_hub.run("publish", str(stranger))
    sqlite_hub.run(
        "publish", str(_tampered(make_pack(1, pack_id="tampered-pack"), tmp_path / "tampered.etpack"))
    )
    finish(store)
    done = cli("sync", home=home)
    assert done.returncode == 0
    assert "Upgraded pack test-pack v2 (1 case)" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1] == "Sent 1 result; 0 pending; hub acknowledged up to #1"
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2, errors
    assert any(
        e.startswith("Pack not installed: pack stranger-pack v1 refused: ") and "trust" in e for e in errors
    )
    assert any(e.startswith("Pack not installed: pack tampered-pack v1 refused: ") for e in errors)
    installed = {p.pack_id: p.version for p in PackStore().installed()}
    assert installed == {"test-pack": 2}
    assert not list(home.glob(".pack-download-*"))  # downloads cleaned up
    again = cli("sync", home=home)
    assert "pack test-pack" not in again.stdout and len(again.stderr.strip().splitlines()) == 2
    assert_once_on_hub(sqlite_hub, store)


# -- refusals by the hub, forks, a new hub ----------------------------------------------------------


def test_an_event_the_hub_rejects_is_named_and_nothing_after_it_marked_sent(
    sqlite_hub: Hub, store: Store
) -> None:
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    for name in ("Ama", "Kofi", "Esi"):
        finish(store, name)
    # damage result #2 on disk (as a failing disk or a hand edit would): its hash no longer matches
    store.db.execute("DROP TRIGGER events_no_update")
    body = json.loads(store.db.execute("SELECT body FROM events WHERE seq = 2").fetchone()[0])
    body["payload"]["score"]["total"] = 1.0
    store.db.execute("UPDATE events SET body = ? WHERE seq = 2", [json.dumps(body)])
    store.db.conn.commit()
    with pytest.raises(SyncError) as err:
        quick(store, sqlite_hub.url)
    assert str(err.value) == (
        f"the hub rejected result #2 (event {body['event_id']}): hash does not match content; 2 results kept"
    )
    assert sqlite_hub.seqs(store.sync_state().device_id or "") == [1]
    assert store.pending_count() == 2 and store.sync_state().acked_seq == 1
    tries = store.db.execute("SELECT seq, tries, last_error FROM outbox ORDER BY seq").fetchall()
    assert tries[0] == (1, 0, None) and tries[1][1] == 1 and "hash does not match" in tries[1][2]


def test_a_hub_holding_a_different_history_is_a_fork_and_nothing_is_sent(sqlite_hub: Hub, home: Path) -> None:
    with open_store() as store:
        finish(store)
        quick(store, sqlite_hub.url, sqlite_hub.enroll())
    # the database is lost; the key survives; a new database starts again at #1
    for suffix in ("", "-wal", "-shm"):
        (home / f"edgetutor.db{suffix}").unlink(missing_ok=True)
    with open_store() as store:
        finish(store, "Kofi")
        store.update_sync_state(hub_url=sqlite_hub.url, enrolled=1)
        with pytest.raises(SyncError) as err:
            quick(store, sqlite_hub.url)
        assert str(err.value) == (
            "the hub holds a different result #1 for this device (fork); nothing was sent: tell the coordinator"
        )
        assert store.pending_count() == 1
    assert sqlite_hub.query("SELECT trainee_name FROM events") == [("Ama",)]


def test_moving_to_a_new_hub_enrolls_there_and_sends_everything(
    sqlite_hub: Hub, store: Store, tmp_path: Path
) -> None:
    finish(store)
    finish(store, "Kofi")
    quick(store, sqlite_hub.url, sqlite_hub.enroll())
    (tmp_path / "new-hub").mkdir()
    new = Hub(tmp_path / "new-hub" / "hub.db", {"EDGETUTOR_HOME": str(tmp_path / "new-hub" / "home")})
    try:
        report = quick(store, new.url, new.enroll("Tamale"))
        assert (report.enrolled_now, report.site, report.sent, report.acked_seq) == (True, "Tamale", 2, 2)
        assert_once_on_hub(new, store)
        assert_once_on_hub(sqlite_hub, store)  # the old hub keeps what it had
        assert store.sync_state().hub_url == new.url
    finally:
        new.stop()
