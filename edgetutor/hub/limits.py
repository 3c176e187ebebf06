"""Request limits: token buckets per client address and per device, and the idempotency window.

Each limit answers HTTP 429 with a Retry-After header and a one-line reason; the device client
already treats 429 as transient and backs off with jitter (sync/client.py). The buckets live in
the hub process's memory (one per uvicorn worker), which is what a limit against a runaway or
hostile client needs; they are not a quota.

Defaults (documented in docs/hub.md): per client address 50 requests/s with bursts of 200 (a
clinic behind one NAT address may sync many laptops at once); per device 10 batches/s with bursts
of 20 (a real device sends one batch at a time). Idempotency records are kept 30 days and then
pruned: a batch replayed after that is still answered correctly, because the event chain marks
every event it already holds as a duplicate and stores nothing twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

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
            tokens = min(float(self.rate.burst), tokens + (now - last) * self.rate.per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                if self.first_hit is None:
                    self.first_hit = now
                wait = (1.0 - tokens) / self.rate.per_second
                raise RateLimited(
                    f"too many requests from this {self.what} (limit {self.rate.per_second:g}/s): "
                    f"retry in {wait:.1f} s",
                    wait,
                )
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # a flood of made-up keys must not grow memory without end
            self._buckets[key] = (tokens - 1.0, now)
