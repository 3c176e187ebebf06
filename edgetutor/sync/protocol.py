"""The result-sync protocol shared by devices and the hub: events, bundles, the HTTP API.

Everything that crosses from a device to a coordinator is defined here and only here, so the two
sides cannot drift apart. Nothing in this module touches a database, a file or the network.

Events
------
Every finished attempt becomes one append-only *event*, a JSON object::

    {"v": 1, "type": "attempt.finished", "event_id": <32 hex>, "device_id": <16 hex>,
     "seq": 1, 2, ... (per device, no gaps), "prev": <hash of event seq-1, or GENESIS>,
     "created": <ISO 8601 UTC>, "payload": {...},
     "hash": sha256 hex of canonical(event without "hash" and "sig"),
     "sig": base64 Ed25519 signature by the device key over EVENT_DOMAIN + hash}

The chain (`prev`) makes a deleted, reordered or rewritten event visible to the hub: a gap
(`seq` beyond the next expected) or a fork (an accepted `seq` with a different hash).

Bundles (USB)
-------------
`results export` writes one JSON file, `*.etres`::

    {"v": 1, "kind": "edgetutor-results", "device_id", "public_key": <PEM>, "created",
     "enroll": {"token": ..., "continues": <device id> (optional)} or null, "events": [...],
     "sig": over BUNDLE_DOMAIN + sha256(canonical(rest))}

The bundle signature is the sending device's word for every event in it, including events its
replaced key signed (see "A new key" below).

A new key
---------
A device whose key the coordinator rotated (`hub rotate`) makes a new key and keeps its chain:
it enrolls with `"continues": <old device id>`, and the hub starts the new device at the old
one's acknowledged seq and head. Events the old key signed but the hub never acknowledged are
sent as they are (their hashes, and so the chain, unchanged), each with a *vouch*: the new key's
signature over VOUCH_DOMAIN + its hash. The retired key alone can send nothing more.

HTTP API (JSON; hub side in `edgetutor.hub`)
--------------------------------------------
- GET  /api/v1/ping -> {"hub": "edgetutor", "version": ...}: the cheap reachability probe.
- POST /api/v1/enroll {"token", "device_id", "public_key", "label", "proof", "continues" (optional)}
  -> {"device_id", "site", "acked_seq", "head"}; proof = sign(ENROLL_DOMAIN + token + "\\n" + device_id).
- POST /api/v1/events, header Idempotency-Key, {"device_id", "events": [...], "vouch": {event_id:
  sig} (only for events a replaced key signed)} ->
  {"acked_seq", "head", "accepted", "replayed", "rejected": [{"event_id", "seq", "reason"}]}.
- GET  /api/v1/devices/<device_id>/ack -> {"acked_seq", "head"}.
- GET  /api/v1/packs -> {"packs": [{"pack_id", "version", "digest", "size", "url"}]};
  GET <url> -> the signed .etpack bytes (installed by the device through normal verification).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PROTOCOL_VERSION = 1
EVENT_TYPE = "attempt.finished"
BUNDLE_KIND = "edgetutor-results"
BUNDLE_SUFFIX = ".etres"
GENESIS = "0" * 64
API = "/api/v1"

EVENT_DOMAIN = b"edgetutor-event-v1\n"
BUNDLE_DOMAIN = b"edgetutor-bundle-v1\n"
ENROLL_DOMAIN = b"edgetutor-enroll-v1\n"
VOUCH_DOMAIN = b"edgetutor-vouch-v1\n"

_EVENT_ID = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_DIGEST = re.compile(r"[0-9a-f]{64}")

EVENT_FIELDS = ("v", "type", "event_id", "device_id", "seq", "prev", "created", "payload", "hash", "sig")
_SORTED_FIELDS = tuple(sorted(EVENT_FIELDS))


_orjson_dumps = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS
_OrjsonError = orjson.JSONEncodeError
_PLAIN = frozenset((str, int, bool, type(None)))

# One encoder, made once: json.dumps() with these options builds a new one per call.
_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def canonical(obj: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return _text(obj).encode("utf-8")


def event_hash(event: dict[str, Any]) -> str:
    """sha256 hex of the event without its `hash` and `sig` fields."""
    body = {k: v for k, v in event.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical(body)).hexdigest()


def event_forms(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """(canonical bytes of the event without `hash` and `sig`, canonical bytes of the whole event),
    equal to `canonical()` of each (the hub's hot path hashes the first and stores the second).
    `event` must hold exactly EVENT_FIELDS.
    Raises TypeError or ValueError for content JSON cannot hold, as `canonical()` does."""
    fast = _orjson_forms(event)
    if fast is not None:
        return fast
    # Each field serialized once (the payload is most of the work), then joined in sorted order.
    parts = {k: f'"{k}":{_text(event[k])}' for k in _SORTED_FIELDS}
    body = "{" + ",".join(parts[k] for k in _SORTED_FIELDS if k not in ("hash", "sig")) + "}"
    whole = "{" + ",".join(parts.values()) + "}"
    return body.encode("utf-8"), whole.encode("utf-8")


def _orjson_forms(event: dict[str, Any]) -> tuple[bytes, bytes] | None:
    """`event_forms` by orjson (half the standard encoder's CPU, this check included), or None
    where its bytes could differ from `canonical()`. With sorted keys its output is the same for
    text (every code point, escapes included), key order, integers, true, false and null; it
    differs only for some floats (1e-05 is "0.00001"), NaN and infinities (null), and types JSON
    does not have (it writes dates, enums, tuples, dict subclasses...; canonical() refuses or
    converts them). So: every value must be of a JSON type and every float written alike, or
    the standard encoder decides."""
    if type(event) is not dict:
        return None
    try:
        whole = _orjson_dumps(event, option=_SORT_KEYS)
        body = _orjson_dumps({k: v for k, v in event.items() if k not in ("hash", "sig")}, option=_SORT_KEYS)
    except _OrjsonError:  # an integer beyond 64 bits, a lone surrogate, too deep, another type
        return None
    nodes: list[Any] = [event]
    while nodes:  # not endless: orjson refused a cycle (too deep) above
        node = nodes.pop()
        for value in node.values() if type(node) is dict else node:
            kind = type(value)
            if kind is dict or kind is list:
                nodes.append(value)
            elif kind is float:
                if _orjson_dumps(value) != repr(value).encode():
                    return None
            elif kind not in _PLAIN:
                return None
    return body, whole


class Verifier:
    """A device's public key ready to check many signatures. Verification runs in libsodium
    (PyNaCl), about twice as fast as OpenSSL's on the hub's CPUs; both refuse the same forged,
    altered and non-canonical signatures (tests/test_sync.py compares them)."""

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        # Imported here: only the hub verifies events, and a device starts faster without it.
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        self._key = VerifyKey(public_key.public_bytes_raw())
        self._refusals = (BadSignatureError, ValueError, TypeError)

    def __call__(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(message, signature)
        except self._refusals:
            return False
        return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None


def seal_event(
    key: Ed25519PrivateKey,
    *,
    event_id: str,
    device_id: str,
    seq: int,
    prev: str,
    created: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """A complete signed event (see the module docstring)."""
    event: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "type": EVENT_TYPE,
        "event_id": event_id,
        "device_id": device_id,
        "seq": seq,
        "prev": prev,
        "created": created,
        "payload": payload,
    }
    event["hash"] = event_hash(event)
    event["sig"] = _b64(key.sign(EVENT_DOMAIN + event["hash"].encode("ascii")))
    return event


def check_event(event: Any, public_key: Ed25519PublicKey | Verifier, body: bytes | None = None) -> str | None:
    """None if `event` is well formed, its hash matches its content and its signature is the
    device key's; otherwise the reason, one short phrase (used in hub logs and replies).
    `body` is the event's canonical form without hash and sig when the caller has it already."""
    if not isinstance(event, dict) or set(event) != set(EVENT_FIELDS):
        return "malformed event"
    if event["v"] != PROTOCOL_VERSION or event["type"] != EVENT_TYPE:
        return "unsupported event version or type"
    if not isinstance(event["seq"], int) or isinstance(event["seq"], bool) or event["seq"] < 1:
        return "malformed sequence number"
    if not isinstance(event["payload"], dict) or not all(
        isinstance(event[k], str) for k in ("event_id", "device_id", "prev", "created", "hash", "sig")
    ):
        return "malformed event"
    # Fixed shapes: an id, a key id, two SHA-256 digests and a timestamp, never free text.
    if not (
        _EVENT_ID.fullmatch(event["event_id"])
        and _KEY_ID.fullmatch(event["device_id"])
        and _DIGEST.fullmatch(event["prev"])
        and _DIGEST.fullmatch(event["hash"])
        and len(event["created"]) <= 40
        and len(event["sig"]) <= 200
    ):
        return "malformed event"
    try:
        recomputed = hashlib.sha256(event_forms(event)[0] if body is None else body).hexdigest()
    except (TypeError, ValueError, RecursionError):
        return "malformed event"
    if recomputed != event["hash"]:
        return "hash does not match content"
    sig = _unb64(event["sig"])
    if sig is None:
        return "bad signature"
    verify = public_key if isinstance(public_key, Verifier) else Verifier(public_key)
    if not verify(sig, EVENT_DOMAIN + event["hash"].encode("ascii")):
        return "bad signature"
    return None


def vouch(key: Ed25519PrivateKey, event_hash: str) -> str:
    """The sending device's signature over an event a key it replaced signed."""
    return _b64(key.sign(VOUCH_DOMAIN + event_hash.encode("ascii")))


def check_vouch(public_key: Ed25519PublicKey | Verifier, event_hash: str, vouch: Any) -> bool:
    sig = _unb64(vouch) if isinstance(vouch, str) and len(vouch) <= 200 else None
    if sig is None:
        return False
    verify = public_key if isinstance(public_key, Verifier) else Verifier(public_key)
    return verify(sig, VOUCH_DOMAIN + event_hash.encode("ascii"))


def enroll_proof(key: Ed25519PrivateKey, token: str, device_id: str) -> str:
    return _b64(key.sign(ENROLL_DOMAIN + f"{token}\n{device_id}".encode()))


def check_enroll_proof(public_key: Ed25519PublicKey, token: str, device_id: str, proof: str) -> bool:
    sig = _unb64(proof)
    if sig is None:
        return False
    try:
        public_key.verify(sig, ENROLL_DOMAIN + f"{token}\n{device_id}".encode())
    except InvalidSignature:
        return False
    return True


def _bundle_digest(bundle: dict[str, Any]) -> bytes:
    body = {k: v for k, v in bundle.items() if k != "sig"}
    return BUNDLE_DOMAIN + hashlib.sha256(canonical(body)).hexdigest().encode("ascii")


def seal_bundle(key: Ed25519PrivateKey, bundle: dict[str, Any]) -> dict[str, Any]:
    """`bundle` (every field but `sig`) with its signature added."""
    sealed = dict(bundle)
    sealed.pop("sig", None)
    sealed["sig"] = _b64(key.sign(_bundle_digest(sealed)))
    return sealed


def check_bundle_sig(bundle: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    sig = _unb64(bundle.get("sig", "")) if isinstance(bundle.get("sig"), str) else None
    if sig is None:
        return False
    try:
        public_key.verify(sig, _bundle_digest(bundle))
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True
