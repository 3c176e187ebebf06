"""Hostile input, one attack at a time: each finding of the attack run on the first release, and
the class it stands for, refused in one line with nothing installed, written or lost.

The property-based suite (test_hostile_props.py) then throws generated input at the same doors;
docs/threat-model.md maps each defence to its test here.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgetutor.cases.lint import lint_case_text
from edgetutor.cases.loader import parse_case_text, parse_pack_meta
from edgetutor.cli import make_cli
from edgetutor.errors import CaseFormatError, CasePackError
from edgetutor.hub.db import HubDB
from edgetutor.packs.install import PackStore
from edgetutor.packs.reader import open_pack
from edgetutor.packs.signing import generate
from edgetutor.packs.trust import TrustStore
from edgetutor.sync import protocol

from .conftest import ROOT, tree_state, write_source
from .hostile import (
    CASE_NAME,
    GOOD_CASE,
    PACK_YAML,
    LoggedHub,
    assert_cli_refusal,
    assert_one_line,
    limits,
    pack_with_case,
    post,
    signed_pack,
    zero_member_pack,
)
from .hub_helpers import Device, Hub, issue_token

DEMO_KEY = ROOT / "casepacks" / "demo-publisher.key"
DEMO_PUB = ROOT / "casepacks" / "demo-publisher.pub"


def laughs(levels: int = 9, fan: int = 9) -> bytes:
    """The billion-laughs alias bomb: each level refers to the previous one `fan` times."""
    lines = [b"l0: &l0 [" + b", ".join([b"lol"] * fan) + b"]"]
    for i in range(1, levels):
        refs = b", ".join([b"*l%d" % (i - 1)] * fan)
        lines.append(b"l%d: &l%d [%s]" % (i, i, refs))
    return b"\n".join(lines) + b"\n"


def with_line(case: bytes, line: bytes) -> bytes:
    """The good case with `line` inserted as its second line."""
    first, rest = case.split(b"\n", 1)
    return first + b"\n" + line + b"\n" + rest


# name -> (document, line the refusal names, words it must hold)
HOSTILE_YAML: dict[str, tuple[bytes, int | None, str]] = {
    "python-tag": (
        with_line(GOOD_CASE, b"evil: !!python/object/apply:os.system ['touch /tmp/pwned']"),
        2,
        "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
    ),
    "python-name": (with_line(GOOD_CASE, b"evil: !!python/name:os.system"), 2, "is not allowed"),
    "custom-tag": (with_line(GOOD_CASE, b"evil: !include /etc/passwd"), 2, "tag '!include' is not allowed"),
    "tag-directive": (b"%TAG !! tag:evil.example,2000:\n---\nid: !!str x\n", 3, "tag:evil.example"),
    "binary-tag": (b"id: !!binary aGVsbG8=\n", 1, "tag:yaml.org,2002:binary"),
    # Found by the property suite: ruamel's bool constructor raises KeyError on a bad value.
    "bool-tag": (b"title: !!bool 'ls'\n", 1, "tag 'tag:yaml.org,2002:bool' is not allowed"),
    "deep-flow-900": (b"id: " + b"[" * 900, 1, "nested more than 32 levels deep"),
    "deep-flow-100k": (b"id: " + b"{a: " * 100_000, 1, "nested more than 32 levels deep"),
    "deep-block-3000": (b"- " * 3000 + b"x\n", 1, "nested more than 32 levels deep"),
    "deep-indented": (b"".join(b" " * i + b"k:\n" for i in range(900)), 33, "nested more than 32 levels"),
    "int-5000-digits": (b"version: " + b"1" * 5000 + b"\n", 1, "a number of 5,000 characters"),
    "hex-5000-digits": (b"version: 0x" + b"f" * 5000 + b"\n", 1, "a number of 5,002 characters"),
    "float-overflow": (b"version: 1e999999\n", 1, "too large a number"),
    "nan": (b"version: .nan\n", 1, "is not a finite number"),
    "impossible-date": (b"expires: 2025-02-30\n", 1, "is not a real date"),
    "billion-laughs": (laughs(), 5, "aliases expand to more than 50,000 values"),
    "merge-bomb": (
        b"a: &a {x: 1, y: 2}\n"
        + b"".join(
            b"b%d: &b%d {<<: [*%s, *%s]}\n" % (i, i, b"b%d" % (i - 1), b"b%d" % (i - 1)) for i in range(1, 30)
        ),
        None,
        "alias",
    ),
    "recursive-alias": (b"id: &a [x, *a]\n", 1, "alias *a refers to a value that contains it"),
    "undefined-alias": (b"id: *nowhere\n", 1, "alias *nowhere has no anchor"),
    "alias-as-key": (b"k: &k v\n*k : 2\n", 2, "a mapping key must be plain text"),
    "list-as-key": (b"? [a, b]\n: 2\n", 1, "a mapping key must be plain text"),
    "two-documents": (b"id: a\n---\nid: b\n", 2, "a second YAML document"),
    "latin-1": (b"id: x\ntitle: Caf\xe9\n", 2, "not UTF-8 text (byte 0xe9)"),
    "utf-16-bom": ("id: x\n".encode("utf-16"), 1, "UTF-16 text: save the file as UTF-8"),
    "utf-16-no-bom": ("id: x\n".encode("utf-16-le"), 1, "UTF-16 or UTF-32 text"),
    "utf-32": ("id: x\n".encode("utf-32"), 1, "UTF-32 text"),
    "nul-byte": (b"id: x\ntitle: a\x00b\n", 2, "a NUL byte"),
    "escape-char": (b"id: x\ntitle: \x1b]0;pwned\x07\n", 2, "control character U+001B"),
    "c1-control": ("id: x\ntitle: a\u009bb\n".encode(), 2, "control character U+009B"),
    "too-large": (b"id: x\ntitle: " + b"y" * 600_000 + b"\n", None, "larger than the 512 kB"),
    "not-a-mapping": (b"- just\n- a list\n", 1, "must be a YAML mapping"),
    "syntax": (b"id: [unclosed\n", None, "YAML syntax error"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_every_yaml_reader_refuses_in_one_line_naming_file_and_line(name: str) -> None:
    doc, line, words = HOSTILE_YAML[name]
    where = f"cases/x.yaml:{line}: " if line else "cases/x.yaml"
    with limits(memory_mb=256, seconds=10):
        for read in (parse_case_text, parse_pack_meta):
            with pytest.raises(CaseFormatError) as caught:
                read(doc, "cases/x.yaml")
            assert_one_line(str(caught.value), where, words.replace("pack.yaml", ""))
        case, problems = lint_case_text(doc, "cases/x.yaml")
    assert case is None and len(problems) == 1, problems
    assert_one_line(str(problems[0]), where.rstrip(" "), words)


def test_long_text_that_looks_numeric_is_read_in_linear_time() -> None:
    # Not a number: a pattern that backtracked on such text once took 52 s for 20,000 digits.
    doc = with_line(GOOD_CASE, b"notes: " + b"1" * 400_000 + b" .")
    with limits(memory_mb=256, seconds=5):
        _, problems = lint_case_text(doc, "c.yaml")
    assert [str(p) for p in problems] == ["c.yaml:2: error: notes: unknown field"]


def test_bom_and_crlf_in_utf8_are_fine() -> None:
    assert parse_case_text(b"\xef\xbb\xbf" + GOOD_CASE.replace(b"\n", b"\r\n"), "c.yaml").id


def test_pack_lint_lists_hostile_sources_one_line_each_and_changes_nothing(tmp_path: Path) -> None:
    src = write_source(tmp_path / "src")
    (src / "pack.yaml").write_bytes(b"id: " + b"[" * 900)
    (src / "cases" / "evil.yaml").write_bytes(HOSTILE_YAML["python-tag"][0])
    (src / "cases" / "bomb.yaml").write_bytes(laughs())
    (src / "cases" / "latin.yaml").write_bytes(HOSTILE_YAML["latin-1"][0])
    before = tree_state(src)
    with limits(memory_mb=256, seconds=20):
        result = CliRunner().invoke(make_cli(), ["pack", "lint", str(src)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.stdout.splitlines()
    for line in lines:
        assert_one_line(line)
    assert any(f"{src / 'pack.yaml'}:1: error: nested more than 32 levels" in line for line in lines)
    assert any(f"{src / 'cases' / 'evil.yaml'}:2: error: tag" in line for line in lines)
    assert any(f"{src / 'cases' / 'bomb.yaml'}:5: error: aliases expand" in line for line in lines)
    assert any(f"{src / 'cases' / 'latin.yaml'}:2: error: not UTF-8" in line for line in lines)
    assert tree_state(src) == before


def test_pack_build_refuses_a_non_utf8_pack_yaml_in_one_line(tmp_path: Path, publisher: Any) -> None:
    src = write_source(tmp_path / "src")
    (src / "pack.yaml").write_bytes(b"id: caf\xe9\n")
    result = CliRunner().invoke(
        make_cli(),
        ["pack", "build", str(src), "--key", str(publisher[0]), "--out", str(tmp_path / "o.etpack")],
    )
    assert result.exit_code == 1
    assert_cli_refusal(result.stderr, "pack.yaml:1: error: not UTF-8 text (byte 0xe9)")
    assert not (tmp_path / "o.etpack").exists()


# -- signed packs with hostile sources: install and verify refuse alike ---------------------------
INSTALL_CASES = ["python-tag", "deep-flow-900", "int-5000-digits", "billion-laughs", "latin-1", "utf-16-bom"]


def refused_by_cli(args: list[str], home: Path, *needles: str) -> str:
    before = tree_state(home)
    with limits(memory_mb=512, seconds=30):
        result = CliRunner().invoke(make_cli(), args)
    assert result.exit_code == 1, result.output
    line = assert_cli_refusal(result.stderr, *needles)
    assert tree_state(home) == before
    return line


@pytest.mark.parametrize("name", INSTALL_CASES)
def test_install_and_verify_refuse_a_signed_pack_with_a_hostile_case(
    name: str, publisher: Any, tmp_path: Path, home: Path
) -> None:
    doc, line, words = HOSTILE_YAML[name]
    pack = pack_with_case(tmp_path / f"{name}.etpack", publisher[0], doc)
    where = f"malformed case: {CASE_NAME}:{line}: " if line else f"malformed case: {CASE_NAME}"
    installed = refused_by_cli(["pack", "install", str(pack)], home, f"refused {name}.etpack", where, words)
    verified = refused_by_cli(["pack", "verify", str(pack)], home, where, words)
    assert installed == verified  # verify parses what install parses


@pytest.mark.parametrize("name", ["deep-flow-900", "deep-block-3000", "billion-laughs", "latin-1", "nan"])
def test_install_and_verify_refuse_a_signed_pack_with_a_hostile_pack_yaml(
    name: str, publisher: Any, tmp_path: Path, home: Path
) -> None:
    doc, _, words = HOSTILE_YAML[name]
    pack = pack_with_case(tmp_path / "p.etpack", publisher[0], GOOD_CASE, pack_yaml=doc)
    installed = refused_by_cli(["pack", "install", str(pack)], home, "malformed pack.yaml: pack.yaml", words)
    assert installed == refused_by_cli(["pack", "verify", str(pack)], home, words)


def test_an_oversized_case_is_refused_before_it_is_read(publisher: Any, tmp_path: Path, home: Path) -> None:
    big = b"# " + b"x" * 600_000 + b"\n" + GOOD_CASE
    pack = pack_with_case(tmp_path / "big.etpack", publisher[0], big)
    refused_by_cli(
        ["pack", "install", str(pack)], home, f"{CASE_NAME} is {len(big):,} bytes", "larger than the 512 kB"
    )


def test_a_usb_folder_installs_every_good_pack_past_bad_ones(
    publisher: Any, make_pack: Callable[..., Path], tmp_path: Path, home: Path
) -> None:
    usb = tmp_path / "usb"
    (usb / "more").mkdir(parents=True)
    pack_with_case(usb / "a-evil.etpack", publisher[0], HOSTILE_YAML["python-tag"][0], pack_id="evil-a")
    shutil.copy(make_pack(1, "good-b"), usb / "b-good.etpack")
    pack_with_case(usb / "more" / "c-deep.etpack", publisher[0], GOOD_CASE, pack_yaml=b"id: " + b"[" * 900)
    shutil.copy(make_pack(1, "good-d"), usb / "more" / "d-good.etpack")
    (usb / "e-garbage.etpack").write_bytes(b"\x00" * 100)
    with limits(memory_mb=512, seconds=60):
        result = CliRunner().invoke(make_cli(), ["pack", "install", str(usb)])
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 3, errors
    for line in errors:
        assert_one_line(line, "Error: refused ")
    assert "a-evil.etpack" in errors[0] and "c-deep.etpack" in errors[2] and "e-garbage" in errors[1]
    assert result.stdout.count("Installed: ") == 2
    assert {p.pack_id for p in PackStore().installed()} == {"good-b", "good-d"}


# -- a bad pack published by a hub never breaks sync -----------------------------------------------
def test_a_bad_published_pack_never_breaks_sync(
    publisher: Any, make_pack: Callable[..., Path], tmp_path: Path, home: Path, sqlite_hub: Hub
) -> None:
    from .sync_helpers import cli, finish

    evil = pack_with_case(
        tmp_path / "evil.etpack", publisher[0], HOSTILE_YAML["python-tag"][0], pack_id="evil"
    )
    deep = pack_with_case(tmp_path / "deep.etpack", publisher[0], b"id: " + b"[" * 900, pack_id="deep")
    for pack in (evil, deep, make_pack(1, "good-pack")):
        sqlite_hub.run("publish", str(pack))
    from edgetutor.service import open_store

    with open_store() as store:
        finish(store)
    for attempt in (1, 2):  # every run: results sent, the bad packs reported and skipped
        done = cli("sync", "--hub", sqlite_hub.url, "--token", sqlite_hub.enroll(), home=home, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].startswith(f"Sent {2 - attempt} result"), done.stdout
        errors = done.stderr.splitlines()
        assert len(errors) == 2, errors
        for line in errors:
            assert_one_line(line, "Pack not installed: pack ")
        assert any("evil v1 refused" in e and "is not allowed" in e for e in errors)
        assert any("deep v1 refused" in e and "nested more than 32" in e for e in errors)
        assert "Traceback" not in done.stdout + done.stderr
    listed = cli("results", "list", home=home).stdout
    assert "last sync: never" not in listed and "1 sent" in listed.replace("0 pending, ", "")
    assert sqlite_hub.seqs(sqlite_hub.query("SELECT id FROM devices")[0][0]) == [1]
    assert {p.pack_id for p in PackStore().installed()} == {"good-pack"}
    assert not list(home.glob(".pack-download-*"))


# -- run --script: any bytes ------------------------------------------------------------------------
@pytest.fixture
def demo_installed(home: Path) -> Path:
    result = CliRunner().invoke(
        make_cli(), ["pack", "install", str(ROOT / "casepacks" / "edgetutor-demo.etpack")]
    )
    assert result.exit_code == 0, result.output
    return home


@pytest.mark.parametrize(
    ("script", "words"),
    [
        (
            b"how long have you had the fever?\n\xff\xfe\x00\x01binary\n",
            "script.txt:2: binary data (a NUL byte)",
        ),
        (b"fever?\nCaf\xe9\n", "script.txt:2: not UTF-8 text (byte 0xe9)"),
        ("fever?\n".encode("utf-16"), "script.txt:1: UTF-16 text"),
        (b"fever?\n" + b"x" * 5000 + b"\n", "script.txt:2: a line of 5,000 characters"),
        (b"a\n" * 600_000, "larger than 1024 kB"),
    ],
)
def test_run_refuses_an_unreadable_script_and_stores_nothing(
    script: bytes, words: str, demo_installed: Path, tmp_path: Path
) -> None:
    path = tmp_path / "script.txt"
    path.write_bytes(script)
    refused_by_cli(
        ["run", "malaria-uncomplicated-adult", "--no-model", "--script", str(path)], demo_installed, words
    )


def test_transcripts_never_echo_terminal_escapes(demo_installed: Path, tmp_path: Path) -> None:
    path = tmp_path / "script.txt"
    path.write_bytes(
        b"\x1b]0;owned\x07how long have you \x1b[31mhad the fever?\x1b[0m\r\n"
        b"note \xc2\x9b2J\xe2\x80\xaeevil\n\tdiagnose malaria\x08\x08\nend\n"
    )
    result = CliRunner().invoke(
        make_cli(), ["run", "malaria-uncomplicated-adult", "--no-model", "--script", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert not re_control(result.stdout), repr(result.stdout)
    assert "> ]0;ownedhow long have you [31mhad the fever?[0m" in result.stdout
    as_json = CliRunner().invoke(
        make_cli(), ["run", "malaria-uncomplicated-adult", "--no-model", "--json", "--script", str(path)]
    )
    assert as_json.exit_code == 0 and not re_control(as_json.stdout)
    json.loads(as_json.stdout)


def re_control(text: str) -> bool:
    from .hostile import CONTROL

    return bool(CONTROL.search(text.replace("\n", "")))


# -- hub: bundles and API bodies ---------------------------------------------------------------------
def hub_state(db: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 - fixed names
            for t in ("devices", "events", "tokens", "idempotency", "anomalies")
        }
    finally:
        conn.close()


def deep_json(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "deep-100k": (deep_json(100_000), "nested too deeply"),
    "deep-100k-objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    "deep-40": (b'{"device_id": "x", "events": ' + deep_json(40) + b"}", "nested too deeply"),
    "huge-int": (b'{"device_id": "x", "events": [' + b"9" * 5000 + b"]}", "a number of 5,000 digits"),
    "nan": (b'{"device_id": "x", "events": [NaN]}', "NaN is not a number JSON allows"),
    "infinity": (b'{"device_id": "x", "events": [-Infinity]}', "-Infinity is not a number"),
    "float-overflow": (b'{"device_id": "x", "events": [1e999]}', "a number too large"),
    "duplicate-keys": (
        b'{"device_id": "a", "device_id": "b", "events": []}',
        "the key 'device_id' appears twice",
    ),
    "latin-1": (b'{"device_id": "caf\xe9", "events": []}', "not JSON (not UTF-8 text)"),
    "utf-16": ('{"device_id": "x", "events": []}'.encode("utf-16"), "not JSON"),
    "lone-surrogate": (b'{"device_id": "\\ud800", "events": []}', "not valid Unicode"),
    "not-json": (b"\x00\x01\x02", "not JSON"),
}


@pytest.fixture
def hub_db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hub.db"
    HubDB(path).close()
    yield path


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hub_import_refuses_a_hostile_bundle_in_one_line_and_writes_nothing(
    name: str, hub_db: Path, tmp_path: Path
) -> None:
    body, words = HOSTILE_BODIES[name]
    bundle = tmp_path / "x.etres"
    bundle.write_bytes(body)
    before = hub_state(hub_db)
    with limits(memory_mb=512, seconds=20):
        result = CliRunner().invoke(make_cli(), ["hub", "import", str(bundle), "--db", str(hub_db)])
    assert result.exit_code == 1, result.output
    assert_cli_refusal(result.stderr, "x.etres", words)
    assert hub_state(hub_db) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("v", [1]),
        ("v", True),
        ("kind", {"a": 1}),
        ("device_id", 5),
        ("device_id", "d" * 100_000),
        ("public_key", None),
        ("public_key", "k" * 100_000),
        ("events", {"0": 1}),
        ("enroll", [["token"]]),
        ("sig", 12),
        ("created", {"x": []}),
    ],
)
def test_hub_import_refuses_wrong_types_at_the_top_of_a_bundle(
    field: str, value: Any, hub_db: Path, tmp_path: Path
) -> None:
    device = Device()
    bundle = device.bundle(device.events(2), token=issue_token(hub_db))
    bundle[field] = value
    path = tmp_path / "b.etres"
    path.write_text(json.dumps(bundle))
    before = hub_state(hub_db)
    result = CliRunner().invoke(make_cli(), ["hub", "import", str(path), "--db", str(hub_db)])
    assert result.exit_code == 1, result.output
    assert_cli_refusal(result.stderr)
    assert hub_state(hub_db) == before


@pytest.fixture(scope="module")
def logged_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedHub]:
    hub = LoggedHub(tmp_path_factory.mktemp("hub") / "hub.db", memory_mb=2048)
    try:
        yield hub
    finally:
        hub.stop()


def assert_clean_log(hub: LoggedHub) -> None:
    text = hub.text()
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]
    assert hub.alive()


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_api_bodies_get_a_json_400_never_a_500(name: str, logged_hub: LoggedHub) -> None:
    body, words = HOSTILE_BODIES[name]
    before = hub_state(logged_hub.db)
    for path in ("/api/v1/events", "/api/v1/enroll"):
        status, reply = post(logged_hub.url, path, body)
        assert status == 400, (status, reply)
        assert_one_line(reply["error"], words)
    assert hub_state(logged_hub.db) == before
    assert_clean_log(logged_hub)


def read_answer(sock: socket.socket) -> str:
    """One HTTP answer read off a raw socket: its head, then as much body as it declares."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            return data.decode()
        data += part
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return (head + b"\r\n\r\n" + body).decode()


def test_request_and_event_size_limits(logged_hub: LoggedHub) -> None:
    device = Device()
    status, _ = post(
        logged_hub.url,
        "/api/v1/enroll",
        json.dumps(device.enroll_body(issue_token(logged_hub.db))).encode(),
    )
    assert status == 200
    # 20 MB in one request: refused from its Content-Length, before a byte of it is read.
    with socket.create_connection(("127.0.0.1", logged_hub.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (20 * 1024 * 1024)
        )
        answer = read_answer(sock)
    assert answer.startswith("HTTP/1.1 413 ") and '"request body larger than 16 MB"' in answer, answer
    # Without a Content-Length (chunked), the cap applies while it is read.
    big = device.event(title="x" * (20 * 1024 * 1024))
    with socket.create_connection(("127.0.0.1", logged_hub.port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        data = json.dumps({"device_id": device.id, "events": [big]}).encode()
        try:
            for at in range(0, len(data), 1 << 20):
                piece = data[at : at + (1 << 20)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        except OSError:
            pass  # the hub answered and closed before the end: that is the point
        try:
            answer = read_answer(sock)
        except ConnectionResetError:
            answer = "HTTP/1.1 413 (the reset overtook the answer)"
    assert answer.startswith("HTTP/1.1 413 "), answer
    # A signed event of 100 kB in an acceptable request: refused on its own, nothing stored.
    device.seq, device.head = 0, protocol.GENESIS
    fat = device.event(title="x" * 100_000)
    status, reply = post(
        logged_hub.url, "/api/v1/events", json.dumps({"device_id": device.id, "events": [fat]}).encode()
    )
    assert status == 200 and reply["accepted"] == 0, reply
    (rejected,) = reply["rejected"]
    assert rejected["reason"].startswith("event of 10") and rejected["reason"].endswith(
        "bytes: at most 64 kB"
    )
    assert sqlite3.connect(logged_hub.db).execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
    # An honest event still goes in after both.
    device.seq, device.head = 0, protocol.GENESIS
    status, reply = post(
        logged_hub.url,
        "/api/v1/events",
        json.dumps({"device_id": device.id, "events": [device.event()]}).encode(),
    )
    assert status == 200 and reply["accepted"] == 1
    assert_clean_log(logged_hub)


def test_a_client_that_disconnects_mid_body_is_one_log_line(logged_hub: LoggedHub) -> None:
    before = logged_hub.text()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", logged_hub.port)) as sock:
            sock.sendall(
                b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n" + b'{"device_id": "' + b"a" * 5000
            )
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and logged_hub.text().count("disconnected") - before.count("disconnected") < 3
    ):
        time.sleep(0.05)
    new = logged_hub.text()[len(before) :].splitlines()
    assert len([line for line in new if "disconnected" in line]) == 3, new
    assert all("refused POST /api/v1/events" in line for line in new), new
    assert_clean_log(logged_hub)


# -- scoped trust: the demo key vouches only for the demo pack ----------------------------------------
def test_the_demo_key_signs_only_the_demo_pack(tmp_path: Path, home: Path) -> None:
    forged = pack_with_case(tmp_path / "forged.etpack", DEMO_KEY, GOOD_CASE, pack_id="clinic-pack")
    words = "is trusted only for pack edgetutor-demo, not for pack 'clinic-pack'"
    refused_by_cli(["pack", "install", str(forged)], home, "[DEMO publisher: not vetted]", words)
    refused_by_cli(["pack", "verify", str(forged)], home, words)
    # Its own id still installs (anyone can rebuild the demo pack; its results are practice).
    demo = pack_with_case(tmp_path / "demo.etpack", DEMO_KEY, GOOD_CASE, pack_id="edgetutor-demo", version=9)
    result = CliRunner().invoke(make_cli(), ["pack", "install", str(demo)])
    assert result.exit_code == 0, result.output


def test_the_demo_key_stays_scoped_when_added_again(tmp_path: Path, home: Path) -> None:
    store = TrustStore()
    demo = next(k for k in store.keys() if k.demo)
    store.remove(demo.key_id)
    result = CliRunner().invoke(make_cli(), ["trust", "add", str(DEMO_PUB), "--name", "Demo again"])
    assert result.exit_code == 0 and "for pack edgetutor-demo" in result.output
    forged = pack_with_case(tmp_path / "forged.etpack", DEMO_KEY, GOOD_CASE, pack_id="other")
    refused_by_cli(["pack", "install", str(forged)], home, "trusted only for pack edgetutor-demo")


def test_an_old_trust_store_with_an_unscoped_demo_entry_is_scoped(tmp_path: Path, home: Path) -> None:
    demo = next(k for k in TrustStore().keys() if k.demo)
    home.mkdir(parents=True, exist_ok=True)
    entry = {"key_id": demo.key_id, "name": "Demo", "public_key": demo.public_key, "demo": True, "added": ""}
    (home / "trust.json").write_text(json.dumps({"format": 1, "keys": [entry], "removed": []}))
    forged = pack_with_case(tmp_path / "forged.etpack", DEMO_KEY, GOOD_CASE, pack_id="other")
    refused_by_cli(["pack", "install", str(forged)], home, "trusted only for pack edgetutor-demo")


def test_trust_add_scopes_any_key_to_pack_ids(tmp_path: Path, home: Path) -> None:
    private, public, kid = generate(tmp_path / "k", "clinic")
    runner = CliRunner()
    bad = runner.invoke(make_cli(), ["trust", "add", str(public), "--name", "Clinic", "--pack", "Not An Id!"])
    assert bad.exit_code == 1
    assert_cli_refusal(bad.stderr, "'Not An Id!' is not a pack id")
    assert not (home / "trust.json").exists()
    added = runner.invoke(
        make_cli(), ["trust", "add", str(public), "--name", "Clinic", "--pack", "malaria", "--pack", "tb"]
    )
    assert added.exit_code == 0 and "for packs malaria, tb" in added.output
    assert f"{kid}  Clinic  (only packs malaria, tb)" in runner.invoke(make_cli(), ["trust", "list"]).output
    outside = signed_pack(tmp_path / "o.etpack", private, {CASE_NAME: GOOD_CASE, "pack.yaml": PACK_YAML})
    refused_by_cli(
        ["pack", "install", str(outside)],
        home,
        "trusted only for packs malaria, tb, not for pack 'test-pack'",
    )
    inside = signed_pack(tmp_path / "i.etpack", private, {CASE_NAME: GOOD_CASE}, pack_id="tb")
    assert runner.invoke(make_cli(), ["pack", "install", str(inside)]).exit_code == 0
    # Narrowing trust later hides what the key can no longer vouch for.
    data = json.loads((home / "trust.json").read_text())
    data["keys"][0]["packs"] = ["malaria"]
    (home / "trust.json").write_text(json.dumps(data))
    assert PackStore().cases() == []


def test_a_damaged_trust_store_is_one_line(tmp_path: Path, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "trust.json").write_text(json.dumps({"format": 1, "keys": [{"key_id": 5}], "removed": []}))
    result = CliRunner().invoke(make_cli(), ["trust", "list"])
    assert result.exit_code == 1
    assert_cli_refusal(result.stderr, "has a malformed entry")


def test_demo_pack_results_are_practice_at_the_hub(hub_db: Path) -> None:
    from edgetutor.hub.accounts import EVERYTHING
    from edgetutor.hub.dashboard import render
    from edgetutor.hub.ingest import enroll, ingest
    from edgetutor.hub.report import build_report

    from .hub_helpers import payload

    device = Device()
    with HubDB(hub_db) as db:
        body = device.enroll_body(issue_token(hub_db))
        enroll(db, **{k: body[k] for k in ("token", "device_id", "public_key", "label", "proof")})
        real = device.event(payload(trainee="Real"))
        demo_payload = payload(trainee="Practice")
        demo_payload["pack"]["id"] = "edgetutor-demo"
        reply = ingest(db, device.id, [real, device.event(demo_payload)])
        assert reply["accepted"] == 2
        assert db.rows("SELECT practice FROM events ORDER BY seq") == [{"practice": 0}, {"practice": 1}]
        trainees = [r["trainee"] for r in build_report(db, "trainee", EVERYTHING)["rows"]]
        assert trainees == ["Real"]
        page = render(db, None, EVERYTHING)
    assert 'id="practice"' in page and "Practice (demo packs)<b>1</b>" in page


# -- bounded decompression ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_1_gb_member_is_verified_in_bounded_memory(publisher: Any, tmp_path: Path, home: Path) -> None:
    pack = zero_member_pack(tmp_path / "zeros.etpack", publisher[0], 1 << 30)
    assert pack.stat().st_size < 4 * 1024 * 1024
    opened = open_pack(pack, TrustStore())
    tracemalloc.start()
    try:
        opened.read_all()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_a_member_that_inflates_past_its_declared_size_is_refused_early(
    publisher: Any, tmp_path: Path, home: Path
) -> None:
    from .hostile import Entry, raw_zip

    good = pack_with_case(tmp_path / "g.etpack", publisher[0], GOOD_CASE)
    import zipfile

    with zipfile.ZipFile(good) as zf:
        entries = [Entry(i.filename, zf.read(i)) for i in zf.infolist()]
    entries.append(Entry("extra.bin", b"\0" * (64 << 20), declared_size=10))
    bomb = tmp_path / "bomb.etpack"
    bomb.write_bytes(raw_zip(entries))
    with limits(memory_mb=256, seconds=20), pytest.raises(CasePackError) as caught:
        open_pack(bomb, TrustStore()).read_all()
    assert_one_line(str(caught.value), "refused bomb.etpack")


def test_a_demo_pack_cannot_shadow_a_real_case(
    make_pack: Callable[..., Path], tmp_path: Path, home: Path
) -> None:
    # Anyone can sign a demo pack; one that reuses a real case's id must not take its place.
    assert (
        CliRunner().invoke(make_cli(), ["pack", "install", str(make_pack(1, "zambia-pack"))]).exit_code == 0
    )
    fake = pack_with_case(tmp_path / "fake.etpack", DEMO_KEY, GOOD_CASE, pack_id="edgetutor-demo", version=50)
    assert CliRunner().invoke(make_cli(), ["pack", "install", str(fake)]).exit_code == 0
    assert PackStore().case("malaria-uncomplicated-adult").pack_id == "zambia-pack"
