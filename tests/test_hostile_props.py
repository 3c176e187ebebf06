"""Property-based hostile input: generated YAML, pack zips, scripts, bundles and API bodies.

Generators aim at the classes of attack, not only at random bytes: deep nesting, alias bombs,
tags, huge scalars, odd encodings, zip entries that lie, JSON that is deep, huge, non-finite,
repeated or of the wrong type at any level. Every example runs under a memory limit
(RLIMIT_AS) and a time limit, and must end in success or one clean refusal that changed nothing.

Example counts come from a hypothesis profile: "quick" by default (the everyday run), "ci" when
the CI environment variable is set (CI=true), or HYPOTHESIS_PROFILE to choose.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetutor.cases.lint import lint_case_text
from edgetutor.cases.loader import parse_case_text, parse_pack_meta
from edgetutor.cli import make_cli
from edgetutor.errors import CaseFormatError, CasePackError, EdgeTutorError
from edgetutor.hub import HubError
from edgetutor.hub.db import HubDB
from edgetutor.hub.ingest import import_bundle
from edgetutor.packs.install import PackStore, check_sources
from edgetutor.packs.reader import open_pack
from edgetutor.packs.signing import generate
from edgetutor.packs.trust import TrustStore
from edgetutor.sync import protocol
from edgetutor.sync.seal import sealed_key

from .conftest import ROOT, tree_state
from .hostile import (
    CASE_NAME,
    CONTROL,
    GOOD_CASE,
    PACK_YAML,
    Entry,
    LoggedHub,
    assert_cli_refusal,
    assert_one_line,
    limits,
    post,
    raw_zip,
    signed_pack,
)
from .hub_helpers import Device, issue_token

settings.register_profile(
    "quick", max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "quick")
# "deep": a long local hunt (HYPOTHESIS_PROFILE=deep), not run by CI.
settings.register_profile(
    "deep", max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
SCALE = {"quick": 1, "ci": 6, "deep": 30}.get(PROFILE, 1)


def examples(n: int) -> Callable[[Any], Any]:
    """`n` examples in the quick tier, SCALE times more in CI."""
    return settings(settings.get_profile(PROFILE), max_examples=n * SCALE)


# == YAML documents ==================================================================================
NASTY_TAGS = [
    b"!!python/object/apply:os.system",
    b"!!python/object/new:subprocess.Popen",
    b"!!python/name:os.system",
    b"!!python/module:os",
    b"!!python/tuple",
    b"!!binary",
    b"!!set",
    b"!!omap",
    b"!!pairs",
    b"!!timestamp",
    b"!!merge",
    b"!!value",
    b"!custom",
    b"!",
    b"!<tag:yaml.org,2002:python/none>",
    b"!<!local>",
    b"!e!foo",
]
PLAIN_TAGS = [b"!!str", b"!!int", b"!!float", b"!!bool", b"!!null", b"!!map", b"!!seq"]
SNIPPETS = [
    b"&a ",
    b"*a",
    b"&b [1, 2]",
    b"*b",
    b"? ",
    b"<<: *a\n",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"%TAG ! tag:evil,2000:\n",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\t",
    b"'",
    b'"',
    b"|\n",
    b">-\n",
    b"#",
    b"- ",
    b": ",
    b"\\e]0;x\\a",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\x1b[2J",
    b"\xc2\x85",
    b"\xe2\x80\xae",
    b"\xff",
    b"1" * 80,
    b".nan",
    b"9999-99-99",
]


@st.composite
def deep_yaml(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(25, 20_000))
    style = draw(st.sampled_from(["flow-seq", "flow-map", "compact", "indent", "mixed", "closed"]))
    if style == "flow-seq":
        return b"id: " + b"[" * depth
    if style == "flow-map":
        return b"id: " + b"{a: " * depth
    if style == "compact":
        return b"- " * depth + b"x\n"
    if style == "indent":
        depth = min(depth, 1000)
        return b"".join(b" " * i + b"k:\n" for i in range(depth))
    if style == "closed":
        return b"id: " + b"[" * depth + b"]" * depth + b"\n"
    return b"id: " + b"".join(
        draw(st.sampled_from([b"[", b"{a: ", b"[{b: "])) for _ in range(min(depth, 3000))
    )


@st.composite
def alias_yaml(draw: st.DrawFn) -> bytes:
    levels = draw(st.integers(2, 12))
    fan = draw(st.integers(2, 12))
    merge = draw(st.booleans())
    lines = [b"l0: &l0 {a: 1, b: [x, y]}" if merge else b"l0: &l0 [lol, lol]"]
    for i in range(1, levels):
        if merge:
            refs = b", ".join([b"*l%d" % (i - 1)] * fan)
            lines.append(b"l%d: &l%d {<<: [%s], c%d: [%s]}" % (i, i, refs, i, refs))
        else:
            lines.append(b"l%d: &l%d [%s]" % (i, i, b", ".join([b"*l%d" % (i - 1)] * fan)))
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from([b"*l0 : key", b"? *l1\n: v", b"x: &r [*r]", b"y: *nowhere"])))
    return b"\n".join(lines) + b"\n"


@st.composite
def tagged_yaml(draw: st.DrawFn) -> bytes:
    tag = draw(st.sampled_from(NASTY_TAGS + PLAIN_TAGS))
    target = draw(st.sampled_from([b"'ls'", b"x", b"[a, b]", b"{a: 1}", b"aGVsbG8=", b"2020-01-01", b"5"]))
    doc = with_field(GOOD_CASE, b"title: " + tag + b" " + target)
    if draw(st.booleans()):
        doc = b"%TAG !e! tag:evil.example,2000:\n---\n" + doc
    return doc


@st.composite
def huge_scalar_yaml(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(50, 6000))
    value = draw(
        st.sampled_from(
            [
                b"1" * n,
                b"1" * (n * 20) + b" .",
                b"9" * (n * 20) + b"e x",
                b"-" + b"9" * n,
                b"0x" + b"f" * n,
                b"0o" + b"7" * n,
                b"1_" * (n // 2),
                b"1e" + b"9" * min(n, 400),
                b"0." + b"1" * n,
                b"x" * (n * 100),
                b'"' + b"\\x41" * n + b'"',
                b"|\n" + b"  line\n" * n,
            ]
        )
    )
    key = draw(st.sampled_from([b"version", b"title", b"age_years", b"weight"]))
    return draw(
        st.sampled_from([b"%s: %s\n" % (key, value), with_field(GOOD_CASE, b"%s: %s" % (key, value))])
    )


@st.composite
def encoded_yaml(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from([GOOD_CASE, PACK_YAML, b"id: x\ntitle: caf\xc3\xa9\n"])).decode("utf-8")
    encoding = draw(
        st.sampled_from(
            ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "utf-8-sig", "utf-8"]
        )
    )
    data = base.encode(encoding, errors="replace")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(
                st.sampled_from(
                    [b"\x00", b"\x1b", b"\x7f", b"\xc2\x9b", b"\xef\xbf\xbe", b"\xed\xa0\x80", b"\r", b"\x0b"]
                )
            )
            + data[at:]
        )
    return data


@st.composite
def mutated_yaml(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from([GOOD_CASE, PACK_YAML]))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["snippet", "bytes", "delete", "truncate", "repeat"]))
        if op == "snippet":
            data = data[:at] + draw(st.sampled_from(SNIPPETS)) + data[at:]
        elif op == "bytes":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        elif op == "truncate":
            data = data[:at]
        else:
            data = data[:at] + data[at : at + 400] * draw(st.integers(2, 50)) + data[at:]
    return data


def with_field(doc: bytes, line: bytes) -> bytes:
    first, rest = doc.split(b"\n", 1)
    return first + b"\n" + line + b"\n" + rest


YAML_DOCS = st.one_of(
    deep_yaml(),
    alias_yaml(),
    tagged_yaml(),
    huge_scalar_yaml(),
    encoded_yaml(),
    mutated_yaml(),
    st.binary(max_size=3000),
    st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@examples(60)
@given(doc=YAML_DOCS)
def test_yaml_readers_load_or_refuse_in_one_line(doc: bytes) -> None:
    with limits(memory_mb=384, seconds=15):
        for read in (parse_case_text, parse_pack_meta):
            try:
                read(doc, "cases/x.yaml")
            except CaseFormatError as err:
                assert_one_line(str(err))
                assert str(err).startswith("cases/x.yaml")
        _, problems = lint_case_text(doc, "cases/x.yaml")
        for problem in problems:
            assert_one_line(str(problem))
            assert problem.file == "cases/x.yaml"


# == signed packs with hostile sources: install == verify, nothing written on refusal ===============
@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[Path, PackStore]]:
    """A publisher key trusted by a device whose packs live under tmp_path."""
    private, public, _ = generate(tmp_path / "keys", "clinic")
    trust = TrustStore(tmp_path / "trust.json")
    trust.add(public, "Test Clinic")
    yield private, PackStore(tmp_path / "packs", trust)


def verify_then_install(pack: Path, store: PackStore) -> None:
    """`pack verify` and `pack install` agree; a refusal is one line and changes nothing."""
    verified: str | None = None
    try:
        opened = open_pack(pack, store.trust)
        opened.read_all()
        check_sources(opened)
    except CasePackError as err:
        verified = str(err)
        assert_one_line(verified, f"{pack.name}")
    before = tree_state(store.root)
    try:
        store.install(pack)
    except CasePackError as err:
        assert_one_line(str(err))
        assert tree_state(store.root) == before
        # Verify refuses what install refuses, except for what only the device's history decides.
        if verified is None:
            assert any(w in str(err) for w in ("rollback", "different content", "another publisher")), err
        else:
            assert str(err) == verified
    else:
        assert verified is None, verified


@examples(25)
@given(doc=YAML_DOCS, where=st.sampled_from(["case", "pack.yaml", "both"]))
def test_signed_packs_with_hostile_sources(doc: bytes, where: str, device: tuple[Path, PackStore]) -> None:
    key, store = device
    files = {"pack.yaml": PACK_YAML, CASE_NAME: GOOD_CASE}
    if where in ("case", "both"):
        files[CASE_NAME] = doc
    if where in ("pack.yaml", "both"):
        files["pack.yaml"] = doc
    with tempfile.TemporaryDirectory() as tmp, limits(memory_mb=384, seconds=20):
        verify_then_install(signed_pack(Path(tmp) / "p.etpack", key, files), store)


# == pack zips: entries, names, sizes, compression ====================================================
NAMES = st.one_of(
    st.sampled_from(
        [
            "manifest.json",
            "manifest.sig",
            "pack.yaml",
            CASE_NAME,
            "cases/other.yaml",
            "CASES/Other.yaml",
            "../escape.yaml",
            "cases/../../escape",
            "/etc/passwd",
            "C:/windows",
            "cases\\x.yaml",
            "cases/",
            "./pack.yaml",
            "cases//x.yaml",
            "a\x1bb",
            "x" * 300,
            "ｃａｓｅｓ/x.yaml",
        ]
    ),
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
    ),
)
METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
MODES = [0o100644, 0o100755, 0o120777, 0o040755, 0o010644, 0]


@st.composite
def pack_zips(draw: st.DrawFn, key: Path) -> bytes:
    """A signed pack (or not), then zip-level lies and corruption on top."""
    files: dict[str, bytes] = {"pack.yaml": PACK_YAML, CASE_NAME: GOOD_CASE}
    for _ in range(draw(st.integers(0, 3))):
        files[draw(NAMES)] = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        files.pop(draw(st.sampled_from(sorted(files))), None)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            signed = signed_pack(Path(tmp) / "p.etpack", key, files).read_bytes()
        except (ValueError, UnicodeError):
            signed = b""  # a name the manifest cannot even carry: the zip is built below anyway
    entries: list[Entry] = []
    if signed:
        with zipfile.ZipFile(__import__("io").BytesIO(signed)) as zf:
            entries = [Entry(i.filename, zf.read(i)) for i in zf.infolist()]
    for e in entries:
        if draw(st.integers(0, 9)) == 0:
            e.method = draw(st.sampled_from(METHODS))
        if draw(st.integers(0, 9)) == 0:
            e.mode = draw(st.sampled_from(MODES))
        if draw(st.integers(0, 19)) == 0:
            e.encrypted = True
        if draw(st.integers(0, 9)) == 0:
            e.declared_size = draw(st.one_of(st.integers(0, 2**32 - 1), st.just(len(e.data) - 1)))
    for _ in range(draw(st.integers(0, 3))):
        entries.insert(
            draw(st.integers(0, len(entries))),
            Entry(
                draw(NAMES),
                draw(st.one_of(st.binary(max_size=300), st.just(b"\0" * (1 << 20)))),
                draw(st.sampled_from(METHODS)),
                draw(st.sampled_from(MODES)),
            ),
        )
    try:
        data = raw_zip(entries)
    except (ValueError, UnicodeError, OSError):
        data = signed
    if draw(st.integers(0, 4)) == 0 and data:
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


def test_pack_zips_verify_and_install_or_refuse_cleanly(device: tuple[Path, PackStore]) -> None:
    key, store = device

    @examples(40)
    @given(data=pack_zips(key))
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pack = Path(tmp) / "p.etpack"
            pack.write_bytes(data)
            with limits(memory_mb=384, seconds=20):
                verify_then_install(pack, store)

    check()


# == scripts: any bytes ================================================================================
SCRIPT_LINES = st.one_of(
    st.sampled_from(
        [
            "how long have you had the fever?",
            "examine vitals",
            "order malaria rdt",
            "note \x1b]0;owned\x07",
            "diagnose \x1b[31mmalaria\x1b[0m",
            "plan \u009b2J \u202eevil",
            "end",
            "# comment",
            "",
            "x" * 1999,
        ]
    ),
    st.text(max_size=120),
)


@st.composite
def scripts(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["lines", "bytes", "encoded", "long"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    text = "\n".join(draw(st.lists(SCRIPT_LINES, max_size=12)))
    if kind == "long":
        text += "\n" + "y" * draw(st.integers(1990, 9000))
    if kind == "encoded":
        return text.encode(draw(st.sampled_from(["utf-16", "utf-8-sig", "latin-1"])), errors="replace")
    return text.encode("utf-8", "surrogatepass")


def attempts(home: Path) -> int:
    db = home / "edgetutor.db"
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
    finally:
        conn.close()


def test_run_any_script_plays_or_refuses_and_never_echoes_escapes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgetutor.service.session as session

    # Lexical retrieval only: embedding every fact on each run would cost seconds per example,
    # and what is tested here is the script's path, not retrieval.
    monkeypatch.setattr(session, "load_encoder", lambda: None)
    installed = CliRunner().invoke(
        make_cli(), ["pack", "install", str(ROOT / "casepacks" / "edgetutor-demo.etpack")]
    )
    assert installed.exit_code == 0, installed.output
    path = tmp_path / "script.txt"

    @examples(12)
    @given(script=scripts(), as_json=st.booleans())
    def check(script: bytes, as_json: bool) -> None:
        path.write_bytes(script)
        before = attempts(home)
        args = ["run", "malaria-uncomplicated-adult", "--no-model", "--script", str(path)]
        with limits(memory_mb=512, seconds=60):
            result = CliRunner().invoke(make_cli(), args + (["--json"] if as_json else []))
        assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
        assert not CONTROL.search(result.stdout.replace("\n", "")), repr(result.stdout[:500])
        if result.exit_code == 1:
            assert_cli_refusal(result.stderr, "script.txt")
            assert attempts(home) == before
        elif as_json:
            json.loads(result.stdout)

    check()


# == JSON: bundles and API bodies =======================================================================
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
RAW_JSON = st.one_of(
    st.integers(20, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(20, 200_000).map(lambda n: b'{"a":' * n + b"0" + b"}" * n),
    st.integers(20, 5000).map(lambda n: b'{"device_id": "x", "events": [' + b"7" * n + b"]}"),
    st.sampled_from(
        [
            b"NaN",
            b"[Infinity]",
            b'{"events": [-Infinity]}',
            b"[1e400]",
            b'{"a": 1, "a": 2}',
            b'{"device_id": "x", "device_id": "y", "events": []}',
            b"\xef\xbb\xbf{}",
            '{"device_id": "x"}'.encode("utf-16"),
            b'{"device_id": "\\ud800", "events": []}',
            b'{"device_id": "caf\xe9"}',
            b"",
            b"\x00",
            b"[" * 10 + b"1",
        ]
    ),
    st.binary(max_size=200),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node[path[0]] = replace(node[path[0]], path[1:], value)
    return node


def reseal(device: Device, event: Any) -> Any:
    """Recompute an altered event's hash and signature, so checks past the signature are reached."""
    if isinstance(event, dict):
        try:
            event["hash"] = protocol.event_hash(event)
            event["sig"] = protocol._b64(device.key.sign(protocol.EVENT_DOMAIN + event["hash"].encode()))
        except (TypeError, ValueError, AttributeError):
            pass
    return event


@st.composite
def wrong_typed(draw: st.DrawFn, base: Any, device: Device, resign: Callable[[Any], Any]) -> bytes:
    """`base` with one node (at any level) replaced by any JSON value, optionally re-signed."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(paths(doc))))
        doc = replace(doc, where, draw(ANY_JSON))
        if draw(st.booleans()) and isinstance(doc, dict) and isinstance(doc.get("events"), list):
            doc["events"] = [reseal(device, e) for e in doc["events"]]
    if draw(st.booleans()):
        doc = resign(doc)
    try:
        return json.dumps(doc).encode()
    except (TypeError, ValueError):
        return b"{}"


def resign_bundle(device: Device) -> Callable[[Any], Any]:
    def sign(doc: Any) -> Any:
        if not isinstance(doc, dict):
            return doc
        try:
            return protocol.seal_bundle(device.key, doc)
        except (TypeError, ValueError):
            return doc

    return sign


def hub_rows(db: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 - fixed names
            for t in ("devices", "events", "tokens")
        }
    finally:
        conn.close()


def assert_chains_verify(db: Path) -> None:
    """No wrong acceptance: every stored event verifies with its device's key and chains."""
    conn = sqlite3.connect(db)
    try:
        keys = dict(conn.execute("SELECT id, public_key FROM devices"))
        rows = conn.execute("SELECT device_id, seq, prev, hash, body FROM events ORDER BY device_id, seq")
        last: dict[str, tuple[int, str]] = {}
        for device_id, seq, prev, digest, body in rows:
            event = json.loads(body)
            key = load_public_key_text(keys[device_id])
            assert protocol.check_event(event, key) is None
            expected_seq, expected_prev = last.get(device_id, (0, protocol.GENESIS))
            assert (seq, prev) == (expected_seq + 1, expected_prev), (seq, prev)
            last[device_id] = (seq, digest)
    finally:
        conn.close()


def load_public_key_text(pem: str) -> Any:
    from edgetutor.packs.signing import parse_public_key

    return parse_public_key(pem, "device key")


def test_bundles_import_or_refuse_cleanly(tmp_path: Path) -> None:
    device = Device()
    db_path = tmp_path / "hub.db"
    HubDB(db_path).close()
    base = device.bundle(device.events(3), token=issue_token(db_path))
    bodies = st.one_of(
        RAW_JSON,
        ANY_JSON.map(lambda v: json.dumps(v).encode()),
        wrong_typed(base, device, resign_bundle(device)),
    )

    @examples(30)
    @given(body=bodies)
    def check(body: bytes) -> None:
        path = tmp_path / "b.etres"
        path.write_bytes(body)
        before = hub_rows(db_path)
        with limits(memory_mb=384, seconds=20), HubDB(db_path) as db:
            try:
                result = import_bundle(db, path)
            except HubError as err:
                assert_one_line(str(err))
                assert hub_rows(db_path) == before
            else:
                assert isinstance(result.reply, dict)
        assert_chains_verify(db_path)

    check()


@pytest.fixture(scope="module")
def api_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoggedHub, Device]]:
    # Rate limits high enough that a fast run of hostile bodies reaches the parser, not a 429.
    limits = ("--per-device", "100000/s:100000", "--per-address", "100000/s:100000")
    hub = LoggedHub(tmp_path_factory.mktemp("hub") / "hub.db", memory_mb=2048, args=limits)
    device = Device()
    status, _ = post(hub.url, "/api/v1/enroll", json.dumps(device.enroll_body(issue_token(hub.db))).encode())
    assert status == 200
    try:
        yield hub, device
    finally:
        hub.stop()


def test_api_bodies_get_an_answer_never_a_500(api_hub: tuple[LoggedHub, Device]) -> None:
    hub, device = api_hub
    batch = {"device_id": device.id, "events": device.events(2)}
    enroll = Device().enroll_body(issue_token(hub.db))
    bodies = st.one_of(
        RAW_JSON,
        ANY_JSON.map(lambda v: json.dumps(v).encode()),
        wrong_typed(batch, device, lambda d: d),
        wrong_typed(enroll, device, lambda d: d),
    )

    @examples(40)
    @given(
        body=bodies,
        path=st.sampled_from(["/api/v1/events", "/api/v1/enroll"]),
        idem=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
    )
    def check(body: bytes, path: str, idem: str | None) -> None:
        headers = {"Idempotency-Key": idem} if idem else None
        status, reply = post(hub.url, path, body, headers)
        assert status in (200, 400, 401, 403, 413, 422), (status, reply)
        assert isinstance(reply, dict), reply
        if status != 200:
            assert_one_line(reply["error"])

    check()
    text = hub.text()
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]
    for line in text.splitlines():
        assert_one_line(line)
    assert hub.alive()
    assert_chains_verify(hub.db)


# == a hostile hub, seen from a device ===================================================================
class FakeHub:
    """An HTTP server answering each API path with whatever the test sets (a hostile hub)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.replies: dict[str, tuple[int, bytes]] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                route = next((r for r in outer.replies if self.path.startswith(r)), None)
                status, body = outer.replies.get(route, (404, b'{"error": "no"}')) if route else (404, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer  # noqa: N815 - the names http.server calls

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


REPLIES = st.one_of(
    RAW_JSON.filter(lambda b: len(b) < 300_000),
    ANY_JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "acked_seq": st.one_of(st.integers(-5, 5), JSON_SCALARS),
            "head": st.one_of(st.none(), st.text(max_size=70), ANY_JSON),
            "rejected": st.one_of(st.none(), st.lists(ANY_JSON, max_size=3)),
            "revoked": st.one_of(st.none(), st.booleans(), ANY_JSON),
            "device_id": st.one_of(st.text(max_size=20), ANY_JSON),
            "site": ANY_JSON,
            "packs": st.one_of(
                ANY_JSON,
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "pack_id": st.sampled_from(
                                ["../../escape", "a/b", "x" * 300, "\x1b]0;x\x07", "ok"]
                            ),
                            "version": st.one_of(st.integers(-3, 10**40), JSON_SCALARS),
                            "url": st.sampled_from(
                                [
                                    "file:///etc/passwd",
                                    "http://[::1",
                                    "//elsewhere.example/x",
                                    "/api/v1/dl",
                                    "ftp://x/y",
                                ]
                            ),
                            "size": st.one_of(st.integers(-5, 10**12), JSON_SCALARS),
                        }
                    ),
                    max_size=3,
                ),
            ),
        }
    ).map(lambda d: json.dumps(d).encode()),
)


STAGES = ("/api/v1/enroll", "/api/v1/devices/", "/api/v1/events", "/api/v1/packs", "/api/v1/dl")


def test_sync_against_a_hostile_hub_fails_in_one_line_and_loses_nothing(
    home: Path, tmp_path: Path, publisher: Any
) -> None:
    """The hub answers correctly up to one stage of a sync, then anything at all; past the
    results (packs listed or downloaded), sync must succeed with every result sent."""
    from edgetutor.service import open_store
    from edgetutor.sync import client

    from .sync_helpers import finish

    hub = FakeHub()
    try:
        with open_store() as store:
            finish(store)
            finish(store, trainee="Kofi")
            events = store.events()
            device_id = sealed_key(store).device_id
            honest = {
                "/api/v1/enroll": json.dumps(
                    {"device_id": device_id, "site": "S", "acked_seq": 0, "head": protocol.GENESIS}
                ),
                "/api/v1/devices/": json.dumps({"acked_seq": 0, "head": protocol.GENESIS, "revoked": False}),
                "/api/v1/events": json.dumps(
                    {"acked_seq": 2, "head": events[-1]["hash"], "accepted": 2, "replayed": 0, "rejected": []}
                ),
                "/api/v1/packs": json.dumps(
                    {"packs": [{"pack_id": "test-pack", "version": 1, "url": "/api/v1/dl"}]}
                ),
            }

            @st.composite
            def hub_replies(draw: st.DrawFn) -> tuple[int, dict[str, tuple[int, bytes]]]:
                stage = draw(st.integers(0, len(STAGES) - 1))
                replies = {path: (200, honest[path].encode()) for path in STAGES[:stage]}
                if STAGES[stage] == "/api/v1/dl" and draw(st.booleans()):
                    # A correctly signed pack, by a trusted key, with a hostile case or pack.yaml.
                    files = {"pack.yaml": PACK_YAML, CASE_NAME: GOOD_CASE}
                    files[draw(st.sampled_from(["pack.yaml", CASE_NAME]))] = draw(YAML_DOCS)
                    with tempfile.TemporaryDirectory() as tmp:
                        body = signed_pack(Path(tmp) / "p.etpack", publisher[0], files).read_bytes()
                    replies[STAGES[stage]] = (200, body)
                else:
                    replies[STAGES[stage]] = (
                        draw(st.sampled_from([200, 200, 200, 400, 401, 500])),
                        draw(REPLIES),
                    )
                for path in STAGES[stage + 1 :]:
                    replies[path] = (draw(st.sampled_from([200, 200, 400, 500])), draw(REPLIES))
                return stage, replies

            @examples(25)
            @given(drawn=hub_replies())
            def check(drawn: tuple[int, dict[str, tuple[int, bytes]]]) -> None:
                stage, hub.replies = drawn
                store.update_sync_state(enrolled=0)
                store.set_acked(0)
                if PackStore().get("test-pack"):  # so the pack is downloaded and read again
                    PackStore().remove("test-pack")
                with limits(memory_mb=384, seconds=30):
                    try:
                        report = client.sync(store, hub.url, "token", tries=1, base_delay=0, timeout=5)
                    except EdgeTutorError as err:
                        assert_one_line(str(err))
                        # Only a hub that misbehaves before the packs can fail a sync.
                        assert stage < STAGES.index("/api/v1/packs"), err
                    else:
                        for line in report.pack_errors + report.packs:
                            assert "Traceback" not in line
                    if stage >= STAGES.index("/api/v1/packs"):
                        assert store.pending_count() == 0 and store.sync_state().last_sync is not None
                assert store.events() == events  # nothing lost, nothing rewritten
                assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "keys"]  # nothing outside

            check()
    finally:
        hub.close()


@given(
    fields=st.dictionaries(st.sampled_from(protocol.EVENT_FIELDS), ANY_JSON),
    payload=ANY_JSON,
)
def test_event_forms_are_the_canonical_bytes_of_any_event(fields: dict[str, Any], payload: Any) -> None:
    """The hub hashes and stores `event_forms()`: byte for byte what `canonical()` gives, for
    any content a device may send in any field (text with escapes, floats, nesting, true for 1)."""
    event = Device().event()
    event.update(fields, payload=fields.get("payload", payload))
    body = {k: v for k, v in event.items() if k not in ("hash", "sig")}
    try:
        expected = (protocol.canonical(body), protocol.canonical(event))
    except (TypeError, ValueError):
        with pytest.raises((TypeError, ValueError)):
            protocol.event_forms(event)
        return
    assert protocol.event_forms(event) == expected


def _rendered(value: Any, separators: tuple[str, str], repeat: str | None) -> bytes:
    """`value` as JSON text with the given separators; with `repeat`, each object gains that key
    twice (the text a strict reader must refuse)."""
    text = json.dumps(value, separators=separators, ensure_ascii=False)
    if repeat is not None and text.startswith("{") and text != "{}":
        key = json.dumps(repeat, ensure_ascii=False)
        text = (
            "{"
            + key
            + separators[1]
            + "1"
            + separators[0]
            + key
            + separators[1]
            + "2"
            + separators[0]
            + text[1:]
        )
    return text.encode("utf-8", "surrogatepass")


@given(
    body=st.one_of(
        RAW_JSON.filter(lambda b: len(b) < 300_000),
        st.builds(
            _rendered,
            ANY_JSON,
            st.sampled_from([(",", ":"), (", ", ": "), (",", " : "), (",\n", ":\t"), (",", "\r\n:")]),
            st.none() | st.text(max_size=6),
        ),
    )
)
def test_the_hub_reads_json_as_its_strict_parser_does(body: bytes) -> None:
    """parse_json's fast reader (orjson) gives exactly the strict parser's result: the same data,
    with the same types (an integer beyond 64 bits stays an integer), or the same refusal."""
    from edgetutor.hub.ingest import _parse_strict, parse_json

    def read(parse: Callable[[bytes, str], Any]) -> tuple[str, Any]:
        try:
            return "ok", parse(body, "body")
        except HubError as err:
            return "refused", str(err)

    fast, strict = read(parse_json), read(_parse_strict)
    assert fast == strict
    if fast[0] == "ok":
        assert json.dumps(fast[1], sort_keys=True) == json.dumps(strict[1], sort_keys=True)  # types too


@pytest.mark.parametrize(
    ("raw", "refusal"),
    [
        (b'{"a": 1, "b": {"c": 2, "c": 3}}', "the key 'c' appears twice"),
        (b'{"a" : 1, "a" : 2}', "the key 'a' appears twice"),  # spaced keys: not counted, re-read
        (b'{"a":"\\":","a":2}', "the key 'a' appears twice"),  # a key's end inside a string
        (b'{"a":' * 33 + b"1" + b"}" * 33, "nested too deeply"),
        (b'{"n": 1' + b"0" * 31 + b"}", "a number of 32 digits"),
    ],
)
def test_json_the_fast_reader_would_take_is_refused(raw: bytes, refusal: str) -> None:
    from edgetutor.hub.ingest import parse_json

    with pytest.raises(HubError, match=refusal):
        parse_json(raw, "body")


def test_json_numbers_keep_their_type_and_value() -> None:
    from edgetutor.hub.ingest import parse_json

    for raw, value in [
        (b'{"n": 123456789012345678901234567890}', 123456789012345678901234567890),  # orjson: a float
        (b'{"n": -9223372036854775809}', -9223372036854775809),
        (b'{"n": 18446744073709551615}', 18446744073709551615),
        (b'{"n": 1e19}', 1e19),
        (b'{"n": 0.1}', 0.1),
        (b'{"n": "x\\":y"}', 'x":y'),
    ]:
        got = parse_json(raw, "body")["n"]
        assert (got, type(got)) == (value, type(value)), raw


def test_event_forms_take_the_fast_path_only_where_it_is_exact() -> None:
    """A device's ordinary event is serialized by orjson; a float orjson writes otherwise (1e-05),
    an integer beyond 64 bits, a tuple or NaN goes to the standard encoder, and the bytes are
    canonical() either way."""
    event = Device().event()
    body = {k: v for k, v in event.items() if k not in ("hash", "sig")}
    assert protocol._orjson_forms(event) == (protocol.canonical(body), protocol.canonical(event))
    assert protocol._orjson_forms(collections.OrderedDict(event)) is None  # its values go unchecked
    for odd in (1e-05, 2.5e-7, 2**70, (1, 2), float("nan")):
        changed = {**event, "payload": {**event["payload"], "odd": odd}}
        assert protocol._orjson_forms(changed) is None, odd
        if odd == odd:  # NaN: canonical() refuses it, and so does event_forms (tested above)
            body = {k: v for k, v in changed.items() if k not in ("hash", "sig")}
            assert protocol.event_forms(changed) == (protocol.canonical(body), protocol.canonical(changed))
