"""Failure counting in Redis: slows guessing of receipt passphrases, never keyed on an IP.

Keys are opaque strings the caller derives with `vault.lookup_hash(..., "ratelimit", ...)`,
so Redis never holds a receipt code, and nothing about the network a student came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.exceptions import RedisError

PREFIX = "tipline:fail:"


class RateLimited(Exception):
    """Too many failures for this key, or overall, in the current window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after}s")
        self.retry_after = retry_after


class LimiterUnavailable(Exception):
    """Redis cannot be reached: callers refuse the attempt rather than allow unlimited guesses."""


@dataclass(frozen=True)
class Limits:
    per_key: int = 5
    overall: int = 100
    window_s: int = 15 * 60


class FailureLimiter:
    """Counts failed attempts per key and across all keys in windows opened by a first failure.

    Both counters are checked before an attempt is verified, so once a key is over its limit
    even the right secret is refused until the window ends: a guesser learns nothing by
    continuing. The overall cap bounds guessing spread across many codes. Check and count are
    separate steps, so parallel requests can overshoot by the server's concurrency: a few
    guesses more per window against a 77-bit passphrase, in exchange for not counting
    students' successful opens.
    """

    def __init__(self, conn: redis.Redis, overall_key: str, limits: Limits | None = None) -> None:
        self.conn = conn
        self.limits = limits or Limits()
        self._overall = PREFIX + overall_key

    def check(self, key: str) -> None:
        """Raise RateLimited when `key` or the overall count is at its limit."""
        mine = PREFIX + key
        try:
            pipe = self.conn.pipeline(transaction=False)
            pipe.get(mine)
            pipe.get(self._overall)
            pipe.ttl(mine)
            pipe.ttl(self._overall)
            mine_count, all_count, mine_ttl, all_ttl = pipe.execute()
        except (RedisError, OSError) as e:
            raise LimiterUnavailable(type(e).__name__) from e
        waits = []
        if int(mine_count or 0) >= self.limits.per_key:
            waits.append(_wait(mine_ttl, self.limits.window_s))
        if int(all_count or 0) >= self.limits.overall:
            waits.append(_wait(all_ttl, self.limits.window_s))
        if waits:
            raise RateLimited(max(waits))

    def record_failure(self, key: str) -> None:
        """Count one failure for `key` and overall; each window starts at its first failure."""
        window = self.limits.window_s
        try:
            pipe = self.conn.pipeline(transaction=True)
            for name in (PREFIX + key, self._overall):
                pipe.set(name, 0, ex=window, nx=True)
                pipe.incr(name)
            pipe.execute()
        except (RedisError, OSError) as e:
            raise LimiterUnavailable(type(e).__name__) from e

    def failures(self, key: str) -> int:
        """Failures counted for `key` in its current window (for tests and diagnostics)."""
        try:
            return int(self.conn.get(PREFIX + key) or 0)
        except (RedisError, OSError) as e:
            raise LimiterUnavailable(type(e).__name__) from e


def _wait(ttl: int | None, window: int) -> int:
    """Seconds until a window ends; a key without expiry (should not happen) waits a window."""
    return int(ttl) if ttl is not None and int(ttl) > 0 else window
