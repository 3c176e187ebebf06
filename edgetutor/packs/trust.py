"""The device's trust store: which publisher keys may sign packs it installs.

Stored in `EDGETUTOR_HOME/trust.json`. The demo publisher key (shipped with EdgeTutor, private key
included so anyone can rebuild the demo pack) is trusted out of the box and always labelled DEMO;
removing it is remembered, so it does not come back.

Trust can be scoped: an entry with `packs` vouches only for packs with those ids. The demo key is
always scoped to the demo pack's own id (DEMO_PACK_IDS), since anyone can sign with it; without
that, anyone could sign a pack of any id that every device would install.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import paths
from ..errors import KeyFileError, TrustError
from ..fsutil import atomic_write_bytes
from .signing import key_id, load_public_key, parse_public_key, public_pem

DEMO_NAME = "EdgeTutor demo publisher"
# The only pack ids the demo key vouches for; results from them are practice at the hub.
DEMO_PACK_IDS: tuple[str, ...] = ("edgetutor-demo",)
_PACK_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    name: str
    public_key: str  # PEM
    demo: bool = False
    added: str = ""
    # Pack ids this key may sign; None: any pack.
    packs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.demo and self.packs is None:
            object.__setattr__(self, "packs", DEMO_PACK_IDS)

    @property
    def label(self) -> str:
        """How the publisher is shown everywhere: demo keys say so."""
        return f"{self.name} [DEMO publisher: not vetted]" if self.demo else self.name

    def vouches_for(self, pack_id: str) -> bool:
        return self.packs is None or pack_id in self.packs

    def scope_text(self) -> str:
        if self.packs is None:
            return "any pack"
        return "pack " + ", ".join(self.packs) if len(self.packs) == 1 else "packs " + ", ".join(self.packs)

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
        except (OSError, ValueError, RecursionError) as err:
            raise TrustError(f"trust store {self.path} is unreadable: {err}") from err
        if not isinstance(data, dict) or data.get("format") != 1:
            raise TrustError(f"trust store {self.path} has an unknown format")
        data.setdefault("keys", [])
        data.setdefault("removed", [])
        if not isinstance(data["keys"], list) or not isinstance(data["removed"], list):
            raise TrustError(f"trust store {self.path} has an unknown format")
        return data

    def _write(self, data: dict) -> None:
        atomic_write_bytes(self.path, json.dumps(data, indent=2, sort_keys=True).encode())

    def keys(self) -> list[TrustedKey]:
        data = self._read()
        keys = [self._entry(k) for k in data["keys"]]
        demo = demo_key()
        if demo.key_id not in data["removed"] and all(k.key_id != demo.key_id for k in keys):
            keys.insert(0, demo)
        return keys

    def _entry(self, raw: Any) -> TrustedKey:
        """One stored entry, checked: a damaged trust store is an error, never a traceback."""
        try:
            packs = raw.get("packs")
            entry = TrustedKey(
                key_id=raw["key_id"],
                name=raw["name"],
                public_key=raw["public_key"],
                demo=raw.get("demo", False),
                added=raw.get("added", ""),
                packs=None if packs is None else tuple(packs),
            )
            fields_ok = all(
                isinstance(v, str) for v in (entry.key_id, entry.name, entry.public_key, entry.added)
            )
            if not fields_ok or not isinstance(entry.demo, bool):
                raise TypeError("wrong field type")
            if entry.packs is not None and not all(isinstance(p, str) for p in entry.packs):
                raise TypeError("packs must be pack ids")
        except (AttributeError, KeyError, TypeError) as err:
            raise TrustError(f"trust store {self.path} has a malformed entry ({err})") from err
        return entry

    def get(self, kid: str) -> TrustedKey | None:
        return next((k for k in self.keys() if k.key_id == kid), None)

    def vouching(self, kid: str, pack_id: str) -> TrustedKey | None:
        """The trusted key `kid` if it may sign pack `pack_id`, else None."""
        key = self.get(kid)
        return key if key is not None and key.vouches_for(pack_id) else None

    def add(self, public_key_path: Path, name: str, packs: Iterable[str] | None = None) -> TrustedKey:
        """Trust a publisher key, for any pack or only for the pack ids in `packs`.

        Raises KeyFileError (bad file) or TrustError (name taken, bad pack id).
        """
        scope: tuple[str, ...] | None = None
        if packs is not None:
            scope = tuple(dict.fromkeys(p.strip() for p in packs))
            for pack_id in scope:
                if not _PACK_ID.fullmatch(pack_id) or len(pack_id) > 80:
                    raise TrustError(
                        f"{pack_id!r} is not a pack id (lower case letters, digits, '-' and '_')"
                    )
            if not scope:
                scope = None
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
        entry = TrustedKey(kid, name, public_pem(key), demo=kid == demo.key_id, added=_now(), packs=scope)
        stored = asdict(entry)
        stored["packs"] = list(entry.packs) if entry.packs is not None else None
        data["keys"].append(stored)
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
        data["keys"] = [k for k in data["keys"] if self._entry(k).key_id != key.key_id]
        if key.key_id not in data["removed"]:
            data["removed"].append(key.key_id)
        self._write(data)
        return key


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


__all__ = ["DEMO_NAME", "DEMO_PACK_IDS", "KeyFileError", "TrustStore", "TrustedKey", "demo_key"]
