"""Ed25519 keys for publishers: generate, load, sign, verify.

Keys are stored as PEM (PKCS#8 private, SubjectPublicKeyInfo public) so that standard tools
(openssl) can read them. A key is named by its key id: the first 16 hex digits of the SHA-256 of
the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import KeyFileError


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate(out_dir: Path, name: str = "publisher") -> tuple[Path, Path, str]:
    """Write `<name>.key` (mode 0600) and `<name>.pub` into out_dir. Returns both paths and key id.

    Raises KeyFileError if either file exists (a key is never overwritten).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists: refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Create with 0600 from the start: a chmod after writing would leave a window.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_text(public_pem(key.public_key()), encoding="ascii")
    return private_path, public_path, key_id(key.public_key())


# A PEM Ed25519 key is ~120 bytes: a larger "key file" (or /dev/zero) is never read whole.
MAX_KEY_FILE_BYTES = 64 * 1024


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        if path.exists() and not path.is_file():
            raise KeyFileError(f"cannot read {what} {path}: not a regular file")
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise KeyFileError(f"cannot read {what} {path}: {err.strerror or err}") from err
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large to be a key file")
    return data


def load_private_key(path: Path, label: str | None = None, fix: str = "") -> Ed25519PrivateKey:
    """The one loader of private keys (a publisher's signing key, a device's key).

    Raises KeyFileError if the file is missing or not an Ed25519 private key; `label` names the
    key in the message ("device key") and `fix` says what to do about it.
    """
    data = _read_key_file(path, label or "private key")
    suffix = f"; {fix}" if fix else ""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        if label:
            raise KeyFileError(f"{label} {path} is corrupt (not a PEM private key){suffix}") from err
        raise KeyFileError(f"{path} is not an unencrypted PEM private key{suffix}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{label + ' ' if label else ''}{path} is not an Ed25519 key{suffix}")
    return key


def parse_public_key(pem: str | bytes, origin: str) -> Ed25519PublicKey:
    """Raises KeyFileError if `pem` is not an Ed25519 public key (origin names it in the message)."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise KeyFileError(f"{origin} is not a PEM public key") from err
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{origin} is not an Ed25519 public key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    return parse_public_key(_read_key_file(path, "public key"), str(path))


def sign(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    return private_key.sign(data)


def verify(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
