"""The device's trust store: which publisher keys may sign packs it installs.

Stored in `EDGETUTOR_HOME/trust.json`. The demo publisher key (shipped with EdgeTutor, private key
included so anyone can rebuild the demo pack) is trusted out of the box and always labelled DEMO;
removing it is remembered, so it does not come back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import paths
from ..errors import KeyFileError, TrustError
from ..fsutil import atomic_write_bytes
from .signing import key_id, load_public_key, parse_public_key, public_pem

DEMO_NAME = "EdgeTutor demo publisher"


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    name: str
    public_key: str  # PEM
    demo: bool = False
    added: str = ""

    @property
    def label(self) -> str:
        """How the publisher is shown everywhere: demo keys say so."""
        return f"{self.name} [DEMO publisher: not vetted]" if self.demo else self.name

    def key(self) -> Ed25519PublicKey:
        return parse_public_key(self.public_key, f"trusted key {self.key_id}")


def demo_public_pem() -> str:
    return resources.files("edgetutor.packs").joinpath("demo_publisher.pub").read_text("ascii")


def demo_key() -> TrustedKey:
    pem = demo_public_pem()
    return TrustedKey(key_id(parse_public_key(pem, "demo key")), DEMO_NAME, pem, demo=True)


class TrustStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.trust_file()

    def _read(self) -> dict:
        if not self.path.exists():
            return {"format": 1, "keys": [], "removed": []}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TrustError(f"trust store {self.path} is unreadable: {err}") from err
        if not isinstance(data, dict) or data.get("format") != 1:
            raise TrustError(f"trust store {self.path} has an unknown format")
        return data

    def _write(self, data: dict) -> None:
        atomic_write_bytes(self.path, json.dumps(data, indent=2, sort_keys=True).encode())

    def keys(self) -> list[TrustedKey]:
        data = self._read()
        keys = [TrustedKey(**k) for k in data["keys"]]
        demo = demo_key()
        if demo.key_id not in data["removed"] and all(k.key_id != demo.key_id for k in keys):
            keys.insert(0, demo)
        return keys

    def get(self, kid: str) -> TrustedKey | None:
        return next((k for k in self.keys() if k.key_id == kid), None)

    def add(self, public_key_path: Path, name: str) -> TrustedKey:
        """Trust a publisher key. Raises KeyFileError (bad file) or TrustError (name taken)."""
        key = load_public_key(public_key_path)
        kid = key_id(key)
        name = name.strip()
        if not name:
            raise TrustError("a trusted key needs a non-empty --name")
        data = self._read()
        for k in self.keys():
            if k.key_id == kid:
                raise TrustError(f"key {kid} is already trusted as {k.label!r}")
            if k.name.casefold() == name.casefold():
                raise TrustError(f"the name {name!r} is already used by key {k.key_id}")
        demo = demo_key()
        entry = TrustedKey(kid, name, public_pem(key), demo=kid == demo.key_id, added=_now())
        data["keys"].append(asdict(entry))
        data["removed"] = [r for r in data["removed"] if r != kid]
        self._write(data)
        return entry

    def remove(self, ref: str) -> TrustedKey:
        """Stop trusting a key, by key id or name. Raises TrustError if no such key."""
        match = [k for k in self.keys() if ref in (k.key_id, k.name) or k.name.casefold() == ref.casefold()]
        if not match:
            raise TrustError(f"no trusted key with id or name {ref!r} (see: edgetutor trust list)")
        key = match[0]
        data = self._read()
        data["keys"] = [k for k in data["keys"] if k["key_id"] != key.key_id]
        if key.key_id not in data["removed"]:
            data["removed"].append(key.key_id)
        self._write(data)
        return key


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


__all__ = ["DEMO_NAME", "KeyFileError", "TrustStore", "TrustedKey", "demo_key"]
