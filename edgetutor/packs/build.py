"""`edgetutor pack build`: lint a source folder, then write a signed pack.

Every regular file under SRC goes in (cases, pack.yaml, attribution and licence files), except
hidden files. Symbolic links in SRC are refused rather than followed: what is signed must be
exactly what is in the folder.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

from ..cases.lint import lint_source
from ..cases.loader import parse_pack_meta, read_source
from ..errors import CasePackError
from ..fsutil import atomic_write_bytes
from .manifest import MANIFEST, SIGNATURE, FileEntry, Manifest, check_member_path
from .signing import key_id, load_private_key, sign

# Fixed timestamps inside the zip: the same sources and manifest give the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def source_files(src: Path) -> list[tuple[str, Path]]:
    """(member path, file) for every file that goes into the pack, sorted. Raises CasePackError."""
    files = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if path.is_symlink():
            raise CasePackError(f"{path} is a symbolic link: packs hold regular files only")
        if path.is_dir():
            continue
        if not path.is_file():
            raise CasePackError(
                f"{path} is not a regular file (a pipe or a device): packs hold regular files only"
            )
        problem = check_member_path(rel)
        if problem:
            raise CasePackError(f"{path}: cannot be packed ({problem})")
        files.append((rel, path))
    return files


def build_pack(src: Path, key_path: Path, out: Path, created: dt.datetime | None = None) -> Manifest:
    """Lint SRC and write a signed pack to OUT. Raises CasePackError (lint errors) or KeyFileError."""
    load_private_key(key_path)  # a missing key fails before the (slower) lint
    _, problems = lint_source(src)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise CasePackError(
            f"{len(errors)} lint error(s) in {src}, first: {errors[0]} (run: edgetutor pack lint {src})"
        )
    return write_pack(src, key_path, out, created)


def write_pack(src: Path, key_path: Path, out: Path, created: dt.datetime | None = None) -> Manifest:
    """Sign and write SRC as a pack without linting it (build_pack lints first)."""
    key = load_private_key(key_path)
    meta = parse_pack_meta(read_source(src / "pack.yaml"), str(src / "pack.yaml"))
    files = source_files(src)
    contents = {rel: path.read_bytes() for rel, path in files}
    manifest = Manifest(
        format=1,
        pack_id=meta.id,
        version=meta.version,
        title=meta.title,
        publisher=meta.publisher,
        publisher_key_id=key_id(key.public_key()),
        created=created or dt.datetime.now(dt.UTC).replace(microsecond=0),
        expires=meta.expires,
        files=[
            FileEntry(path=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            for rel, data in contents.items()
        ],
    )
    manifest_bytes = manifest.to_bytes()
    signature = base64.b64encode(sign(key, manifest_bytes)) + b"\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in ((MANIFEST, manifest_bytes), (SIGNATURE, signature), *contents.items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    atomic_write_bytes(out, buf.getvalue())
    return manifest
