"""Request limits: token buckets per client address and per device, and the idempotency window.

Each limit answers HTTP 429 with a Retry-After header and a one-line reason; the device client
already treats 429 as transient and backs off with jitter (sync/client.py). The buckets live in
the hub process's memory; with several workers (`hub serve --workers N`) in one table the workers
share (`SharedBuckets`: a file mapped by every worker, under a file lock), so a limit is the
hub's, not N times it. They are a brake on a runaway or hostile client, not a quota.

Defaults (documented in docs/hub.md): per client address 50 requests/s with bursts of 200 (a
clinic behind one NAT address may sync many laptops at once); per device 10 batches/s with bursts
of 20 (a real device sends one batch at a time). Idempotency records are kept 30 days and then
pruned: a batch replayed after that is still answered correctly, because the event chain marks
every event it already holds as a duplicate and stores nothing twice.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..portable import locked
from . import HubError

IDEMPOTENCY_DAYS = 30
PRUNE_EVERY_S = 3600.0


class RateLimited(HubError):
    """A 429: the message says which limit; `retry_after` how many seconds to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, 429)
        self.retry_after = max(1, int(retry_after + 0.999))


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """ "50/s:200" -> Rate(50, 200). Raises ValueError (one line)."""
        try:
            rate, _, burst = text.partition(":")
            per_second = float(rate.removesuffix("/s"))
            size = int(burst) if burst else max(1, int(per_second * 4))
        except ValueError:
            raise ValueError(f"a rate is written like 50/s:200 (got {text[:40]!r})") from None
        if per_second <= 0 or size < 1:
            raise ValueError(f"a rate must be above 0 with a burst of at least 1 (got {text[:40]!r})")
        return cls(per_second, size)


def _refilled(rate: Rate, tokens: float, last: float, now: float) -> float:
    return min(float(rate.burst), tokens + (now - last) * rate.per_second)


def _refusal(rate: Rate, what: str, tokens: float) -> RateLimited:
    wait = (1.0 - tokens) / rate.per_second
    return RateLimited(
        f"too many requests from this {what} (limit {rate.per_second:g}/s): retry in {wait:.1f} s", wait
    )


class Buckets:
    """Token buckets by key (an address, a device id), refilled at `rate`."""

    def __init__(self, rate: Rate, what: str, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.what = what
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        #: when a limit was first hit in this process (for the load benchmark), None if never
        self.first_hit: float | None = None

    def take(self, key: str, now: float | None = None) -> None:
        """Spend one token for `key`. Raises RateLimited if it has none left."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.rate.burst), now))
            tokens = _refilled(self.rate, tokens, last, now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                if self.first_hit is None:
                    self.first_hit = now
                raise _refusal(self.rate, self.what, tokens)
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # a flood of made-up keys must not grow memory without end
            self._buckets[key] = (tokens - 1.0, now)


# One slot of a shared table: the key's 64-bit hash (0: empty), its tokens, its last refill.
_SLOT = struct.Struct("<Qdd")
SHARED_SLOTS = 1 << 15  # ~770 kB per table; a key that finds no slot evicts the stalest nearby
_PROBES = 8


def create_table(path: Path, slots: int = SHARED_SLOTS) -> None:
    """Write an empty shared table for `SharedBuckets` (the serving parent, before its workers)."""
    with path.open("wb") as f:
        f.truncate(slots * _SLOT.size)


class SharedBuckets:
    """`Buckets` kept in a table file that every worker process maps: the same limit whichever
    worker a request reaches. Each take is a few microseconds under a file lock."""

    def __init__(self, rate: Rate, what: str, path: Path) -> None:
        self.rate = rate
        self.what = what
        self._lock = threading.Lock()  # this process's threads; the file lock, other processes
        self._fd = os.open(path, os.O_RDWR)
        size = os.fstat(self._fd).st_size
        self._slots = size // _SLOT.size
        if self._slots < _PROBES:
            os.close(self._fd)
            raise ValueError(f"{path} is not a rate-limit table")
        self._map = mmap.mmap(self._fd, size)
        #: when a limit was first hit in this process (for the load benchmark), None if never
        self.first_hit: float | None = None

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def take(self, key: str, now: float | None = None) -> None:
        """Spend one token for `key`. Raises RateLimited if it has none left."""
        now = time.monotonic() if now is None else now
        digest = int.from_bytes(
            hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest(), "little"
        )
        digest = digest or 1
        burst, per_second = float(self.rate.burst), self.rate.per_second  # for the probe loop
        with self._lock, locked(self._fd):
            start = digest % self._slots
            found = free = None
            stalest, oldest = start, float("inf")
            for i in range(_PROBES):
                slot = (start + i) % self._slots
                held, tokens, last = _SLOT.unpack_from(self._map, slot * _SLOT.size)
                if held == digest:
                    found = slot
                    break
                if free is None and (held == 0 or tokens + (now - last) * per_second >= burst):
                    free = slot  # empty, or a bucket so long unused that it is full again
                if last < oldest:
                    stalest, oldest = slot, last
            if found is not None:
                tokens = _refilled(self.rate, tokens, last, now)
            else:
                found, tokens = (free if free is not None else stalest), burst
            if tokens < 1.0:
                _SLOT.pack_into(self._map, found * _SLOT.size, digest, tokens, now)
                if self.first_hit is None:
                    self.first_hit = now
                raise _refusal(self.rate, self.what, tokens)
            _SLOT.pack_into(self._map, found * _SLOT.size, digest, tokens - 1.0, now)
