"""Device side of result sync without a hub: the key, events sealed with the score, the outbox,
the migration back-fill, USB export and the failure paths (the hub itself: test_sync_e2e.py)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from edgetutor.cli import make_cli
from edgetutor.errors import EdgeTutorError, KeyFileError, SyncError
from edgetutor.packs.signing import key_id, load_public_key
from edgetutor.service import open_store
from edgetutor.store import Store
from edgetutor.store import migrations as mig
from edgetutor.sync import bundle as bundle_mod
from edgetutor.sync import client, protocol
from edgetutor.sync import seal as seal_mod
from edgetutor.sync.device import load_or_create
from edgetutor.sync.seal import sealed_key

from .conftest import tree_state
from .sync_helpers import example_case, finish

PAYLOAD_KEYS = {
    "attempt_id", "trainee", "pack", "case", "model", "started", "ended", "seconds", "turns", "score", "debrief",
}  # fmt: skip


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with open_store() as s:
        yield s


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the device key -----------------------------------------------------------------------------


def test_device_key_is_created_once_private_and_named_by_its_key_id(home: Path) -> None:
    key = load_or_create()
    assert key.path == home / "device" / "device.key"
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert (
        key.device_id == key_id(load_public_key(home / "device" / "device.pub")) and len(key.device_id) == 16
    )
    again = load_or_create(expected=key.device_id)
    assert again.device_id == key.device_id
    assert {p.name for p in (home / "device").iterdir()} == {"device.key", "device.pub"}


def test_concurrent_first_use_creates_one_key(home: Path) -> None:
    code = "from edgetutor.sync.device import load_or_create; print(load_or_create().device_id)"
    env = {**os.environ, "EDGETUTOR_HOME": str(home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and [p.returncode for p in procs] == [0, 0, 0, 0]
    assert {p.name for p in (home / "device").iterdir()} == {"device.key", "device.pub"}


def test_corrupt_key_is_refused_in_one_line_and_the_attempt_is_kept(store: Store, home: Path) -> None:
    finish(store)  # binds the database to the key
    key_file = home / "device" / "device.key"
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    before_key = key_file.read_bytes()
    case = example_case()
    attempt = store.start_attempt(store.trainee("Kofi"), "test-pack", 1, "d", case.id, case.version, None)
    from edgetutor.scoring.checklist import Transcript, score

    result = score(
        case, Transcript([], [], [], "malaria", None, 1, 1.0), {"id": "p", "version": 1, "digest": "d"}
    )
    with pytest.raises(KeyFileError) as err:
        store.finish_attempt(attempt.id, result.as_dict())
    message = str(err.value)
    assert "\n" not in message and f"device key {key_file} is corrupt" in message
    # nothing written: the attempt stays open (resumable), no score, no event; the key file untouched
    assert store.attempt(attempt.id).status == "in_progress"
    assert store.score(attempt.id) is None
    assert store.last_seq() == 1 and store.pending_count() == 1
    assert key_file.read_bytes() == before_key
    with pytest.raises(KeyFileError, match="is corrupt"):
        client.sync(store, f"http://127.0.0.1:{closed_port()}", "tok")
    assert "is corrupt" in (client.status(store).last_error or "") and store.pending_count() == 1
    result_cli = CliRunner().invoke(make_cli(), ["results", "export", "--out", str(home / "usb")])
    assert result_cli.exit_code == 1 and "is corrupt" in result_cli.output and not (home / "usb").exists()


def test_missing_or_replaced_key_after_results_were_signed_is_refused(store: Store, home: Path) -> None:
    finish(store)
    first = store.sync_state().device_id
    key_file = home / "device" / "device.key"
    saved = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(
        KeyFileError, match=f"is missing; this device's results were signed by device {first}"
    ):
        finish(store, "Kofi")
    assert not key_file.exists()  # no silent new identity
    # a different key in its place is refused too
    load_or_create(folder=home / "other")
    os.replace(home / "other" / "device.key", key_file)
    with pytest.raises(KeyFileError, match=f"but this device's results were signed by device {first}"):
        finish(store, "Kofi")
    key_file.write_bytes(saved)
    finish(store, "Kofi")
    assert store.last_seq() == 2
    assert [a.status for a in store.attempts()].count("in_progress") == 2  # the refused two stay open


# -- events sealed with the score ----------------------------------------------------------------


def test_hub_verifier_agrees_with_openssl_on_genuine_and_altered_signatures() -> None:
    """The hub checks event signatures with libsodium (protocol.Verifier) and everything else with
    OpenSSL (cryptography): both must accept and refuse exactly the same signatures."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    verifier = protocol.Verifier(key.public_key())
    message = protocol.EVENT_DOMAIN + b"ab" * 32
    genuine = key.sign(message)
    order = 2**252 + 27742317777372353535851937790883648493  # the group order L
    s = int.from_bytes(genuine[32:], "little")
    candidates = {
        "genuine": (genuine, message),
        "another key": (other.sign(message), message),
        "another message": (genuine, message + b"x"),
        "S + L (not canonical)": (genuine[:32] + (s + order).to_bytes(32, "little"), message),
        "too short": (genuine[:63], message),
        "too long": (genuine + b"\0", message),
        "empty": (b"", message),
        **{f"bit {i}": (_flip(genuine, i), message) for i in range(0, 512, 7)},
    }
    for name, (sig, msg) in candidates.items():
        try:
            key.public_key().verify(sig, msg)
            openssl = True
        except Exception:  # noqa: BLE001 - InvalidSignature, or ValueError for a wrong length
            openssl = False
        assert verifier(sig, msg) is openssl, name
        assert openssl is (name == "genuine"), name


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_each_scored_attempt_gets_one_signed_chained_event_in_the_same_transaction(
    store: Store, home: Path
) -> None:
    attempts = [finish(store, name) for name in ("Ama", "Kofi", "Ama")]
    events = store.events()
    key = load_or_create(store.sync_state().device_id)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["prev"] == protocol.GENESIS
    assert [e["prev"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    assert len({e["event_id"] for e in events}) == 3 and all(len(e["event_id"]) == 32 for e in events)
    for event, attempt in zip(events, attempts, strict=True):
        assert protocol.check_event(event, key.public) is None
        assert event["device_id"] == key.device_id
        p = event["payload"]
        assert set(p) == PAYLOAD_KEYS and p["attempt_id"] == attempt.id
        assert p["case"] == {
            "id": "malaria-uncomplicated-adult",
            "version": attempt.case_version,
            "title": example_case().title,
            "specialty": example_case().specialty,
            "competencies": list(example_case().competencies),
        }
        assert p["pack"] == {"id": "test-pack", "version": 1, "digest": attempt.pack_digest}
        stored = store.score(attempt.id)
        assert stored is not None
        assert p["score"] == {
            k: stored[k] for k in ("total", "raw", "passed", "pass_mark", "domains", "scorer_version")
        }
        assert p["ended"] == attempt.ended.isoformat() if attempt.ended else False
        assert (p["turns"], p["seconds"]) == (3, 42.0)
        missed = [i for i in stored["items"] if not i["done"]]
        assert p["debrief"]["missed"] == [
            {"id": i["id"], "description": i["description"], "domain": i["domain"]} for i in missed
        ]
        assert p["debrief"]["missed"], "the example attempt misses items"
    assert events[1]["payload"]["trainee"]["name"] == "Kofi"
    assert rows(store.path, "SELECT seq, state, tries FROM outbox") == [
        (1, "pending", 0),
        (2, "pending", 0),
        (3, "pending", 0),
    ]


def test_a_failure_while_sealing_rolls_back_the_score_too(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish(store)

    def broken(*args: Any, **kw: Any) -> dict[str, Any]:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(seal_mod, "seal_event", broken)
    with pytest.raises(OSError):
        finish(store, "Kofi")
    kofi = store.attempts(trainee=store.trainee("Kofi"))[0]
    assert kofi.status == "in_progress" and store.score(kofi.id) is None
    assert store.last_seq() == 1 and rows(store.path, "SELECT count(*) FROM scores") == [(1,)]


def test_an_attempt_finished_without_a_score_gets_no_event(store: Store, home: Path) -> None:
    case = example_case()
    attempt = store.start_attempt(store.trainee("Ama"), "p", 1, "d", case.id, 1, None)
    store.finish_attempt(attempt.id)
    assert store.events() == [] and store.pending_count() == 0
    assert not (home / "device").exists()  # no key is even needed


def test_events_are_append_only_in_the_file_itself(store: Store) -> None:
    finish(store)
    before = rows(store.path, "SELECT body FROM events")
    for sql in ("UPDATE events SET body = '{}'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="result events are append-only"):
            store.db.execute(sql)
    assert rows(store.path, "SELECT body FROM events") == before


def test_a_played_encounter_seals_the_case_title_and_competencies(
    home: Path, make_pack: Any, tmp_path: Path
) -> None:
    assert CliRunner().invoke(make_cli(), ["pack", "install", str(make_pack())]).exit_code == 0
    script = tmp_path / "s.txt"
    script.write_text(
        "Do you have a fever?\nexamine vitals\ndiagnose malaria\nplan artemether-lumefantrine\nend\n"
    )
    done = CliRunner().invoke(
        make_cli(), ["run", "malaria-uncomplicated-adult", "--script", str(script), "--no-model", "--json"]
    )
    assert done.exit_code == 0, done.output
    with open_store() as store:
        (event,) = store.events()
        attempt = store.attempts()[0]
        case = example_case()
        assert event["payload"]["attempt_id"] == attempt.id
        assert event["payload"]["case"]["title"] == case.title
        assert (
            event["payload"]["case"]["competencies"]
            == list(case.competencies)
            == ["fever-infection", "safe-prescribing", "test-stewardship"]
        )
        assert event["payload"]["model"] is None and event["payload"]["turns"] == 5
        assert event["payload"]["score"]["total"] == store.score(attempt.id)["total"]  # type: ignore[index]


# -- the migration and back-fill -----------------------------------------------------------------


def _old_database(home: Path, attempts: list[tuple[str, str, str]]) -> Path:
    """A database at m006 (before result events) with finished, scored attempts
    (id, case_id, ended), scored by the real scorer."""
    from edgetutor.scoring.checklist import Transcript, score

    home.mkdir(parents=True, exist_ok=True)
    path = home / "edgetutor.db"
    old = Database(path)
    mig.migrate(old, stop_after="m006_scores")
    old.execute("INSERT INTO trainees (name, created) VALUES ('Ama', '2025-01-01T00:00:00.000+00:00')")
    case = example_case()
    for attempt_id, case_id, ended in attempts:
        old.execute(
            "INSERT INTO attempts (id, trainee_id, pack_id, pack_version, pack_digest, case_id, case_version,"
            " model, started, ended, status) VALUES (?, 1, 'test-pack', 1, 'd', ?, 1, NULL, ?, ?, 'finished')",
            [attempt_id, case_id, "2025-01-01T08:00:00.000+00:00", ended],
        )
        s = score(
            case,
            Transcript(["fever"], [], [], "malaria", None, 2, 60.0),
            {"id": "test-pack", "version": 1, "digest": "d"},
        )
        old.execute(
            "INSERT INTO scores (attempt_id, total, passed, pack_id, pack_version, pack_digest, scorer_version,"
            " detail, created) VALUES (?, ?, ?, 'test-pack', 1, 'd', '1.0', ?, ?)",
            [attempt_id, s.total, int(s.passed), json.dumps(s.as_dict()), ended],
        )
    old.conn.commit()
    old.close()
    return path


def test_upgrade_back_fills_earlier_results_oldest_first(home: Path, make_pack: Any) -> None:
    assert CliRunner().invoke(make_cli(), ["pack", "install", str(make_pack())]).exit_code == 0
    path = _old_database(
        home,
        [
            ("late", "malaria-uncomplicated-adult", "2025-01-03T09:00:00.000+00:00"),
            ("early", "malaria-uncomplicated-adult", "2025-01-02T09:00:00.000+00:00"),
            ("gone", "a-case-no-longer-installed", "2025-01-04T09:00:00.000+00:00"),
        ],
    )
    with open_store(path) as store:
        assert store.migrated == ("m007_result_events", "m008_new_device_key")
        events = store.events()
        assert [e["payload"]["attempt_id"] for e in events] == ["early", "late", "gone"]
        assert events[0]["payload"]["case"]["title"] == example_case().title
        # a case that is no longer installed: its id stands for the title, no competencies
        assert events[2]["payload"]["case"] == {
            "id": "a-case-no-longer-installed", "version": 1, "title": "a-case-no-longer-installed",
            "specialty": None, "competencies": [],
        }  # fmt: skip
        assert store.pending_count() == 3
        key = sealed_key(store)
        assert all(protocol.check_event(e, key.public) is None for e in events)
        finish(store)
        assert store.last_seq() == 4 and store.events(after=3)[0]["prev"] == events[2]["hash"]
    with open_store(path) as store:  # opening again seals nothing twice
        assert store.last_seq() == 4


def test_upgrade_with_a_corrupt_key_opens_and_seals_later(home: Path) -> None:
    path = _old_database(home, [("a1", "malaria-uncomplicated-adult", "2025-01-03T09:00:00.000+00:00")])
    (home / "device").mkdir()
    (home / "device" / "device.key").write_text("not a key")
    with open_store(path) as store:
        assert store.events() == []
        with pytest.raises(KeyFileError, match="is corrupt"):
            store.seal_backlog()
        assert store.events() == [] and store.attempt("a1").status == "finished"
    (home / "device" / "device.key").unlink()
    with open_store(path) as store:
        assert store.seal_backlog() == 1 and store.pending_count() == 1


# -- status, sync failures without a hub ---------------------------------------------------------


def test_status_reads_what_the_app_shows(store: Store) -> None:
    assert client.status(store) == client.SyncStatus(0, None, None, False, None)
    finish(store)
    finish(store)
    s = client.status(store)
    assert (s.pending, s.enrolled, s.hub, s.last_sync) == (2, False, None, None)


def test_sync_without_a_hub_or_token_says_what_to_do(store: Store) -> None:
    finish(store)
    with pytest.raises(SyncError, match=r"no hub address yet: run `edgetutor sync --hub URL --token TOKEN`"):
        client.sync(store)
    with pytest.raises(SyncError, match="'ftp://x' is not an http:// or https:// URL"):
        client.sync(store, "ftp://x")
    with pytest.raises(SyncError, match="this device is not enrolled with a hub"):
        client.sync(store, f"http://127.0.0.1:{closed_port()}")
    assert store.pending_count() == 1 and store.sync_state().enrolled is False


def test_a_hub_that_is_down_keeps_everything_and_the_token(store: Store) -> None:
    finish(store)
    finish(store)
    port = closed_port()
    slept: list[float] = []
    with pytest.raises(SyncError) as err:
        client.sync(store, f"http://127.0.0.1:{port}", "tok-123", tries=4, base_delay=0.1, sleep=slept.append)
    message = str(err.value)
    assert "\n" not in message
    assert (
        f"cannot reach the hub at http://127.0.0.1:{port} (the enrollment): connection refused after 4 tries"
        in message
    )
    assert "2 results kept for the next sync" in message
    # exponential backoff with jitter: 0.1, 0.2, 0.4 times 0.5..1.5, no sleep after the last try
    assert len(slept) == 3
    for i, delay in enumerate(slept):
        assert 0.1 * 2**i * 0.5 <= delay <= 0.1 * 2**i * 1.5
    state = store.sync_state()
    assert (state.hub_url, state.enroll_token, state.enrolled) == (
        f"http://127.0.0.1:{port}",
        "tok-123",
        False,
    )
    assert state.last_error == message and state.last_sync is None
    assert store.pending_count() == 2 and rows(
        store.path, "SELECT count(*) FROM outbox WHERE state = 'sent'"
    ) == [(0,)]


def test_probe_never_raises(tmp_path: Path) -> None:
    assert client.probe(f"http://127.0.0.1:{closed_port()}") is False
    assert client.probe("not a url") is False
    # a web server that is not a hub
    port = closed_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _listening(port):
            time.sleep(0.1)
        assert client.probe(f"http://127.0.0.1:{port}", timeout=2) is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_second_sync_at_the_same_time_is_refused(store: Store, home: Path) -> None:
    from filelock import FileLock

    finish(store)
    (home / "device").mkdir(exist_ok=True)
    with FileLock(home / "device" / "sync.lock"):
        with pytest.raises(SyncError, match="another sync is already running on this device"):
            client.sync(store, f"http://127.0.0.1:{closed_port()}", "t")
    assert store.sync_state().hub_url is None and store.pending_count() == 1


# -- USB export -----------------------------------------------------------------------------------


def test_export_writes_one_signed_bundle_and_marks_nothing_sent(store: Store, tmp_path: Path) -> None:
    finish(store)
    finish(store, "Kofi")
    store.update_sync_state(enroll_token="tok-usb")
    out = tmp_path / "usb"
    done = bundle_mod.export(store, out)
    assert done is not None and (done.events, done.first, done.last, done.enroll) == (2, 1, 2, True)
    key = sealed_key(store)
    assert [p.name for p in out.iterdir()] == [f"edgetutor-results-{key.device_id}-000001-000002.etres"]
    doc = json.loads(done.path.read_bytes())
    assert doc["kind"] == protocol.BUNDLE_KIND and doc["device_id"] == key.device_id
    assert doc["public_key"] == key.public_pem and doc["enroll"] == {"token": "tok-usb"}
    assert protocol.check_bundle_sig(doc, key.public)
    assert doc["events"] == store.events()
    assert all(protocol.check_event(e, key.public) is None for e in doc["events"])
    doc["events"][0]["payload"]["score"]["total"] = 1.0  # an edit breaks the signature
    assert not protocol.check_bundle_sig(doc, key.public)
    assert store.pending_count() == 2  # only a hub acknowledgement marks results sent
    # once enrolled, no token; only the results not acknowledged
    store.update_sync_state(enrolled=1, enroll_token=None)
    store.set_acked(1)
    again = bundle_mod.export(store, out)
    assert again is not None and (again.events, again.first, again.enroll) == (1, 2, False)
    assert json.loads(again.path.read_bytes())["enroll"] is None
    store.set_acked(2)
    assert bundle_mod.export(store, tmp_path / "empty") is None and not (tmp_path / "empty").exists()


def test_a_full_disk_during_export_leaves_no_partial_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish(store)
    out = tmp_path / "usb"
    out.mkdir()
    (out / "other.txt").write_text("kept")
    real_fdopen = os.fdopen

    class FullDisk:
        """A file that takes the first half of what is written, then fails like a full disk."""

        def __init__(self, f: Any) -> None:
            self.f = f

        def write(self, data: bytes) -> int:
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.f.close()

    monkeypatch.setattr(
        "edgetutor.fsutil.os.fdopen", lambda fd, mode="r", *a, **k: FullDisk(real_fdopen(fd, mode, *a, **k))
    )
    before_out, before_db = tree_state(out), rows(store.path, "SELECT seq, state, tries FROM outbox")
    result = CliRunner().invoke(make_cli(), ["results", "export", "--out", str(out)])
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("Error: cannot write ") and line.endswith("the disk is full; nothing was written")
    assert "\n" not in line
    assert tree_state(out) == before_out  # no partial bundle, no temporary file
    assert rows(store.path, "SELECT seq, state, tries FROM outbox") == before_db


def test_export_to_a_file_instead_of_a_folder_is_refused(store: Store, tmp_path: Path) -> None:
    finish(store)
    target = tmp_path / "file"
    target.write_text("x")
    result = CliRunner().invoke(make_cli(), ["results", "export", "--out", str(target)])
    assert result.exit_code != 0 and target.read_text() == "x"


# -- commands -------------------------------------------------------------------------------------


def test_results_list_and_export_commands(home: Path, tmp_path: Path) -> None:
    with open_store() as store:
        empty = CliRunner().invoke(make_cli(), ["results", "list"])
        assert empty.exit_code == 0 and "0 pending, 0 sent; last sync: never; hub: none" in empty.output
        nothing = CliRunner().invoke(make_cli(), ["results", "export", "--out", str(tmp_path / "usb")])
        assert nothing.output == "Nothing to export: no result is waiting for the hub.\n"
        assert not (tmp_path / "usb").exists()
        finish(store, "Ama")
        finish(store, "Kofi", diagnosis="tuberculosis")
        store.set_acked(1)
        device = store.sync_state().device_id
    listing = CliRunner().invoke(make_cli(), ["results", "list"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0] == f"Device {device}: not enrolled"
    assert lines[1] == "1 pending, 1 sent; last sync: never; hub: none"
    assert (
        lines[2].startswith("#1     sent") and "Ama" in lines[2] and "malaria-uncomplicated-adult" in lines[2]
    )
    assert lines[3].startswith("#2     pending") and "Kofi" in lines[3] and lines[3].endswith("Not yet")
    out = CliRunner().invoke(make_cli(), ["results", "export", "--out", str(tmp_path / "usb")])
    assert out.exit_code == 0 and out.output.startswith("Wrote 1 result (#2-#2) to ")
    sync = CliRunner().invoke(make_cli(), ["sync"])
    assert sync.exit_code == 1 and sync.output.startswith("Error: no hub address yet")


def test_importing_sync_loads_no_ui_no_hub_and_creates_nothing(home: Path) -> None:
    code = (
        "import sys, edgetutor.sync.client, edgetutor.sync.bundle, edgetutor.sync.device,"
        " edgetutor.sync.events, edgetutor.sync.commands\n"
        "print(sorted(m for m in sys.modules if m.startswith(('textual', 'edgetutor.hub', 'starlette', 'uvicorn'))))"
    )
    env = {**os.environ, "EDGETUTOR_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert not home.exists()


def test_a_store_opened_without_a_sealer_keeps_the_score_and_seals_it_later(home: Path) -> None:
    """Tools that open the database without the device key lose nothing: the score is kept, and
    the result is signed, oldest first, once the database is opened the app's way."""
    from edgetutor.store import open_db

    with open_db() as bare:
        case = example_case()
        attempt = bare.start_attempt(bare.trainee("Ama"), "test-pack", 1, "d", case.id, case.version, None)
        from edgetutor.scoring.checklist import Transcript, score

        result = score(
            case, Transcript([], [], [], "malaria", None, 1, 1.0), {"id": "p", "version": 1, "digest": "d"}
        )
        bare.finish_attempt(attempt.id, result.as_dict())
        assert bare.score(attempt.id) is not None and bare.events() == []
        with pytest.raises(EdgeTutorError) as err:
            bare.seal_backlog()
        assert str(err.value) == "results cannot be signed: the database was opened without a sealer"
        assert bare.events() == [] and bare.pending_count() == 0
        assert not (home / "device").exists()  # no key was made either
    with open_store() as store:
        assert store.seal_backlog() == 1
        [event] = store.events(pending=True)
        assert event["payload"]["attempt_id"] == attempt.id
        assert protocol.check_event(event, sealed_key(store).public) is None
