"""The sync client: enroll with a hub, send pending result events, pull published packs.

Only the standard library speaks HTTP here (urllib), so a device needs nothing beyond EdgeTutor.

One `sync()` (see docs/sync.md for the full story):
1. seal any scored attempt still without an event (results from before the upgrade);
2. enroll if this device is not enrolled yet (with the coordinator's token, kept until it works);
3. ask the hub which of this device's events it holds (`GET .../ack`) and mark those sent;
   later ones become pending again if the hub has fewer than we thought (a restored hub);
4. send the pending events in batches, each with an Idempotency-Key; mark an event sent only
   when a reply acknowledges its seq. Transient failures (no connection, reset, timeout, 5xx,
   429) are retried with exponential backoff and jitter, at most `tries` times per request;
5. download and install (through the same verification as a USB install) every published pack
   that is missing here or newer than the installed version.

Nothing is ever marked sent without a hub acknowledgement, so a sync that dies at any moment
(power cut, SIGKILL, dropped connection) is finished by the next one without duplicates: the hub
keeps each event once (by event id and seq) and answers a repeated batch from its stored reply.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import http.client
import json
import os
import random
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from filelock import FileLock, Timeout

from .. import paths
from ..errors import EdgeTutorError, SyncError
from ..packs.install import PackStore, unexpected
from . import protocol
from .device import device_dir, install_next_key, key_id_of, key_path, make_next_key
from .seal import EventSealer, sealed_key

if TYPE_CHECKING:
    from ..store.db import Store

TRIES = 4
BASE_DELAY = 0.5  # seconds before the 2nd try; then doubled each time, times a 0.5-1.5 jitter
TIMEOUT = 30.0  # seconds per request (a batch of 200 events is ~400 kB)
BATCH_SIZE = 200
MAX_PACK_BYTES = 1 << 30
# A hub's JSON replies are a few kB (an acknowledgement, a pack list): far more is not a reply.
MAX_REPLY_BYTES = 16 * 1024 * 1024
_CHUNK = 1 << 16


@dataclass(frozen=True)
class SyncStatus:
    pending: int
    last_sync: dt.datetime | None
    hub: str | None
    enrolled: bool
    last_error: str | None


@dataclass
class SyncReport:
    hub: str
    sent: int = 0
    pending: int = 0
    acked_seq: int = 0
    enrolled_now: bool = False
    site: str | None = None
    packs: list[str] = field(default_factory=list)  # "installed demo v2 (13 cases)"
    pack_errors: list[str] = field(default_factory=list)  # one line per refused or failed pack

    def summary(self) -> str:
        return f"sent {_results(self.sent)}; {self.pending} pending; hub acknowledged up to #{self.acked_seq}"


def _results(n: int) -> str:
    return f"{n} result{'s' if n != 1 else ''}"


class _Transient(Exception):
    """A failure worth retrying: no connection, reset, timeout, 5xx, 429."""


class _Refused(Exception):
    """The hub answered with a definite refusal (4xx) and its reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status(store: Store) -> SyncStatus:
    """What the app shows: pending results, last sync, hub, enrollment, last error. Reads only."""
    state = store.sync_state()
    return SyncStatus(
        pending=store.pending_count(),
        last_sync=state.last_sync,
        hub=state.hub_url,
        enrolled=state.enrolled,
        last_error=state.last_error,
    )


def probe(hub_url: str, timeout: float = 1.0) -> bool:
    """True if an EdgeTutor hub answers `GET /api/v1/ping` at `hub_url` within `timeout`. Never raises."""
    try:
        reply = _request("GET", _url(normalise_url(hub_url), "/ping"), timeout=timeout)
        return isinstance(reply, dict) and reply.get("hub") == "edgetutor"
    except Exception:  # noqa: BLE001 - a probe reports "not reachable" for any failure at all
        return False


def normalise_url(url: str) -> str:
    """`http://host:port` without a trailing slash. Raises SyncError if it is not an http(s) URL."""
    text = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SyncError(f"hub address {url!r} is not an http:// or https:// URL")
    return text


def _url(hub: str, path: str) -> str:
    return f"{hub}{protocol.API}{path}"


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        err = err.reason if isinstance(err.reason, BaseException) else err
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, http.client.RemoteDisconnected | ConnectionResetError | http.client.IncompleteRead):
        return "connection closed before the reply"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower() if err.strerror[:1].isupper() else err.strerror
    return str(err) or type(err).__name__


def _opener() -> urllib.request.OpenerDirector:
    # The hub is on the clinic's network: environment proxies (meant for the internet) would
    # route loopback and LAN addresses away from it.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Any:
    """One JSON request. Raises _Transient, _Refused, or SyncError (a reply that is not JSON)."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _opener().open(req, timeout=timeout) as resp:
            raw = resp.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as err:
        try:
            detail = _short(json.loads(err.read(64 * 1024) or b"{}").get("error") or err.reason)
        except (ValueError, AttributeError, OSError, RecursionError, http.client.HTTPException):
            detail = _short(err.reason)
        if err.code >= 500 or err.code in (408, 429):
            raise _Transient(f"the hub answered {err.code} ({detail})") from err
        raise _Refused(err.code, str(detail)) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Transient(_reason(err)) from err
    if len(raw) > MAX_REPLY_BYTES:
        raise SyncError(
            f"{url} sent a reply larger than {MAX_REPLY_BYTES // (1024 * 1024)} MB: is it an EdgeTutor hub?"
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise SyncError(f"{url} did not answer with JSON: is it an EdgeTutor hub?") from err


def _short(value: Any, limit: int = 200) -> str:
    """A value from a hub reply as a short string; anything but text is named by its type only
    (turning a deep structure into text could itself fail)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 3] + "..."
    if value is None or isinstance(value, bool | int | float):
        return _short(str(value), limit)
    return f"({type(value).__name__})"


@dataclass
class _Retry:
    tries: int
    base_delay: float
    sleep: Callable[[float], None]

    def call(self, what: Callable[[], Any], on_failure: Callable[[str], None] | None = None) -> Any:
        """`what()`, retried on _Transient up to `tries` times with backoff and jitter."""
        for attempt in range(1, self.tries + 1):
            try:
                return what()
            except _Transient as err:
                if on_failure is not None:
                    on_failure(str(err))
                if attempt == self.tries:
                    raise
                self.sleep(self.base_delay * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")


@contextlib.contextmanager
def _sync_lock(folder: Path) -> Iterator[None]:
    """One sync at a time per device (the app and the CLI may both try)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / "sync.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout as err:
        raise SyncError("another sync is already running on this device") from err
    try:
        yield
    finally:
        lock.release()


def _key_dir(store: Store) -> Path:
    """The folder of the key that signs this database's results (its lock lives there too)."""
    sealer = store.sealer
    return (sealer.key_dir if isinstance(sealer, EventSealer) else None) or device_dir()


def idempotency_key(device_id: str, events: list[dict[str, Any]]) -> str:
    """The same batch always gets the same key, so a resent batch is answered from the hub's record."""
    first, last = events[0]["seq"], events[-1]["seq"]
    text = f"{device_id}:{first}-{last}:" + ",".join(e["hash"] for e in events)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def new_key(store: Store, token: str) -> tuple[str | None, str]:
    """Give this device a new key for the token the coordinator issued with `hub rotate`.

    The new key carries on this device's chain: it is enrolled (at the next sync, or with the
    next USB bundle) as continuing the old device, and results the old key signed that the hub
    has not acknowledged are sent vouched for by the new key. Works when the old key is lost or
    corrupt too. Returns (old device id or None, new device id). Raises SyncError, with nothing
    changed, for an empty token or one this device already made a new key for.
    """
    token = token.strip()
    if not token:
        raise SyncError("a new key needs the enrollment token from `hub rotate`: --token TOKEN")
    marker = hashlib.sha256(token.encode("utf-8")).hexdigest()
    folder = _key_dir(store)
    with _sync_lock(folder):
        state = store.sync_state()
        if state.rotated_with == marker:
            raise SyncError(
                "this device already has a new key for that token: run `edgetutor sync` to enroll it"
                " (or `edgetutor results export` for a USB stick)"
            )
        # No result signed yet: the identity to carry on, if any, is the key on disk.
        old = state.device_id or key_id_of(key_path(folder))
        key = make_next_key(folder)
        # The database is bound to the new key before the key file changes: a stop between the
        # two is finished by the next load_or_create (the key files, not the results, move).
        store.update_sync_state(
            device_id=key.device_id,
            continues=old,
            enrolled=0,
            site=None,
            enroll_token=token,
            rotated_with=marker,
        )
        install_next_key(folder)
    return old, key.device_id


def sync(
    store: Store,
    hub_url: str | None = None,
    token: str | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    tries: int = TRIES,
    base_delay: float = BASE_DELAY,
    timeout: float = TIMEOUT,
    pull: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport:
    """Enroll if needed, send every pending result, pull newer packs; return what happened.

    `hub_url`/`token` are remembered (the token until an enrollment succeeds). `on_progress(sent,
    to_send)` is called after each acknowledged batch. Raises SyncError (one line; nothing is
    marked sent that the hub did not acknowledge) or KeyFileError (unusable device key).
    """
    if batch_size < 1 or tries < 1:
        raise SyncError("batch size and tries must be at least 1")
    with _sync_lock(_key_dir(store)):
        try:
            report = _sync(
                store, hub_url, token, batch_size, _Retry(tries, base_delay, sleep), timeout, on_progress
            )
        except EdgeTutorError as err:
            # Kept for `results list` and the app's status line until a sync succeeds.
            store.update_sync_state(last_error=str(err))
            raise
        if pull:
            try:
                pull_packs(report.hub, _Retry(tries, base_delay, sleep), timeout, report)
            except Exception as err:  # noqa: BLE001 - results are sent: a pack problem must not undo that
                report.pack_errors.append(
                    f"could not update packs ({type(err).__name__}: {_short(str(err))})"
                )
        store.update_sync_state(last_sync=dt.datetime.now(dt.UTC), last_error=None)
        return report


def _sync(
    store: Store,
    hub_url: str | None,
    token: str | None,
    batch_size: int,
    retry: _Retry,
    timeout: float,
    on_progress: Callable[[int, int], None] | None,
) -> SyncReport:
    key = sealed_key(store)
    state = store.sync_state()
    hub = normalise_url(hub_url) if hub_url else state.hub_url
    if hub is None:
        raise SyncError(
            "no hub address yet: run `edgetutor sync --hub URL --token TOKEN` (from your coordinator)"
        )
    token = token.strip() if token else None
    # A token given to an enrolled device only matters with a new hub (a move); else ignored.
    enroll = not state.enrolled or (token is not None and hub != state.hub_url)
    changes: dict[str, Any] = {}
    if hub != state.hub_url:
        changes["hub_url"] = hub
    if token and enroll:
        # Until this enrollment succeeds the device counts as not enrolled (at the new hub).
        changes.update(enroll_token=token, enrolled=0, site=None)
    if changes:  # remembered before any network use: a hub that is down keeps the token
        store.update_sync_state(**changes)
    session = _Session(store, key, hub, retry, timeout)
    return session.run(enroll=enroll, batch_size=batch_size, on_progress=on_progress)


class _Session:
    def __init__(self, store: Store, key: Any, hub: str, retry: _Retry, timeout: float) -> None:
        self.store, self.key, self.hub, self.retry, self.timeout = store, key, hub, retry, timeout

    def _fail(self, what: str, err: BaseException) -> NoReturn:
        kept = f"{_results(self.store.pending_count())} kept for the next sync"
        if isinstance(err, _Transient):
            raise SyncError(
                f"cannot reach the hub at {self.hub} ({what}): {err} after {self.retry.tries} "
                f"tr{'ies' if self.retry.tries != 1 else 'y'}; {kept}"
            ) from err
        assert isinstance(err, _Refused)
        hint = ""
        if err.status == 401:
            hint = " (ask the coordinator for an enrollment token, then `edgetutor sync --token TOKEN`)"
        raise SyncError(f"the hub refused {what}: {err}{hint}; {kept}") from err

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        url = _url(self.hub, path)
        try:
            reply = self.retry.call(lambda: _request(method, url, body, headers, self.timeout), on_failure)
        except (_Transient, _Refused) as err:
            self._fail(what, err)
        if not isinstance(reply, dict):
            raise SyncError(f"the hub sent an unexpected reply to {what}")
        return reply

    def _check_head(self, acked: Any, head: Any) -> int:
        if not isinstance(acked, int) or isinstance(acked, bool) or acked < 0:
            raise SyncError("the hub sent an unexpected acknowledgement")
        last = self.store.last_seq()
        if acked > last:
            raise SyncError(
                f"the hub holds results of this device up to #{acked}, but this device has only #{last}:"
                " was its database restored from an old copy? Nothing was sent"
            )
        if acked > 0 and isinstance(head, str) and head != self.store.event_hash(acked):
            raise SyncError(
                f"the hub holds a different result #{acked} for this device (fork); nothing was sent:"
                " tell the coordinator"
            )
        return acked

    def _batch(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The request for `events`: those a replaced key of this device signed are vouched for."""
        device_id = self.key.device_id
        body: dict[str, Any] = {"device_id": device_id, "events": events}
        vouch = {
            e["event_id"]: protocol.vouch(self.key.private, e["hash"])
            for e in events
            if e["device_id"] != device_id
        }
        if vouch:
            body["vouch"] = vouch
        return body

    def run(
        self, *, enroll: bool, batch_size: int, on_progress: Callable[[int, int], None] | None
    ) -> SyncReport:
        store, device_id = self.store, self.key.device_id
        report = SyncReport(self.hub)
        if enroll:
            state = store.sync_state()
            token = state.enroll_token
            if not token:
                raise SyncError(
                    "this device is not enrolled with a hub: run `edgetutor sync --hub URL --token TOKEN`"
                    " with the token from your coordinator"
                )
            reply = self._call(
                "the enrollment",
                "POST",
                "/enroll",
                {
                    "token": token,
                    "device_id": device_id,
                    "public_key": self.key.public_pem,
                    "label": socket.gethostname(),
                    "proof": protocol.enroll_proof(self.key.private, token, device_id),
                }
                | ({"continues": state.continues} if state.continues else {}),
            )
            if reply.get("device_id") != device_id:
                raise SyncError("the hub enrolled another device id than this device's")
            site = reply.get("site") if isinstance(reply.get("site"), str) else None
            store.update_sync_state(enrolled=1, site=site, enroll_token=None)
            report.enrolled_now, report.site = True, site
        ack = self._call("the acknowledgement query", "GET", f"/devices/{device_id}/ack")
        if ack.get("revoked"):
            raise SyncError(
                f"this device ({device_id}) is revoked at the hub; {_results(store.pending_count())} kept"
                " (ask the coordinator)"
            )
        acked = self._check_head(ack.get("acked_seq"), ack.get("head"))
        # Results the hub already holds (sent by a sync that never heard the answer, or carried
        # on a USB stick) count as sent now.
        report.sent, _ = store.set_acked(acked)
        to_send, done = store.pending_count(), 0
        while True:
            batch = store.events(after=acked, limit=batch_size, pending=True)
            if not batch:
                break
            first, last = batch[0]["seq"], batch[-1]["seq"]
            reply = self._call(
                f"results #{first}-#{last}",
                "POST",
                "/events",
                self._batch(batch),
                headers={"Idempotency-Key": idempotency_key(device_id, batch)},
                on_failure=functools.partial(store.note_send_failure, first, last),
            )
            new_acked = self._check_head(reply.get("acked_seq"), reply.get("head"))
            sent, _ = store.set_acked(new_acked)
            report.sent += sent
            done += sent
            rejected = [r for r in reply.get("rejected") or [] if isinstance(r, dict)]
            if rejected:
                bad = rejected[0]
                why = (
                    f"the hub rejected result #{_short(bad.get('seq'))} (event {_short(bad.get('event_id'))}): "
                    f"{_short(bad.get('reason'))}"
                )
                store.note_send_failure(first, last, why)
                raise SyncError(f"{why}; {_results(store.pending_count())} kept")
            if new_acked <= acked:
                raise SyncError(f"the hub did not acknowledge results #{first}-#{last}")
            acked = new_acked
            if on_progress is not None:
                on_progress(done, to_send)
        report.acked_seq, report.pending = acked, store.pending_count()
        return report


def pull_packs(hub: str, retry: _Retry, timeout: float, report: SyncReport) -> None:
    """Install each published pack that is missing here or newer than the installed one.

    Every pack goes through `PackStore.install` (signature by a trusted publisher, file hashes,
    rollback rule), exactly as from a USB stick; a refused pack is reported and the rest go on.
    """
    try:
        listing = retry.call(lambda: _request("GET", _url(hub, "/packs"), timeout=timeout))
    except (_Transient, _Refused, SyncError) as err:
        report.pack_errors.append(f"could not list the hub's packs: {err}")
        return
    offered = listing.get("packs") if isinstance(listing, dict) else None
    if not isinstance(offered, list):
        report.pack_errors.append("the hub's pack list is malformed")
        return
    packs = PackStore()
    for item in offered:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("pack_id", "url")):
            report.pack_errors.append("the hub listed a malformed pack entry")
            continue
        pack_id, version = _short(item["pack_id"], 80), item.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**63:
            report.pack_errors.append(f"the hub listed pack {pack_id} without a version")
            continue
        try:
            installed = packs.get(pack_id)
        except EdgeTutorError as err:
            report.pack_errors.append(str(err))
            return
        if installed is not None and installed.version >= version:
            continue
        folder = paths.home()
        folder.mkdir(parents=True, exist_ok=True)
        # Downloaded next to the packs (same disk), never to /tmp, which may be a small RAM disk.
        with tempfile.TemporaryDirectory(prefix=".pack-download-", dir=folder) as tmp:
            # A fixed name: the hub's pack id is not trusted as part of a path.
            target = Path(tmp) / "download.etpack"
            try:
                url = urllib.parse.urljoin(hub + "/", item["url"])
                elsewhere = urllib.parse.urlsplit(url)[:2] != urllib.parse.urlsplit(hub)[:2]
            except ValueError:
                elsewhere = True
            if elsewhere:
                # Only from the hub itself: never a local file (file://) or another host.
                report.pack_errors.append(f"pack {pack_id} v{version}: the hub listed a download elsewhere")
                continue
            try:
                retry.call(functools.partial(_download, url, target, item, timeout))
            except (_Transient, _Refused, SyncError) as err:
                report.pack_errors.append(f"pack {pack_id} v{version}: download failed: {err}")
                continue
            try:
                result = packs.install(target)
            except EdgeTutorError as err:
                report.pack_errors.append(f"pack {pack_id} v{version} refused: {err}")
                continue
            except Exception as err:  # noqa: BLE001 - one bad pack must not stop the others or the sync
                report.pack_errors.append(f"pack {pack_id} v{version} refused: {unexpected(target, err)}")
                continue
        cases = f"{result.cases} case{'s' if result.cases != 1 else ''}"
        report.packs.append(f"{result.status} pack {result.pack_id} v{result.version} ({cases})")
        for warning in result.warnings:
            report.packs.append(f"warning: {warning}")


def _download(url: str, target: Path, item: dict[str, Any], timeout: float) -> None:
    """Stream one pack file to `target`, checking its size and sha256 against the hub's listing."""
    size = item.get("size") if isinstance(item.get("size"), int) else None
    limit = min(size, MAX_PACK_BYTES) if size is not None else MAX_PACK_BYTES
    digest = hashlib.sha256()
    got = 0
    try:
        with _opener().open(urllib.request.Request(url), timeout=timeout) as resp, target.open("wb") as out:
            while chunk := resp.read(_CHUNK):
                got += len(chunk)
                if got > limit:
                    raise SyncError(f"the file is larger than the {limit} bytes listed")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code in (408, 429):
            raise _Transient(f"the hub answered {err.code}") from err
        raise _Refused(err.code, f"the hub answered {err.code}") from err
    except (urllib.error.URLError, http.client.HTTPException) as err:
        raise _Transient(_reason(err)) from err
    except OSError as err:
        if isinstance(err, ConnectionError | TimeoutError):
            raise _Transient(_reason(err)) from err
        raise SyncError(f"cannot save the download: {err.strerror or err}") from err
    if size is not None and got != size:
        raise _Transient(f"got {got} of {size} bytes")
    expected = item.get("digest")
    if isinstance(expected, str) and len(expected) == 64 and digest.hexdigest() != expected:
        raise SyncError("the file does not match the sha256 the hub listed")
