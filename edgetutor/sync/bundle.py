"""USB results bundles: every result the hub has not acknowledged, in one signed `*.etres` file.

For sites that never have a network: `edgetutor results export --out /media/usb` writes the file,
the coordinator runs `edgetutor hub import` on it. The bundle carries the device public key and,
while the device is not enrolled, its pending enrollment token, so a hub can enroll the device and
accept its results from the file alone.

Exporting never marks anything sent: only a hub acknowledgement (a later `edgetutor sync`) does.
A bundle exported twice, or imported after the same results arrived by network, is harmless: the
hub keeps each event once.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SyncError
from ..fsutil import atomic_write_bytes
from . import protocol
from .seal import sealed_key

if TYPE_CHECKING:
    from ..store.db import Store


@dataclass(frozen=True)
class ExportResult:
    path: Path
    events: int
    first: int | None
    last: int | None
    enroll: bool  # the bundle carries an enrollment token


def bundle_name(device_id: str, first: int | None, last: int | None) -> str:
    span = f"{first:06d}-{last:06d}" if first is not None and last is not None else "enroll"
    return f"edgetutor-results-{device_id}-{span}{protocol.BUNDLE_SUFFIX}"


def _write(path: Path, data: bytes) -> None:
    # One place where the bundle hits the disk: atomic (temp file, fsync, rename), so a full disk
    # or a pulled stick leaves no partial *.etres behind.
    atomic_write_bytes(path, data)


def _continues(device_id: str | None) -> dict[str, str]:
    # A new key enrolls as carrying on its old device's chain (client.new_key).
    return {"continues": device_id} if device_id else {}


def export(store: Store, out_dir: Path) -> ExportResult | None:
    """Write the bundle into `out_dir` (created if missing); None if there is nothing to carry
    (every result acknowledged and the device enrolled).

    Raises SyncError if the folder cannot be written (nothing is left behind then) and
    KeyFileError if the device key is unusable.
    """
    key = sealed_key(store)
    state = store.sync_state()
    events = store.events(pending=True)
    token = state.enroll_token if not state.enrolled else None
    if not events and token is None:
        return None
    first = events[0]["seq"] if events else None
    last = events[-1]["seq"] if events else None
    bundle: dict[str, Any] = {
        "v": protocol.PROTOCOL_VERSION,
        "kind": protocol.BUNDLE_KIND,
        "device_id": key.device_id,
        "public_key": key.public_pem,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "enroll": None if token is None else {"token": token} | _continues(state.continues),
        "events": events,
    }
    sealed = protocol.seal_bundle(key.private, bundle)
    data = json.dumps(sealed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = out_dir / bundle_name(key.device_id, first, last)
    if out_dir.exists() and not out_dir.is_dir():
        raise SyncError(f"cannot export to {out_dir}: it is not a folder")
    try:
        _write(path, data)
    except OSError as err:
        why = "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err)).lower()
        raise SyncError(f"cannot write {path}: {why}; nothing was written") from err
    return ExportResult(path, len(events), first, last, token is not None)
