"""Signing result events for the store: the `store.Sealer` the device's database is opened with.

The store owns the rows and the write transaction; this owns the device key and the event format
(`protocol.seal_event`), so a score and its signed event are written together or not at all and
the store itself knows nothing of keys or signatures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..store.db import Store
from .device import DeviceKey, load_or_create
from .events import build_payload, installed_case_info
from .protocol import GENESIS, seal_event


class EventSealer:
    """Seals scored attempts with this device's Ed25519 key (created on first use)."""

    genesis = GENESIS

    def __init__(self, key_dir: Path | None = None) -> None:
        #: folder of the device key (None: `home()/device`)
        self.key_dir = key_dir
        self._key: DeviceKey | None = None

    def key(self, bound_device_id: str | None) -> DeviceKey:
        """The device key for a database whose results were signed by `bound_device_id` (None if
        none yet). Raises KeyFileError if it is unusable or not the key that signed them."""
        self._key = load_or_create(bound_device_id, self.key_dir)
        return self._key

    def prepare(self, bound_device_id: str | None) -> str:
        return self.key(bound_device_id).device_id

    def case_info(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return installed_case_info(case_ids)

    def seal(
        self,
        attempt: Mapping[str, Any],
        trainee: Mapping[str, Any],
        score: Mapping[str, Any],
        info: Mapping[str, Any] | None,
        *,
        event_id: str,
        seq: int,
        prev: str,
        created: str,
    ) -> dict[str, Any]:
        if self._key is None:
            raise RuntimeError("EventSealer.prepare() must run before seal()")
        return seal_event(
            self._key.private,
            event_id=event_id,
            device_id=self._key.device_id,
            seq=seq,
            prev=prev,
            created=created,
            payload=build_payload(attempt, trainee, score, info),
        )


def sealed_key(store: Store) -> DeviceKey:
    """Seal any scored attempt still without an event and return the device key, for sync and
    export. Raises KeyFileError if the key is unusable (nothing is written then)."""
    if store.sealer is None:
        store.sealer = EventSealer()
    store.seal_backlog()
    sealer = store.sealer
    key_dir = sealer.key_dir if isinstance(sealer, EventSealer) else None
    return load_or_create(store.sync_state().device_id, key_dir)
