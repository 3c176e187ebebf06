"""Opening and verifying a pack file.

Order of checks: the zip's directory is read (nothing is decompressed), the manifest and its
signature are checked against the trust store, then every member name is checked against the
signed manifest, and only then is each file inflated, with its size capped at the declared size
and its SHA-256 compared as it streams. Members are inflated here with zlib directly rather than
through `zipfile`, so that a member that inflates past its declared size is caught at the first
extra byte (a zip bomb) instead of after the fact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from ..errors import CasePackError, SignatureError
from .manifest import MANIFEST, MAX_MANIFEST_BYTES, SIGNATURE, FileEntry, Manifest, check_member_path
from .signing import verify
from .trust import TrustedKey, TrustStore

CHUNK = 256 * 1024
# Bytes inflated per step, whatever a member's declared size: deflate expands up to ~1,000x, so
# the output of one read must be bounded on its own (a 1 GB member of zeros once took 840 MB).
OUT_CHUNK = 1024 * 1024
# A pack holds cases and their attributions, not media: far more is not a pack.
MAX_MEMBERS = 10_000
MAX_PACK_CONTENT = 2 * 1024**3
# The central directory of MAX_MEMBERS entries with long names and extras is at most ~4 MB.
MAX_DIRECTORY = 4 * 1024 * 1024
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_MAGIC = 0x04034B50


@dataclass
class OpenedPack:
    """A pack whose signature and member list are verified; file contents not yet read."""

    path: Path
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes
    publisher: TrustedKey
    infos: dict[str, zipfile.ZipInfo]

    def refuse(self, reason: str) -> CasePackError:
        return CasePackError(f"refused {self.path.name}: {reason}")

    def stream(self, entry: FileEntry) -> Iterator[bytes]:
        """Yield the member's bytes, raising CasePackError if they differ from the manifest."""
        digest = hashlib.sha256()
        size = 0
        for chunk in _inflate(self.path, self.infos[entry.path], entry.size, self.refuse):
            size += len(chunk)
            digest.update(chunk)
            yield chunk
        if size != entry.size:
            raise self.refuse(f"file {entry.path} is {size} bytes, the manifest says {entry.size}")
        if digest.hexdigest() != entry.sha256:
            raise self.refuse(f"file {entry.path} was changed (SHA-256 does not match the manifest)")

    def read_all(self, sink: Callable[[FileEntry], BinaryIO] | None = None) -> None:
        """Stream every listed file, checking size and hash; write each to `sink(entry)` if given."""
        for entry in self.manifest.files:
            out = sink(entry) if sink else None
            try:
                for chunk in self.stream(entry):
                    if out:
                        out.write(chunk)
            finally:
                if out:
                    out.close()

    def read_bytes(self, path: str) -> bytes:
        """A whole member in memory: only for small files (callers check the declared size)."""
        entry = next(e for e in self.manifest.files if e.path == path)
        return b"".join(self.stream(entry))


def open_pack(path: Path, trust: TrustStore) -> OpenedPack:
    """Open a pack and verify its signature and member list. Raises SignatureError/CasePackError."""

    def refuse(reason: str) -> CasePackError:
        return CasePackError(f"refused {path.name}: {reason}")

    if not path.is_file():
        raise CasePackError(f"no such pack file: {path}")
    try:
        members, directory = _directory_size(path)
        if members > MAX_MEMBERS + 2 or directory > MAX_DIRECTORY:
            raise refuse(
                f"its directory declares {members:,} entries in {directory:,} bytes: a pack holds at most "
                f"{MAX_MEMBERS:,} files"
            )
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as err:
        raise refuse(f"not a valid pack (zip) file: {str(err)[:200]}") from err
    if len(infos) > MAX_MEMBERS + 2:
        raise refuse(f"{len(infos):,} entries: a pack holds at most {MAX_MEMBERS:,} files")

    by_name: dict[str, zipfile.ZipInfo] = {}
    folded: dict[str, str] = {}
    for info in infos:
        name = info.filename
        if name in by_name:
            raise refuse(f"duplicate entry {name!r}")
        if name.casefold() in folded:
            raise refuse(f"entries {folded[name.casefold()]!r} and {name!r} differ only in case")
        problem = check_member_path(name)
        if problem:
            raise refuse(f"unsafe entry {name!r}: {problem}")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise refuse(f"entry {name!r} is a symbolic link")
        if info.is_dir():
            raise refuse(f"entry {name!r} is a directory (packs list files only)")
        if info.flag_bits & 0x1:
            raise refuse(f"entry {name!r} is encrypted")
        by_name[name] = info
        folded[name.casefold()] = name

    for required in (MANIFEST, SIGNATURE):
        if required not in by_name:
            raise refuse(f"no {required}: not a signed EdgeTutor pack")
    if by_name[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise refuse("manifest.json is implausibly large")
    manifest_bytes = b"".join(_inflate(path, by_name[MANIFEST], by_name[MANIFEST].file_size, refuse))
    sig_text = b"".join(_inflate(path, by_name[SIGNATURE], min(by_name[SIGNATURE].file_size, 1024), refuse))
    try:
        signature = base64.b64decode(sig_text.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise SignatureError(f"refused {path.name}: manifest.sig is not a base64 signature") from err

    # Signature first: nothing else in the manifest is believed before it checks out.
    try:
        claimed = json.loads(manifest_bytes)
        kid = claimed["publisher_key_id"]
        if not isinstance(kid, str) or not re.fullmatch(r"[0-9a-f]{16}", kid):
            raise TypeError("publisher_key_id is not a key id")
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise refuse("manifest.json is not valid JSON with a publisher_key_id") from err
    publisher = trust.get(kid)
    if publisher is None:
        raise SignatureError(
            f"refused {path.name}: publisher key {kid} is not trusted on this device "
            "(see: edgetutor trust list / trust add)"
        )
    if len(signature) != 64 or not verify(publisher.key(), signature, manifest_bytes):
        raise SignatureError(
            f"refused {path.name}: bad signature (the manifest was altered or not signed by {kid})"
        )

    try:
        manifest = Manifest.model_validate(claimed)
    except ValidationError as err:
        first = err.errors()[0]
        raise refuse(f"invalid manifest: {'.'.join(map(str, first['loc']))}: {first['msg']}") from err
    if not publisher.vouches_for(manifest.pack_id):
        # Scoped trust: the demo key (whose private half is public) signs only the demo pack.
        raise SignatureError(
            f"refused {path.name}: publisher key {kid} ({publisher.label}) is trusted only for "
            f"{publisher.scope_text()}, not for pack {manifest.pack_id!r}"
        )
    if len(manifest.files) > MAX_MEMBERS:
        raise refuse(
            f"the manifest lists {len(manifest.files):,} files: a pack holds at most {MAX_MEMBERS:,}"
        )
    if sum(e.size for e in manifest.files) > MAX_PACK_CONTENT:
        raise refuse(f"the files add up to more than the {MAX_PACK_CONTENT // 1024**3} GB a pack may hold")

    listed: dict[str, FileEntry] = {}
    listed_folded: set[str] = set()
    for entry in manifest.files:
        problem = check_member_path(entry.path)
        if problem:
            raise refuse(f"manifest lists unsafe path {entry.path!r}: {problem}")
        if entry.path in (MANIFEST, SIGNATURE) or entry.path.casefold() in listed_folded:
            raise refuse(f"manifest lists {entry.path!r} twice or under a reserved name")
        listed[entry.path] = entry
        listed_folded.add(entry.path.casefold())
    for name in by_name:
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            raise refuse(f"file {name!r} is not in the signed manifest (added after signing)")
    for name, entry in listed.items():
        if name not in by_name:
            raise refuse(f"file {name!r} listed in the manifest is missing")
        if by_name[name].file_size != entry.size:
            raise refuse(
                f"file {name!r} is {by_name[name].file_size} bytes in the zip, the manifest says {entry.size}"
            )
    return OpenedPack(path, manifest, manifest_bytes, signature, publisher, by_name)


def _inflate(
    path: Path, info: zipfile.ZipInfo, limit: int, refuse: Callable[[str], CasePackError]
) -> Iterator[bytes]:
    """Yield a member's uncompressed bytes, refusing as soon as they exceed `limit`."""
    with path.open("rb") as f:
        f.seek(info.header_offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise refuse(f"entry {info.filename!r} is truncated")
        fields = _LOCAL_HEADER.unpack(header)
        if fields[0] != _LOCAL_MAGIC:
            raise refuse(f"entry {info.filename!r} has a corrupt header")
        name_len, extra_len = fields[9], fields[10]
        local_name = f.read(name_len)
        if (
            local_name.decode("utf-8", "replace") != info.filename
            and local_name.decode("cp437", "replace") != info.filename
        ):
            raise refuse(f"entry {info.filename!r} has a different name in its local header")
        f.seek(extra_len, 1)
        remaining = info.compress_size
        produced = 0
        if info.compress_type == zipfile.ZIP_STORED:
            inflater = None
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-15)
        else:
            raise refuse(f"entry {info.filename!r} uses an unsupported compression method")
        while remaining > 0:
            raw = f.read(min(CHUNK, remaining))
            if not raw:
                raise refuse(f"entry {info.filename!r} is truncated")
            remaining -= len(raw)
            pending = raw
            while pending:
                if inflater is None:
                    out, pending = pending, b""
                else:
                    try:
                        # Never inflate more than one byte past the limit, and never more than
                        # OUT_CHUNK at once: memory stays bounded whatever size is declared.
                        out = inflater.decompress(pending, min(OUT_CHUNK, limit - produced + 1))
                    except zlib.error as err:
                        raise refuse(f"entry {info.filename!r} is corrupt ({err})") from err
                    pending = inflater.unconsumed_tail
                produced += len(out)
                if produced > limit:
                    raise refuse(f"file {info.filename!r} inflates past its declared size of {limit} bytes")
                if out:
                    yield out
        if inflater is not None:
            tail = inflater.flush()
            produced += len(tail)
            if produced > limit:
                raise refuse(f"file {info.filename!r} inflates past its declared size of {limit} bytes")
            if tail:
                yield tail


def _directory_size(path: Path) -> tuple[int, int]:
    """(entries, bytes) of the central directory as the zip's end record declares them, read
    before zipfile builds one object per entry (it reads as many as the byte size allows)."""
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        tail_len = min(size, 22 + 65535)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return 0, 0  # not a zip: zipfile says so with its own message
        count, cd_size = struct.unpack("<HI", tail[at + 10 : at + 16])
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator[:4] == b"PK\x06\x07":
            # Zip64: the real figures are in the Zip64 end record the locator points at.
            (offset,) = struct.unpack("<Q", locator[8:16])
            if offset < size:
                f.seek(offset)
                record = f.read(56)
                if len(record) == 56 and record[:4] == b"PK\x06\x06":
                    count, cd_size = struct.unpack("<QQ", record[32:48])
    return int(count), int(cd_size)
