"""The pack catalogue: signed case packs the coordinator publishes for devices to download.

The hub does not need to trust the publisher: it stores the pack file as given and lists it;
each device verifies the signature against its own trust store when it installs the pack. The hub
only reads the manifest (id, version, title) to list the newest version of each pack, and refuses
to publish a second, different file under a version already published, as devices would.
Files live next to a SQLite database, in `<db>.packs/<sha256 of the file>.etpack` (for
PostgreSQL see `engines.PostgresDialect.pack_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..packs.manifest import MANIFEST, MAX_MANIFEST_BYTES, SIGNATURE, Manifest
from ..sync import protocol
from . import HubError
from .db import HubDB


def pack_dir(db: HubDB) -> Path:
    return db.pack_dir()


def _manifest(path: Path) -> Manifest:
    """The pack's manifest, read without trusting it (devices check the signature)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if MANIFEST not in names or SIGNATURE not in names:
                raise HubError(f"{path.name} is not a signed EdgeTutor pack (no {MANIFEST} or {SIGNATURE})")
            info = zf.getinfo(MANIFEST)
            if info.file_size > MAX_MANIFEST_BYTES:
                raise HubError(f"{path.name}: manifest.json is implausibly large")
            raw = zf.read(MANIFEST)
    except HubError:
        raise
    except Exception as err:  # noqa: BLE001 - zipfile raises many kinds (encrypted, unknown method...)
        raise HubError(f"{path.name} is not a pack file: {str(err)[:200]}") from err
    try:
        return Manifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError) as err:
        raise HubError(f"{path.name}: manifest.json is not a valid pack manifest") from err


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def publish(db: HubDB, path: Path) -> dict[str, Any]:
    """Add the pack file at `path` to the catalogue and return its row.

    Raises HubError if it is not a pack, is already published, or its version is already
    published with different bytes.
    """
    if not path.is_file():
        raise HubError(f"no such pack file: {path}")
    manifest = _manifest(path)
    digest = _file_digest(path)
    if db.pack(digest) is not None:
        raise HubError(f"{manifest.pack_id} v{manifest.version} is already published ({digest[:12]})")
    if db.pack_version(manifest.pack_id, manifest.version) is not None:
        raise HubError(
            f"{manifest.pack_id} v{manifest.version} is already published with different content: "
            "raise the version to publish a change"
        )
    folder = pack_dir(db)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{digest}.etpack"
    partial = folder / f".{digest}.partial"
    shutil.copyfile(path, partial)
    with partial.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, final)
    row = {
        "digest": digest,
        "pack_id": manifest.pack_id,
        "version": manifest.version,
        "title": manifest.title,
        "publisher_key_id": manifest.publisher_key_id,
        "content_digest": manifest.content_digest(),
        "size": final.stat().st_size,
    }
    with db.write():
        db.add_pack(row)
    return row


def catalogue(db: HubDB) -> list[dict[str, Any]]:
    """The newest published version of each pack, as GET /api/v1/packs lists it."""
    newest: dict[str, dict[str, Any]] = {}
    for row in db.packs():
        if row["pack_id"] not in newest or row["version"] > newest[row["pack_id"]]["version"]:
            newest[row["pack_id"]] = row
    return [
        {
            "pack_id": r["pack_id"],
            "version": int(r["version"]),
            "digest": r["digest"],
            "size": int(r["size"]),
            "url": f"{protocol.API}/packs/{r['digest']}.etpack",
            "title": r["title"],
            "publisher_key_id": r["publisher_key_id"],
            "content_digest": r["content_digest"],
        }
        for r in sorted(newest.values(), key=lambda r: r["pack_id"])
    ]


def pack_file(db: HubDB, digest: str) -> Path | None:
    """The stored file for a published digest, or None (the digest is looked up, never used as a
    path before it is known to be one of ours)."""
    row = db.pack(digest)
    if row is None:
        return None
    path = pack_dir(db) / f"{row['digest']}.etpack"
    return path if path.is_file() else None
