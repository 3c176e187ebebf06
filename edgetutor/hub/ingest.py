"""Enrollment and event ingest: the rules that decide what the hub accepts.

The HTTP API and `hub import` (USB bundles) both call `enroll()` and `ingest()`, so a result
arriving by either path is judged the same way and stored once.

Ingest rules for one batch from device D (one transaction; see docs/hub.md):
- D must be enrolled and not revoked;
- each event must belong to D and pass `protocol.check_event` with D's enrolled key, or belong to
  a device D replaced (hub rotate), pass the check with that device's key, and be vouched for by
  D's key (a vouch in the request, or the signature of the USB bundle it came in);
- an event already stored (same event_id, or same D+seq) with the same hash is a replay:
  acknowledged, not stored again; with a different hash it is a fork and refused;
- the next event accepted is seq = acked_seq + 1 whose `prev` is the head hash; a higher seq is
  a gap and refused;
- processing stops at the first refused event that the chain needed (seq > acked_seq): the
  events after it cannot chain. Refusals are logged in `anomalies` in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import KeyFileError
from ..packs.signing import key_id, parse_public_key
from ..packs.trust import DEMO_PACK_IDS
from ..sync import protocol
from . import HubError
from .db import TOKEN_DAYS, Device, HubDB, now, token_hash

log = logging.getLogger("edgetutor.hub")

NOT_PROCESSED = "not processed: follows a refused event"
MAX_BATCH = 5000
# One result is ~2-5 kB; a device caps what it puts in one (sync.events). Anything far larger is
# refused rather than stored and rendered on the dashboard.
MAX_EVENT_BYTES = 64 * 1024
# JSON from devices nests ~5 levels; deeper is refused before anything walks it recursively.
MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 30
# Enrollment fields: a token is 32 characters, a device id 16, an Ed25519 PEM key 113.
MAX_TOKEN_CHARS = 200
MAX_KEY_CHARS = 1000
MAX_LABEL_CHARS = 100
_DEVICE_ID = re.compile(r"[0-9a-f]{16}")
# A token valid for longer than this is a standing password: refused at issue.
MAX_TOKEN_DAYS = 90.0


@dataclass
class BatchResult:
    acked_seq: int
    head: str
    accepted: int = 0
    replayed: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reply(self) -> dict[str, Any]:
        return {
            "acked_seq": self.acked_seq,
            "head": self.head,
            "accepted": self.accepted,
            "replayed": self.replayed,
            "rejected": self.rejected,
        }


def new_token(db: HubDB, site: str, label: str | None = None, valid_days: float = TOKEN_DAYS) -> str:
    """Issue a single-use enrollment token for `site`, valid `valid_days`; only its hash is stored."""
    site = site.strip()
    if not site:
        raise HubError("the site name must not be empty")
    if not 0 < valid_days <= MAX_TOKEN_DAYS:
        raise HubError(f"a token is valid for more than 0 and at most {MAX_TOKEN_DAYS:g} days")
    token = secrets.token_urlsafe(24)
    with db.write():
        db.add_token(token, site, (label or "").strip() or None, valid_days)
    return token


def rotate(db: HubDB, device_id: str, valid_days: float = TOKEN_DAYS) -> str:
    """Retire DEVICE's key and issue a single-use token for a new key at the same site and label.

    The old key can send nothing more (its results stay, as for a revoked device); the device
    that enrolls with the new token is recorded as replacing it. Raises HubError when the
    device is unknown or already revoked (a revoked key is not rotated: issue a token instead).
    """
    if not 0 < valid_days <= MAX_TOKEN_DAYS:
        raise HubError(f"a token is valid for more than 0 and at most {MAX_TOKEN_DAYS:g} days")
    token = secrets.token_urlsafe(24)
    with db.write():
        device = db.device(device_id, lock=True)
        if device is None:
            raise HubError(f"no device {device_id} is enrolled")
        if device.revoked:
            raise HubError(f"device {device_id} is already revoked; issue a new token with hub enroll")
        db.revoke(device_id, "rotated")
        db.add_token(token, device.site, device.label, valid_days, replaces=device_id)
    log.info("rotated the key of device %s at site %s", device_id, device.site)
    return token


@lru_cache(maxsize=1024)
def _public_key(pem: str) -> Ed25519PublicKey:
    return parse_public_key(pem, "the device public key")


@lru_cache(maxsize=4096)
def _verifier(pem: str) -> protocol.Verifier:
    return protocol.Verifier(_public_key(pem))


def _refuse(
    db: HubDB, via: str, device_id: str | None, kind: str, reason: str, status: int = 403
) -> HubError:
    """Log a refusal that writes nothing else (its own transaction) and return the error to raise."""
    with db.write():
        db.add_anomaly(via, device_id, kind, reason)  # the caller reports it (HTTP log or CLI)
    return HubError(reason, status)


def enroll(
    db: HubDB,
    *,
    token: str,
    device_id: str,
    public_key: str,
    label: str | None,
    proof: str | None,
    via: str = "http",
    continues: Any = None,
) -> Device:
    """Enroll a device with a single-use token and return it.

    `continues` is the id of the device whose chain the new key carries on (the device the token
    replaces, `hub rotate`): the new device starts at that one's acknowledged seq and head.

    `proof` is the device's signature over the token and its id (protocol.enroll_proof); a USB
    bundle passes None because its own signature, checked by the caller, covers the token.
    Enrolling the same key again with the token it already used returns the device unchanged.
    Raises HubError (status 403) for anything else: unknown or used token, a device id that is not
    the key's id, a proof that does not verify, a revoked device.
    """
    if not all(isinstance(v, str) and v for v in (token, device_id, public_key)):
        raise HubError("enrollment needs a token, a device_id and a public_key", 400)
    if len(token) > MAX_TOKEN_CHARS or len(device_id) > 64 or len(public_key) > MAX_KEY_CHARS:
        raise HubError("enrollment token, device_id or public_key is implausibly long", 400)
    if continues is not None and not (isinstance(continues, str) and _DEVICE_ID.fullmatch(continues)):
        raise HubError("continues is not a device id", 400)
    if proof is not None and (not isinstance(proof, str) or len(proof) > MAX_TOKEN_CHARS):
        raise HubError("enrollment proof does not verify with the public key")
    label = label.strip()[:MAX_LABEL_CHARS] if isinstance(label, str) else None
    try:
        key = _public_key(public_key)
    except KeyFileError as err:
        raise HubError("the public key is not an Ed25519 PEM public key") from err
    if key_id(key) != device_id:
        raise HubError("device_id is not the id of the public key")
    if proof is not None and not protocol.check_enroll_proof(key, token, device_id, proof):
        raise HubError("enrollment proof does not verify with the public key")
    return db.retrying(lambda: _enroll(db, token, device_id, public_key, key, label, via, continues))


def _enroll(
    db: HubDB,
    token: str,
    device_id: str,
    public_key: str,
    key: Ed25519PublicKey,
    label: str | None,
    via: str,
    continues: str | None,
) -> Device:
    with db.write():
        row = db.token(token, lock=True)
        if row is None:
            raise HubError("unknown enrollment token")
        if row["used_by"] is None and row["expires"] is not None and row["expires"] <= now():
            raise HubError(
                f"enrollment token expired on {row['expires'][:16].replace('T', ' ')} UTC; issue a new one"
            )
        existing = db.device(device_id, lock=True)
        if row["used_by"] is not None:
            if (
                row["used_by"] == device_id
                and existing is not None
                and hmac.compare_digest(existing.token_hash, token_hash(token))
                and _public_key(existing.public_key) == key
            ):
                if existing.revoked:
                    raise HubError(f"device {device_id} is revoked")
                return existing
            raise HubError("enrollment token already used")
        if existing is not None:
            raise HubError(
                f"device {device_id} is already enrolled" + (" and revoked" if existing.revoked else "")
            )
        acked_seq, head = 0, protocol.GENESIS
        if continues is not None:
            old = db.device(continues, lock=True) if row["replaces"] == continues else None
            if old is None:
                raise HubError(
                    f"this enrollment token does not replace device {continues}:"
                    f" the coordinator issues one with hub rotate {continues}"
                )
            acked_seq, head = old.acked_seq, old.head
        label = row["label"] or label or None
        db.add_device(device_id, public_key, row["site"], label, row["hash"], via, head, acked_seq)
        db.use_token(row["hash"], device_id)
        if row["replaces"]:
            db.set_replaces(device_id, row["replaces"])
        device = db.device(device_id)
    assert device is not None
    log.info("enrolled device %s at site %s via %s", device_id, device.site, via)
    return device


class _Unwritable(Exception):
    """A batch from a device that may not write (unknown: 401, revoked: 403), found inside the
    batch's transaction; logged by `ingest` in a transaction of its own once that one is undone."""

    def __init__(self, kind: str, reason: str, status: int) -> None:
        super().__init__(reason)
        self.kind, self.status = kind, status


def _part(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """obj[key] when it is a mapping, else an empty one (payloads vary)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


INT64 = 2**63


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    """`value` if it is of `kind` (never a bool for a number) and fits a 64-bit column, else None."""
    if isinstance(value, bool) and kind is not bool:
        return None
    if isinstance(value, int) and not -INT64 < value < INT64:
        return None
    return value if isinstance(value, kind) else None


def columns(event: dict[str, Any], via: str, received: str, raw: bytes | None = None) -> dict[str, Any]:
    """The stored row: the whole signed event plus the fields reports read, each None if absent."""
    p = event["payload"]
    case, pack, score, trainee = _part(p, "case"), _part(p, "pack"), _part(p, "score"), _part(p, "trainee")
    comps = case.get("competencies")
    comps = [c for c in comps if isinstance(c, str)] if isinstance(comps, list) else []
    specialty = _typed(case.get("specialty"), str)
    trainee_ref = trainee.get("id")
    passed = score.get("passed")
    pack_id = _typed(pack.get("id"), str)
    return {
        "event_id": event["event_id"],
        "device_id": event["device_id"],
        "seq": event["seq"],
        "hash": event["hash"],
        "prev": event["prev"],
        "created": event["created"],
        "received": received,
        "via": via,
        "body": (raw or protocol.canonical(event)).decode("utf-8"),
        "attempt_id": _typed(p.get("attempt_id"), str),
        "trainee_ref": None if trainee_ref is None else str(trainee_ref),
        "trainee_name": _typed(trainee.get("name"), str),
        "pack_id": pack_id,
        "pack_version": _typed(pack.get("version"), int),
        "case_id": _typed(case.get("id"), str),
        "case_version": _typed(case.get("version"), int),
        "case_title": _typed(case.get("title"), str),
        "specialty": specialty,
        "competencies": json.dumps(sorted({*comps, *([specialty] if specialty else [])})),
        "model": _typed(p.get("model"), str),
        "started": _typed(p.get("started"), str),
        "ended": _typed(p.get("ended"), str),
        "seconds": _typed(p.get("seconds"), (int, float)),
        "turns": _typed(p.get("turns"), int),
        "score": _typed(score.get("total"), (int, float)),
        "passed": None if not isinstance(passed, bool) else int(passed),
        "scorer_version": _typed(score.get("scorer_version"), str),
        "practice": int(pack_id in DEMO_PACK_IDS),
    }


def _kind(reason: str) -> str:
    for word, kind in (
        ("vouched", "unvouched"),
        ("gap", "gap"),
        ("fork", "fork"),
        ("conflicting", "conflict"),
        ("signature", "bad-signature"),
        ("hash", "bad-hash"),
        ("another device", "wrong-device"),
    ):
        if word in reason:
            return kind
    return "malformed"


def ingest(
    db: HubDB,
    device_id: Any,
    events: Any,
    via: str = "http",
    idempotency: tuple[str, str] | None = None,
    vouches: Any = None,
    vouched: bool = False,
) -> dict[str, Any]:
    """Apply the ingest rules (module docstring) to one batch, in one transaction; return the reply.

    `vouches` ({event_id: signature} from the request) vouch for events signed by a key this
    device replaced; `vouched` says the batch's own signature (a USB bundle's) already does.

    `idempotency` is (key, sha256 of the request body): a key seen before with the same body
    returns the reply stored then, and nothing is processed again; with another body it is
    refused (HubError 422). The reply is stored in the same transaction as the events.
    Raises HubError 401/403 for an unknown or revoked device, 400 for a batch that is not a list
    (or is larger than MAX_BATCH); refusals of single events are in the reply, not raised.
    """
    if not isinstance(device_id, str) or not device_id or len(device_id) > 64:
        raise HubError("device_id is missing or malformed", 400)
    try:
        return db.retrying(lambda: _ingest_batch(db, device_id, events, via, idempotency, vouches, vouched))
    except _Unwritable as refusal:
        raise _refuse(db, via, device_id, refusal.kind, str(refusal), refusal.status) from None


@dataclass
class _Known:
    """What the database already holds for this batch, read once up front (a few queries per
    batch instead of two per event), then kept current as the batch accepts events."""

    by_id: dict[str, dict[str, Any]]
    by_seq: dict[int, str]


def _ingest_batch(
    db: HubDB,
    device_id: str,
    events: Any,
    via: str,
    idempotency: tuple[str, str] | None,
    vouches: Any,
    vouched: bool,
) -> dict[str, Any]:
    with db.write():
        # The device's row, locked until commit (PostgreSQL; SQLite holds the database write
        # lock already): one batch per device at a time, so two cannot read the same head.
        device, seen = db.device_for_batch(device_id, None if idempotency is None else idempotency[0])
        if device is None:
            raise _Unwritable("unknown-device", f"device {device_id} is not enrolled", 401)
        if device.revoked:
            raise _Unwritable("revoked-device", f"device {device_id} is revoked", 403)
        if not isinstance(events, list):
            raise HubError("events must be a list", 400)
        if len(events) > MAX_BATCH:
            raise HubError(f"a batch holds at most {MAX_BATCH} events", 400)
        if idempotency is not None and seen is not None:
            if not hmac.compare_digest(seen["request_hash"], idempotency[1]):
                raise HubError("Idempotency-Key was already used for a different request", 422)
            stored: dict[str, Any] = json.loads(seen["response"])
            return stored
        key = _verifier(device.public_key)
        signers = _Signers(key, device, db, events, vouches, vouched)
        result = BatchResult(device.acked_seq, device.head)
        known = _lookup(db, device.id, device.acked_seq, events)
        received = now()
        stopped = False
        fresh: list[dict[str, Any]] = []
        for event in events:
            ev_id = event.get("event_id") if isinstance(event, dict) else None
            seq = event.get("seq") if isinstance(event, dict) else None
            ev_id = ev_id[:64] if isinstance(ev_id, str) else None
            seq = _typed(seq, int)
            if stopped:
                result.rejected.append({"event_id": ev_id, "seq": seq, "reason": NOT_PROCESSED})
                continue
            body, raw = _forms(event)
            reason = _judge(known, device.id, signers, event, body, raw, result)
            if reason is None:
                if event["seq"] == result.acked_seq + 1:
                    fresh.append(columns(event, via, received, raw))
                    known.by_id[event["event_id"]] = {"device_id": device.id, "hash": event["hash"]}
                    known.by_seq[event["seq"]] = event["hash"]
                    result.acked_seq, result.head = event["seq"], event["hash"]
                    result.accepted += 1
                else:
                    result.replayed += 1
                continue
            result.rejected.append({"event_id": ev_id, "seq": seq, "reason": reason})
            db.add_anomaly(via, device.id, _kind(reason), reason, ev_id, seq, _digest(event))
            log.warning("refused event (%s) device %s seq %s: %s", via, device.id, seq, reason)
            # A refused event at or below the acked sequence does not break the chain; one the
            # chain needed does, and nothing after it can be accepted.
            if seq is None or seq > result.acked_seq:
                stopped = True
        reply = result.reply()
        db.add_events(fresh)
        db.advance(device.id, result.acked_seq, result.head)
        if idempotency is not None:
            db.remember(device.id, idempotency[0], idempotency[1], json.dumps(reply))
    return reply


def _lookup(db: HubDB, device_id: str, acked_seq: int, events: list[Any]) -> _Known:
    ids = [e["event_id"] for e in events if isinstance(e, dict) and isinstance(e.get("event_id"), str)]
    seqs = [s for e in events if isinstance(e, dict) and (s := _typed(e.get("seq"), int)) is not None]
    # The device holds exactly seq 1..acked_seq (its row is locked): a batch of new events only
    # needs the query by id (an id another device used), not the one by seq.
    low = min(seqs, default=acked_seq + 1)
    by_seq = db.hashes_by_seq(device_id, low, min(max(seqs), acked_seq)) if low <= acked_seq else {}
    return _Known(db.events_by_ids(ids), by_seq)


def _digest(event: Any) -> str | None:
    """A short fingerprint of a refused event for the anomaly log (the event itself is not kept)."""
    try:
        return hashlib.sha256(protocol.canonical(event)).hexdigest()
    except (TypeError, ValueError):
        return None


def _forms(event: Any) -> tuple[bytes | None, bytes | None]:
    """The event's canonical bytes without hash and sig (hashed) and whole (sized, then stored),
    each computed once; (None, None) if it has none."""
    try:
        if isinstance(event, dict) and event.keys() == set(protocol.EVENT_FIELDS):
            return protocol.event_forms(event)
        return None, protocol.canonical(event)
    except (TypeError, ValueError, RecursionError):
        return None, None


class _Signers:
    """The keys a batch from `device` may carry events of: its own and, vouched for by it, those of
    the devices it replaced (read only when the batch holds another device's event)."""

    def __init__(
        self, key: protocol.Verifier, device: Device, db: HubDB, events: Any, vouches: Any, vouched: bool
    ) -> None:
        self.own = key
        self.replaced: dict[str, protocol.Verifier] = {}
        if device.replaces and isinstance(events, list):
            if any(isinstance(e, dict) and e.get("device_id") not in (device.id, None) for e in events):
                self.replaced = {d: _verifier(pem) for d, pem in db.replaced_keys(device).items()}
        self.vouches = vouches if isinstance(vouches, dict) else {}
        self.vouched = vouched

    def vouched_for(self, event: dict[str, Any]) -> bool:
        return self.vouched or protocol.check_vouch(
            self.own, event["hash"], self.vouches.get(event["event_id"])
        )


def _judge(
    known: _Known,
    device_id: str,
    signers: _Signers,
    event: Any,
    body: bytes | None,
    raw: bytes | None,
    state: BatchResult,
) -> str | None:
    """None if `event` is the next in the chain or a replay of a stored one; else why it is refused."""
    key = signers.own
    if (
        isinstance(event, dict)
        and isinstance(event.get("device_id"), str)
        and event["device_id"] != device_id
    ):
        replaced = signers.replaced.get(event["device_id"])
        if replaced is None:
            return "event belongs to another device"
        key = replaced
    if raw is None:
        return "malformed event"
    size = len(raw)
    if size > MAX_EVENT_BYTES:
        return f"event of {size:,} bytes: at most {MAX_EVENT_BYTES // 1024} kB"
    problem = protocol.check_event(event, key, body)
    if problem is not None:
        return problem
    if key is not signers.own and not signers.vouched_for(event):
        return f"event of replaced device {event['device_id']} is not vouched for by this device's key"
    seq, ev_id, digest = event["seq"], event["event_id"], event["hash"]
    if seq >= INT64:
        return "malformed sequence number"
    same_id = known.by_id.get(ev_id)
    if same_id is not None:
        if same_id["hash"] == digest:
            return None
        return f"conflicting content: event {ev_id} was already accepted with a different hash"
    if seq in known.by_seq:
        return f"fork: seq {seq} was already accepted with a different hash"
    expected = state.acked_seq + 1
    if seq > expected:
        return f"gap: expected seq {expected}, got {seq}"
    if seq < expected:  # unreachable while every seq up to acked_seq is stored; kept as a guard
        return f"fork: seq {seq} is below the acknowledged {state.acked_seq}"
    if event["prev"] != state.head:
        return f"fork: prev of seq {seq} does not match the hash of seq {state.acked_seq}"
    return None


# A lone surrogate escape ("\ud800") is valid JSON but not text: it could not be stored.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Refused(ValueError):
    """JSON that parses but is refused (a NaN, a huge number, a repeated key)."""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused("a number too large to store")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _Refused(f"a number of {len(text):,} digits")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key means two readers may see two different objects: refused, not "last wins".
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused(f"the key {repeated[:40]!r} appears twice in one object")
    return obj


def _shape(data: Any) -> tuple[int, int, bool]:
    """(levels of nesting, counted up to MAX_JSON_DEPTH + 1; members of all its objects; whether a
    float holds a value no 64-bit integer does) of parsed JSON. Walked level by level, without
    recursion: a batch is ~5 levels, so this is a few passes over its containers."""
    level = [data] if type(data) is dict or type(data) is list else []
    huge = type(data) is float and not -INT64 < data < INT64
    members = depth = 0
    while level and depth <= MAX_JSON_DEPTH:
        depth += 1
        below: list[Any] = []
        for node in level:
            if type(node) is dict:
                members += len(node)
            for value in node.values() if type(node) is dict else node:
                kind = type(value)
                if kind is dict or kind is list:
                    below.append(value)
                elif kind is float and not -INT64 < value < INT64:
                    huge = True
        level = below
    return depth, members, huge


def parse_json(raw: bytes, what: str) -> Any:
    """The JSON in `raw`. Raises HubError 400 for anything but UTF-8 JSON of plain text, finite
    numbers of at most MAX_NUMBER_DIGITS digits, unique keys and at most MAX_JSON_DEPTH levels.

    orjson parses first (a quarter of the strict parser's CPU, on every batch); its result is
    returned only when it is provably the strict parser's (`_same_as_strict`). Anything else,
    refused or merely unusual, is parsed again by the strict parser, which decides and words the
    refusal."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _parse_strict(raw, what)
    return data if _same_as_strict(data, raw) else _parse_strict(raw, what)


# A key is its closing quote, then a colon. With JSON whitespace between them, the count below
# misses it: such a body goes to the strict parser.
_KEY_END = b'":'
_SPACED_KEY_END = re.compile(rb'"[ \t\n\r]+:')


def _same_as_strict(data: Any, raw: bytes) -> bool:
    """True when orjson's `data` for `raw` is what `_parse_strict` returns. orjson already refuses
    what the strict parser refuses as text (not UTF-8, a lone surrogate, NaN, a number beyond a
    double); it differs only in that it keeps the last of a repeated key, reads an integer
    beyond 64 bits as a float, and nests up to 1,024 levels. So: at most MAX_JSON_DEPTH levels, no
    float a 64-bit integer could be (an integer read as a float, or a float the strict parser also
    reads as one: sent there to be sure), and as many keys in the text as in the objects. Every
    key ends with `":` in the text, unless spaced (such a body is sent to the strict parser); a
    `":` inside a string only adds to the count, so equal counts mean no key was repeated."""
    depth, members, huge = _shape(data)
    return (
        depth <= MAX_JSON_DEPTH
        and not huge
        and members == raw.count(_KEY_END)
        and not _SPACED_KEY_END.search(raw)
    )


def _parse_strict(raw: bytes, what: str) -> Any:
    """`parse_json` by the standard library, each number and object checked as it is read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HubError(f"{what} is not JSON (not UTF-8 text)", 400) from err
    try:
        data = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except _Refused as err:
        raise HubError(f"{what} is refused: {err}", 400) from err
    except RecursionError as err:
        raise HubError(f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)", 400) from err
    except ValueError as err:
        raise HubError(f"{what} is not JSON", 400) from err
    if _shape(data)[0] > MAX_JSON_DEPTH:
        raise HubError(f"{what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)", 400)
    if _SURROGATE.search(raw):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise HubError(f"{what} holds text that is not valid Unicode", 400) from err
    return data


def idempotency_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# 64 MB is ~20,000 results: a bundle is parsed whole, and parsed JSON takes ~10x its size.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


@dataclass
class ImportResult:
    device_id: str
    site: str
    enrolled: bool
    reply: dict[str, Any]


def import_bundle(db: HubDB, path: Path) -> ImportResult:
    """Import a USB results bundle (`*.etres`): check it, enroll its device if it carries a valid
    token and is not enrolled yet, then ingest its events exactly as the API does.

    Everything happens in one transaction, so a refused bundle writes nothing. Raises HubError
    when the file is not a bundle, its signature does not verify with the device key, or the
    device is unknown (without a token), revoked, or the token is refused.
    """
    try:
        if not path.is_file():
            raise HubError(f"{path} is not a results bundle file")
        with path.open("rb") as f:
            raw = f.read(MAX_BUNDLE_BYTES + 1)
        if len(raw) > MAX_BUNDLE_BYTES:
            raise HubError(f"{path.name} is too large to be a results bundle")
    except OSError as err:
        raise HubError(f"cannot read {path}: {err.strerror or err}") from err
    bundle = parse_json(raw, f"{path.name} (a results bundle)")
    if (
        not isinstance(bundle, dict)
        or bundle.get("kind") != protocol.BUNDLE_KIND
        or not isinstance(bundle.get("device_id"), str)
        or not 0 < len(bundle["device_id"]) <= 64
        or not isinstance(bundle.get("public_key"), str)
        or len(bundle["public_key"]) > MAX_KEY_CHARS
        or not isinstance(bundle.get("events"), list)
    ):
        raise HubError(f"{path.name} is not an EdgeTutor results bundle")
    version = bundle.get("v")
    if version != protocol.PROTOCOL_VERSION or isinstance(version, bool):
        shown = repr(version)[:40] if isinstance(version, str | int | float) or version is None else "?"
        raise HubError(f"{path.name}: unsupported bundle version {shown}")
    device_id: str = bundle["device_id"]
    with db.write():
        device = db.device(device_id, lock=True)
        enrolled = False
        if device is not None:
            if not protocol.check_bundle_sig(bundle, _public_key(device.public_key)):
                raise HubError(
                    f"{path.name}: bundle signature does not verify with the key enrolled for device "
                    f"{device_id} (altered, or not from that device)"
                )
        else:
            try:
                key = _public_key(bundle["public_key"])
            except KeyFileError as err:
                raise HubError(f"{path.name}: the bundle's public key is not an Ed25519 PEM key") from err
            if not protocol.check_bundle_sig(bundle, key):
                raise HubError(f"{path.name}: bundle signature does not verify (altered after export)")
            token = _part(bundle, "enroll").get("token")
            continues = _part(bundle, "enroll").get("continues")
            if not isinstance(token, str) or not token:
                raise HubError(
                    f"device {device_id} is not enrolled and {path.name} carries no enrollment token"
                )
            # The bundle signature covers the token and the device id: it stands for the proof.
            device = enroll(
                db,
                token=token,
                device_id=device_id,
                public_key=bundle["public_key"],
                label=None,
                proof=None,
                via="usb",
                continues=continues,
            )
            enrolled = True
        reply = _ingest_all(db, device_id, bundle["events"])
    return ImportResult(device_id, device.site, enrolled, reply)


def _ingest_all(db: HubDB, device_id: str, events: list[Any]) -> dict[str, Any]:
    """A bundle may hold more events than one API batch: ingest them MAX_BATCH at a time inside
    the caller's transaction, stopping where the chain stops, and merge the replies."""
    total: dict[str, Any] = {}
    for start in range(0, max(len(events), 1), MAX_BATCH):
        # The bundle's signature, checked by the caller, vouches for every event in it.
        reply = ingest(db, device_id, events[start : start + MAX_BATCH], via="usb", vouched=True)
        if not total:
            total = reply
        else:
            total.update(
                acked_seq=reply["acked_seq"],
                head=reply["head"],
                accepted=total["accepted"] + reply["accepted"],
                replayed=total["replayed"] + reply["replayed"],
                rejected=total["rejected"] + reply["rejected"],
            )
        if any(r["seq"] is None or r["seq"] > reply["acked_seq"] for r in reply["rejected"]):
            for event in events[start + MAX_BATCH :]:
                seq = _typed(event.get("seq"), int) if isinstance(event, dict) else None
                ev_id = event.get("event_id") if isinstance(event, dict) else None
                total["rejected"].append(
                    {
                        "event_id": ev_id[:64] if isinstance(ev_id, str) else None,
                        "seq": seq,
                        "reason": NOT_PROCESSED,
                    }
                )
            break
    return total
