"""This device's own Ed25519 key: it signs every result event and every USB bundle.

The key lives in `home()/device/`: `device.key` (PKCS#8 PEM, mode 0600) and `device.pub`. It is
created on first need. The device id is the key id (`packs.signing.key_id`), so a hub can check
that an event's `device_id` and its signature belong together.

A database is bound to the key that signed its first result (`sync_state.device_id`): a key that
is missing or different afterwards is an error, never a silent new identity, because the hub
would see a second device with a chain starting again at #1 and the first device's results
could no longer be extended.

A new key is made only on purpose (`edgetutor sync --new-key`, after the coordinator's `hub
rotate`): it is written beside the old one as `device.key.next`, the database is bound to it,
then it takes the old one's place, which is kept as `retired-<device id>-<time>.key`. A process
stopped between the last two steps leaves the swap to the next `load_or_create`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .. import paths
from ..errors import KeyFileError
from ..fsutil import atomic_write_bytes, fsync_dir
from ..packs.signing import key_id, load_private_key, public_pem

KEY_NAME = "device.key"
PUB_NAME = "device.pub"
NEXT_NAME = "device.key.next"


@dataclass(frozen=True)
class DeviceKey:
    private: Ed25519PrivateKey
    device_id: str
    path: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_pem(self) -> str:
        return public_pem(self.public)


def device_dir() -> Path:
    return paths.home() / "device"


def key_path(folder: Path | None = None) -> Path:
    return (folder or device_dir()) / KEY_NAME


def _read(path: Path) -> Ed25519PrivateKey:
    return load_private_key(path, "device key", f"it was left as it is: restore {path.name} from a backup")


def _create(path: Path) -> None:
    """Write a new key at `path` unless one appears there first (another process won the race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # mkstemp creates the file 0600; link() publishes it complete or not at all and, unlike
    # rename, refuses to replace a key that is already there.
    fd, tmp = tempfile.mkstemp(prefix=".device.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def key_id_of(path: Path) -> str | None:
    """The device id of the key at `path`; None if it is missing or unreadable."""
    try:
        return key_id(_read(path).public_key()) if path.exists() else None
    except KeyFileError:
        return None


def make_next_key(folder: Path | None = None) -> DeviceKey:
    """Write a new key as `device.key.next` (replacing one left by an unfinished change) and
    return it; the current key is not touched. Raises KeyFileError if it cannot be written."""
    path = key_path(folder).with_name(NEXT_NAME)
    try:
        path.unlink(missing_ok=True)
        _create(path)
    except OSError as err:
        raise KeyFileError(f"cannot create a new device key in {path.parent}: {err.strerror or err}") from err
    private = _read(path)
    return DeviceKey(private, key_id(private.public_key()), path)


def install_next_key(folder: Path | None = None) -> None:
    """Put `device.key.next` in the place of `device.key`; the old key is kept beside it as
    `retired-<device id>-<UTC time>.key` ("unreadable" for the id of a corrupt one)."""
    path = key_path(folder)
    following = path.with_name(NEXT_NAME)
    if path.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        os.replace(path, path.with_name(f"retired-{key_id_of(path) or 'unreadable'}-{stamp}.key"))
    os.replace(following, path)
    fsync_dir(path.parent)


def _finish_new_key(path: Path, expected: str | None) -> None:
    """Complete a key change that stopped after the database was bound to the new key."""
    following = path.with_name(NEXT_NAME)
    if expected is None or not following.exists() or key_id_of(path) == expected:
        return
    if key_id_of(following) == expected:
        try:
            install_next_key(path.parent)
        except OSError as err:
            raise KeyFileError(
                f"cannot put the new device key {following} in place: {err.strerror or err}"
            ) from err


def load_or_create(expected: str | None = None, folder: Path | None = None) -> DeviceKey:
    """The device key, created if there is none and no result has been signed yet.

    `expected` is the device id this database's results were signed with (None if none yet).
    Raises KeyFileError (one line, the key file untouched) if the key is unreadable or corrupt,
    missing although results were signed with it, or not the key that signed them.
    """
    path = key_path(folder)
    _finish_new_key(path, expected)
    if not path.exists():
        if expected is not None:
            raise KeyFileError(
                f"device key {path} is missing; this device's results were signed by device {expected}:"
                f" restore {path.name} from a backup"
            )
        try:
            _create(path)
        except OSError as err:
            raise KeyFileError(f"cannot create device key {path}: {err.strerror or err}") from err
    private = _read(path)
    device_id = key_id(private.public_key())
    if expected is not None and device_id != expected:
        raise KeyFileError(
            f"device key {path} belongs to device {device_id}, but this device's results were signed by"
            f" device {expected}: restore the original {path.name}"
        )
    pub = path.with_name(PUB_NAME)
    pem = public_pem(private.public_key())
    # device.pub is a convenience copy for people (derived, so always safe to rewrite); failing
    # to write it must not stop a result from being signed.
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if not pub.exists() or pub.read_text(encoding="ascii") != pem:
            atomic_write_bytes(pub, pem.encode("ascii"))
    return DeviceKey(private, device_id, path)
