"""Signed packs: every refusal (message + nothing changed on disk), install, rollback, atomicity."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetutor.cli import make_cli
from edgetutor.errors import CasePackError, KeyFileError, SignatureError
from edgetutor.packs import install as install_mod
from edgetutor.packs.install import PackStore
from edgetutor.packs.reader import open_pack
from edgetutor.packs.signing import generate
from edgetutor.packs.trust import TrustStore

from .conftest import tree_state

Member = tuple[str, bytes, int]  # name, data, unix mode


def members(pack: Path) -> list[Member]:
    with zipfile.ZipFile(pack) as zf:
        return [(i.filename, zf.read(i), i.external_attr >> 16) for i in zf.infolist()]


def rezip(pack: Path, dest: Path, transform: Callable[[list[Member]], list[Member]]) -> Path:
    """Rewrite a pack's members (keeping the signed manifest as it is unless transform changes it)."""
    items = transform(members(pack))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate names some tests need
        with zipfile.ZipFile(dest, "w") as zf:
            for name, data, mode in items:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (mode or 0o100644) << 16
                zf.writestr(info, data)
    return dest


def refuse(cli_args: list[str], home: Path, expected: str) -> str:
    """Run an install through the CLI; check the one-line error and that nothing changed."""
    before = tree_state(home)
    result = CliRunner().invoke(make_cli(), cli_args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0], lines[0]
    assert tree_state(home) == before
    return lines[0]


def install(path: Path) -> str:
    result = CliRunner().invoke(make_cli(), ["pack", "install", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


CASE = "cases/malaria-uncomplicated-adult.yaml"


# -- keys and trust --------------------------------------------------------------------------
def test_keys_generate_private_key_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    result = CliRunner().invoke(make_cli(), ["keys", "generate", "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    private = tmp_path / "k" / "publisher.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "k" / "publisher.pub").read_bytes()
    before = private.read_bytes()
    again = CliRunner().invoke(make_cli(), ["keys", "generate", "--out", str(tmp_path / "k")])
    assert again.exit_code == 1 and "refusing to overwrite" in again.stderr
    assert private.read_bytes() == before


def test_trust_add_list_remove(tmp_path: Path, home: Path) -> None:
    _, public, kid = generate(tmp_path / "k", "clinic")
    runner = CliRunner()
    out = runner.invoke(make_cli(), ["trust", "list"]).output
    assert "DEMO publisher" in out and kid not in out
    assert runner.invoke(make_cli(), ["trust", "add", str(public), "--name", "Kisumu Clinic"]).exit_code == 0
    assert f"{kid}  Kisumu Clinic" in runner.invoke(make_cli(), ["trust", "list"]).output
    dup = runner.invoke(make_cli(), ["trust", "add", str(public), "--name", "Other"])
    assert dup.exit_code == 1 and "already trusted" in dup.stderr
    assert runner.invoke(make_cli(), ["trust", "remove", "Kisumu Clinic"]).exit_code == 0
    assert kid not in runner.invoke(make_cli(), ["trust", "list"]).output
    missing = runner.invoke(make_cli(), ["trust", "remove", "nobody"])
    assert missing.exit_code == 1 and "no trusted key" in missing.stderr


def test_trust_add_rejects_a_non_key_file(tmp_path: Path, home: Path) -> None:
    bogus = tmp_path / "bogus.pub"
    bogus.write_text("hello")
    refuse(["trust", "add", str(bogus), "--name", "X"], home, "is not a PEM public key")


def test_removing_the_demo_key_is_remembered(home: Path) -> None:
    store = TrustStore()
    demo = next(k for k in store.keys() if k.demo)
    store.remove(demo.key_id)
    assert all(not k.demo for k in TrustStore().keys())


# -- verify and install: the happy path -------------------------------------------------------
def test_build_verify_install_list_remove(make_pack: Callable[..., Path], home: Path) -> None:
    pack = make_pack()
    runner = CliRunner()
    verified = runner.invoke(make_cli(), ["pack", "verify", str(pack)])
    assert verified.exit_code == 0 and "OK" in verified.output and "Test Clinic" in verified.output
    assert "Installed: test-pack v1, 1 case(s), from Test Clinic" in install(pack)
    assert "Already installed" in install(pack)
    assert "malaria-uncomplicated-adult" in runner.invoke(make_cli(), ["cases"]).output
    assert "test-pack v1" in runner.invoke(make_cli(), ["pack", "list"]).output
    assert runner.invoke(make_cli(), ["pack", "remove", "test-pack"]).exit_code == 0
    assert "No cases installed" in runner.invoke(make_cli(), ["cases"]).output
    assert not (home / "packs" / "test-pack").exists()


def test_upgrade_replaces_the_old_version(make_pack: Callable[..., Path], home: Path) -> None:
    install(make_pack(1))
    assert "Upgraded: test-pack v2" in install(make_pack(2))
    (installed,) = PackStore().installed()
    assert installed.version == 2
    assert [p.name for p in (home / "packs" / "test-pack").iterdir()] == [installed.dir.name]


def test_install_a_folder_reports_each_pack(make_pack: Callable[..., Path], tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    (usb / "packs").mkdir(parents=True)
    good_a = make_pack(1, "pack-a")
    good_b = make_pack(1, "pack-b")
    os.replace(good_a, usb / "pack-a.etpack")
    os.replace(good_b, usb / "packs" / "pack-b.etpack")
    rezip(
        usb / "pack-a.etpack",
        usb / "packs" / "tampered.etpack",
        lambda ms: [
            (n, d.replace(b"Joseph Banda", b"Joseph Bando") if n == CASE else d, m) for n, d, m in ms
        ],
    )
    result = CliRunner().invoke(make_cli(), ["pack", "install", str(usb)])
    assert result.exit_code == 1
    assert "Installed: pack-a v1" in result.output and "Installed: pack-b v1" in result.output
    assert "refused tampered.etpack" in result.stderr
    assert {p.pack_id for p in PackStore().installed()} == {"pack-a", "pack-b"}


def test_empty_folder_is_an_error(tmp_path: Path, home: Path) -> None:
    (tmp_path / "empty").mkdir()
    refuse(["pack", "install", str(tmp_path / "empty")], home, "no .etpack files found")


# -- refusals: signature and publisher --------------------------------------------------------
def test_unknown_publisher_key(tmp_path: Path, home: Path) -> None:
    from edgetutor.packs.build import build_pack

    from .conftest import write_source

    private, _, kid = generate(tmp_path / "stranger", "stranger")
    pack = tmp_path / "stranger.etpack"
    build_pack(write_source(tmp_path / "s"), private, pack)
    refuse(["pack", "install", str(pack)], home, f"publisher key {kid} is not trusted")
    refuse(["pack", "verify", str(pack)], home, "is not trusted")


def test_removed_publisher_key(make_pack: Callable[..., Path], home: Path) -> None:
    pack = make_pack()
    TrustStore().remove("Test Clinic")
    refuse(["pack", "install", str(pack)], home, "is not trusted on this device")


def test_bad_signature(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    def bump_version(ms: list[Member]) -> list[Member]:
        return [
            (n, d.replace(b'"version": 1', b'"version": 9') if n == "manifest.json" else d, m)
            for n, d, m in ms
        ]

    pack = rezip(make_pack(), tmp_path / "forged.etpack", bump_version)
    refuse(["pack", "install", str(pack)], home, "bad signature")


def test_garbage_signature(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(
        make_pack(),
        tmp_path / "g.etpack",
        lambda ms: [(n, b"!!not base64!!" if n == "manifest.sig" else d, m) for n, d, m in ms],
    )
    refuse(["pack", "install", str(pack)], home, "manifest.sig is not a base64 signature")


def test_missing_signature(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(make_pack(), tmp_path / "u.etpack", lambda ms: [x for x in ms if x[0] != "manifest.sig"])
    refuse(["pack", "install", str(pack)], home, "no manifest.sig")


def test_same_pack_id_from_another_trusted_publisher(
    make_pack: Callable[..., Path], tmp_path: Path, home: Path
) -> None:
    from edgetutor.packs.build import build_pack

    from .conftest import write_source

    install(make_pack(1))
    private, public, _ = generate(tmp_path / "other", "other")
    TrustStore().add(public, "Other Clinic")
    hijack = tmp_path / "hijack.etpack"
    build_pack(write_source(tmp_path / "h", version=5), private, hijack)
    refuse(["pack", "install", str(hijack)], home, "installed from another publisher key")


# -- refusals: content and structure ----------------------------------------------------------
def test_changed_file(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(
        make_pack(),
        tmp_path / "t.etpack",
        lambda ms: [(n, d.replace(b"artemether", b"chloroquin") if n == CASE else d, m) for n, d, m in ms],
    )
    refuse(["pack", "install", str(pack)], home, f"file {CASE} was changed")


def test_changed_file_size(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(
        make_pack(),
        tmp_path / "t.etpack",
        lambda ms: [(n, d + b"\n# appended\n" if n == CASE else d, m) for n, d, m in ms],
    )
    refuse(["pack", "install", str(pack)], home, "the manifest says")


def test_added_file(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(make_pack(), tmp_path / "t.etpack", lambda ms: [*ms, ("cases/extra.yaml", b"x: 1\n", 0)])
    refuse(["pack", "install", str(pack)], home, "'cases/extra.yaml' is not in the signed manifest")


def test_missing_file(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(make_pack(), tmp_path / "t.etpack", lambda ms: [x for x in ms if x[0] != CASE])
    refuse(["pack", "install", str(pack)], home, "listed in the manifest is missing")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/evil.yaml", "absolute path"),
        ("../evil.yaml", "'..'"),
        ("cases/../../evil.yaml", "'..'"),
        ("C:/evil.yaml", "absolute path"),
        ("cases\\evil.yaml", "backslash"),
    ],
)
def test_unsafe_paths(
    make_pack: Callable[..., Path], tmp_path: Path, home: Path, name: str, reason: str
) -> None:
    pack = rezip(make_pack(), tmp_path / "t.etpack", lambda ms: [*ms, (name, b"x", 0)])
    refuse(["pack", "install", str(pack)], home, reason)
    assert not (tmp_path / "evil.yaml").exists()


def test_symlink_entry(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(
        make_pack(),
        tmp_path / "t.etpack",
        lambda ms: [(n, b"/etc/passwd" if n == CASE else d, 0o120777 if n == CASE else m) for n, d, m in ms],
    )
    refuse(["pack", "install", str(pack)], home, "is a symbolic link")


def test_duplicate_entry(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(make_pack(), tmp_path / "t.etpack", lambda ms: [*ms, next(x for x in ms if x[0] == CASE)])
    refuse(["pack", "install", str(pack)], home, "duplicate entry")


def test_case_colliding_entries(make_pack: Callable[..., Path], tmp_path: Path, home: Path) -> None:
    pack = rezip(make_pack(), tmp_path / "t.etpack", lambda ms: [*ms, ("Pack.yaml", b"x", 0)])
    refuse(["pack", "install", str(pack)], home, "differ only in case")


def test_not_a_zip(tmp_path: Path, home: Path) -> None:
    bogus = tmp_path / "bogus.etpack"
    bogus.write_bytes(b"this is not a zip file" * 10)
    refuse(["pack", "install", str(bogus)], home, "not a valid pack (zip) file")


def test_zip_bomb_member_inflating_past_declared_size(
    make_pack: Callable[..., Path], tmp_path: Path, home: Path
) -> None:
    """A member whose zip headers (and the signed manifest) say 10 bytes but that inflates to 50 MB."""
    from edgetutor.packs.build import build_pack

    from .conftest import write_source

    src = write_source(tmp_path / "bomb-src")
    (src / "bomb.txt").write_bytes(b"0123456789")
    built = tmp_path / "built.etpack"
    priv = tmp_path / "keys" / "clinic.key"
    build_pack(src, priv, built)
    # Swap bomb.txt's compressed data for 50 MB of zeros, keep its declared sizes at 10 bytes.
    bomb = tmp_path / "bomb.etpack"
    with zipfile.ZipFile(built) as zf, zipfile.ZipFile(bomb, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            new.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(new, b"\0" * 50_000_000 if info.filename == "bomb.txt" else data)
    raw = bytearray(bomb.read_bytes())
    name = b"bomb.txt"
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = 0
        while (pos := raw.find(sig, pos)) != -1:
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if raw[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", raw, pos + size_at, 10)
            pos += 4
    bomb.write_bytes(bytes(raw))
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo("bomb.txt").file_size == 10
    refuse(["pack", "install", str(bomb)], home, "inflates past its declared size of 10 bytes")


def test_malformed_case_in_a_signed_pack(publisher: tuple[Path, Path], tmp_path: Path, home: Path) -> None:
    """A case that lints clean at build time can still be bad if the publisher's tool is old or
    broken: the device parses every case before installing."""
    import edgetutor.packs.build as build

    from .conftest import write_source

    src = write_source(tmp_path / "bad-src")
    text = (src / CASE).read_text().replace("age_years: 32", "age_years: thirty-two")
    (src / CASE).write_text(text)
    pack = tmp_path / "bad.etpack"
    original = build.lint_source
    build.lint_source = lambda s: ([], [])  # type: ignore[assignment]
    try:
        build.build_pack(src, publisher[0], pack)
    finally:
        build.lint_source = original
    line = refuse(["pack", "install", str(pack)], home, "malformed case")
    assert "malaria-uncomplicated-adult.yaml:" in line and "patient.age_years" in line


# -- refusals: versions -----------------------------------------------------------------------
def test_rollback_refused(make_pack: Callable[..., Path], home: Path) -> None:
    old = make_pack(1)
    install(make_pack(2))
    refuse(["pack", "install", str(old)], home, "version 1 of test-pack is older than version 2 installed")


def test_rollback_refused_even_after_remove(make_pack: Callable[..., Path], home: Path) -> None:
    old = make_pack(1)
    install(make_pack(2))
    PackStore().remove("test-pack")
    refuse(["pack", "install", str(old)], home, "older than version 2 accepted before")


def test_same_version_different_content(make_pack: Callable[..., Path], home: Path) -> None:
    install(make_pack(1))
    refuse(["pack", "install", str(make_pack(1, note="changed"))], home, "has different content")


def test_rebuilt_same_content_is_unchanged(make_pack: Callable[..., Path], home: Path) -> None:
    first = make_pack(1)
    install(first)
    later = make_pack(1, created=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    assert "Already installed" in install(later)


# -- disk space and atomicity -----------------------------------------------------------------
def test_pack_larger_than_free_disk(
    make_pack: Callable[..., Path], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(make_pack(1))
    monkeypatch.setattr(install_mod, "_free_bytes", lambda path: 1_000_000)
    refuse(["pack", "install", str(make_pack(2))], home, "not enough disk space")


def _assert_v1_intact(home: Path) -> None:
    (installed,) = PackStore().installed()
    assert installed.version == 1
    (case,) = PackStore().cases()
    from edgetutor.cases import load_case

    assert load_case(case.file).id == "malaria-uncomplicated-adult"
    assert not list((home / "packs").glob(".staging-*"))


def test_disk_full_mid_install_keeps_previous_version(
    make_pack: Callable[..., Path], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(make_pack(1))
    v2 = make_pack(2)
    before = tree_state(home)
    calls = {"n": 0}
    real = install_mod._write_chunk

    def full_disk(out, chunk):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(out, chunk)

    monkeypatch.setattr(install_mod, "_write_chunk", full_disk)
    result = CliRunner().invoke(make_cli(), ["pack", "install", str(v2)])
    assert result.exit_code == 1 and "the disk filled up during install" in result.stderr
    assert calls["n"] == 2
    assert tree_state(home) == before
    _assert_v1_intact(home)


def test_crash_mid_install_keeps_previous_version_and_is_cleaned_up(
    make_pack: Callable[..., Path], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the new files are in place but before the registry switch."""
    install(make_pack(1))
    v2 = make_pack(2)

    def crash(data):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(PackStore, "_write_registry", lambda self, data: crash(data))
        PackStore().install(v2)
    _assert_v1_intact(home)
    # An orphan from a process killed harder than that (no cleanup ran) is removed by the next install.
    (home / "packs" / ".staging-dead").mkdir()
    (home / "packs" / "test-pack" / "2-orphan").mkdir()
    assert "Upgraded: test-pack v2" in install(v2)
    assert sorted(p.name for p in (home / "packs").iterdir()) == [".lock", "registry.json", "test-pack"]
    assert len(list((home / "packs" / "test-pack").iterdir())) == 1


# -- expiry and the clock ---------------------------------------------------------------------
def test_expired_pack_installs_with_a_warning(make_pack: Callable[..., Path]) -> None:
    pack = make_pack(1, extra="expires: 2020-01-01\n")
    result = CliRunner().invoke(make_cli(), ["pack", "install", str(pack)])
    assert result.exit_code == 0
    assert "WARNING: pack test-pack v1 expired on 2020-01-01" in result.stderr
    assert "EXPIRED" in CliRunner().invoke(make_cli(), ["pack", "verify", str(pack)]).output


def test_newest_created_is_remembered_as_a_clock_floor(make_pack: Callable[..., Path], home: Path) -> None:
    """A device whose clock was reset still knows time has passed the newest pack it accepted."""
    install(make_pack(1, pack_id="from-future", created=dt.datetime(2031, 6, 1, tzinfo=dt.UTC)))
    registry = json.loads((home / "packs" / "registry.json").read_text())
    assert registry["newest_created"].startswith("2031-06-01")
    # Valid by the wall clock (2030), expired by what the device has seen (2031).
    pack = make_pack(1, extra="expires: 2030-12-31\n")
    result = CliRunner().invoke(make_cli(), ["pack", "install", str(pack)])
    assert result.exit_code == 0 and "expired on 2030-12-31" in result.stderr


def test_open_pack_raises_typed_errors(make_pack: Callable[..., Path], tmp_path: Path) -> None:
    pack = make_pack()
    TrustStore().remove("Test Clinic")
    with pytest.raises(SignatureError):
        open_pack(pack, TrustStore())
    with pytest.raises(CasePackError):
        open_pack(tmp_path / "absent.etpack", TrustStore())


def test_build_refuses_missing_key(tmp_path: Path) -> None:
    from edgetutor.packs.build import build_pack

    from .conftest import write_source

    with pytest.raises(KeyFileError, match="cannot read private key"):
        build_pack(write_source(tmp_path / "s"), tmp_path / "none.key", tmp_path / "o.etpack")
    assert not (tmp_path / "o.etpack").exists()


def test_debug_env_shows_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGETUTOR_DEBUG", "1")
    result = CliRunner().invoke(make_cli(), ["pack", "verify", str(tmp_path / "nope.etpack")])
    assert isinstance(result.exception, CasePackError)
