"""A per-client token bucket for the public endpoints that cost CPU (verification, timestamps, OCSP are
open to anyone). In-process only: behind several workers each keeps its own budget."""

from __future__ import annotations

import threading
import time

from api.problems import Problem


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, per_minute // 6))
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Spend one token of `client`'s budget or raise 429 problem+json."""
        wait = self.wait(client)
        if wait is not None:
            raise Problem(429, "rate_limited", f"too many requests; retry in {wait:.1f} s", retry_after=round(wait, 1))

    def wait(self, client: str) -> float | None:
        """Spend one token of `client`'s budget: None if there was one, else seconds until there is
        (for protocols that answer a refusal in their own terms, like OCSP's tryLater)."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 600}
            return None
