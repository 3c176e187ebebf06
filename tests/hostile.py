"""Helpers for the hostile-input tests: signed packs of any content, raw zips, resource limits, a
hub subprocess whose log is kept, and the checks every refusal must pass."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from edgetutor.packs.manifest import MANIFEST, SIGNATURE, FileEntry, Manifest
from edgetutor.packs.signing import key_id, load_private_key, sign

from .conftest import EXAMPLE_CASE

ROOT = Path(__file__).resolve().parents[1]
GOOD_CASE = EXAMPLE_CASE.read_bytes()
CASE_NAME = f"cases/{EXAMPLE_CASE.name}"
PACK_YAML = b"id: test-pack\nversion: 1\ntitle: Test pack\ndescription: For tests.\npublisher: Test Clinic\n"
# What a printed line may never hold: C0 controls (but tab), DEL, C1 controls.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# -- checks -------------------------------------------------------------------------------------
def assert_one_line(message: str, *needles: str) -> None:
    """A refusal as the project promises it: one line, printable, naming what it should."""
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert not CONTROL.search(message), repr(message)
    assert "Traceback" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)


def assert_cli_refusal(stderr: str, *needles: str) -> str:
    """stderr of a refused command: exactly one line, `Error: ...`."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert_one_line(lines[0], *needles)
    return lines[0]


# -- resource limits ------------------------------------------------------------------------------
class Hang(Exception):
    """Raised in the test when an example runs past its time limit."""


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def limits(memory_mb: int = 512, seconds: float = 20.0) -> Iterator[None]:
    """Run the block with at most `memory_mb` MB more address space than the process has now and
    at most `seconds` of wall time (SIGALRM raises Hang; a block stuck in C is still measured)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + memory_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f} s (limit {seconds} s)"


def child_limits(memory_mb: int) -> Any:
    """preexec_fn for a subprocess: at most `memory_mb` MB of address space."""

    def apply() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# -- packs ----------------------------------------------------------------------------------------
def signed_pack(
    out: Path,
    key_path: Path,
    files: dict[str, bytes],
    pack_id: str = "test-pack",
    version: int = 1,
) -> Path:
    """A pack of exactly `files` (any bytes), correctly signed by `key_path`: only the content can
    be wrong, so what is tested is how the device reads it."""
    key = load_private_key(key_path)
    manifest = Manifest(
        format=1,
        pack_id=pack_id,
        version=version,
        title="Hostile test pack",
        publisher="Test Clinic",
        publisher_key_id=key_id(key.public_key()),
        created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        files=[
            FileEntry(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            for name, data in files.items()
        ],
    )
    raw = manifest.to_bytes()
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # a hostile file list may repeat the manifest's own names
        zf.writestr(MANIFEST, raw)
        zf.writestr(SIGNATURE, base64.b64encode(sign(key, raw)) + b"\n")
        for name, data in files.items():
            zf.writestr(name, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return out


def pack_with_case(out: Path, key_path: Path, case: bytes, pack_yaml: bytes = PACK_YAML, **kw: Any) -> Path:
    return signed_pack(out, key_path, {"pack.yaml": pack_yaml, CASE_NAME: case}, **kw)


@dataclass
class Entry:
    """One member of a hand-made zip, with everything a zip lets an attacker choose."""

    name: str
    data: bytes
    method: int = zipfile.ZIP_DEFLATED
    mode: int = 0o100644
    encrypted: bool = False
    declared_size: int | None = None  # the central directory's uncompressed size, if it lies


def raw_zip(entries: list[Entry]) -> bytes:
    """A zip of `entries` (duplicates allowed), then the lies patched into its central directory."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w") as zf:
            for e in entries:
                info = zipfile.ZipInfo(e.name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = e.method
                info.external_attr = e.mode << 16
                zf.writestr(info, e.data)
    data = bytearray(buf.getvalue())
    at, index = 0, 0
    while True:
        at = data.find(b"PK\x01\x02", at)
        if at < 0 or index >= len(entries):
            break
        e = entries[index]
        if e.encrypted:
            flags = struct.unpack_from("<H", data, at + 8)[0]
            struct.pack_into("<H", data, at + 8, flags | 1)
        if e.declared_size is not None:
            struct.pack_into("<I", data, at + 24, e.declared_size & 0xFFFFFFFF)
        at += 4
        index += 1
    return bytes(data)


def zero_member_pack(out: Path, key_path: Path, size: int) -> Path:
    """A signed pack holding, besides a valid case, `size` zero bytes honestly declared: a zip
    bomb that is not a lie (written in chunks: the test never holds it in memory)."""
    key = load_private_key(key_path)
    chunk = b"\0" * (1 << 20)
    digest = hashlib.sha256()
    left = size
    while left:
        part = chunk[: min(left, len(chunk))]
        digest.update(part)
        left -= len(part)
    files = {"pack.yaml": PACK_YAML, CASE_NAME: GOOD_CASE}
    entries = [FileEntry(path=n, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for n, d in files.items()]
    entries.append(FileEntry(path="media/zeros.bin", size=size, sha256=digest.hexdigest()))
    manifest = Manifest(
        format=1,
        pack_id="test-pack",
        version=1,
        title="Zeros",
        publisher="Test Clinic",
        publisher_key_id=key_id(key.public_key()),
        created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        files=entries,
    )
    raw = manifest.to_bytes()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, raw)
        zf.writestr(SIGNATURE, base64.b64encode(sign(key, raw)) + b"\n")
        for name, data in files.items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("media/zeros.bin", date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            left = size
            while left:
                part = chunk[: min(left, len(chunk))]
                member.write(part)
                left -= len(part)
    return out


# -- a hub whose log is kept ------------------------------------------------------------------------
class LoggedHub:
    """`edgetutor hub serve` on 127.0.0.1 with its log in a file (a pipe nobody reads would
    block a chatty hub), optionally under a memory limit."""

    def __init__(self, db: Path, memory_mb: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.db = db
        self.log_path = db.with_suffix(".log")
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgetutor", "hub", "serve", "--db", str(db), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=child_limits(memory_mb) if memory_mb else None,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"hub did not start: {line!r} {self.log_path.read_text()!r}")
        self.url = line.split("listening on ")[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.log.close()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def post(url: str, path: str, raw: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, JSON reply or raw bytes) of one POST with a raw body; errors are returned."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url + path, data=raw, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, body, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, body, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in ctype else body
