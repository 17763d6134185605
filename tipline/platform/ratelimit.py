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
    """Counts failed attempts per key, and optionally across all keys, in windows opened by a
    first failure.

    The counters are checked before an attempt is verified, so once a key is over its limit
    even the right secret is refused until the window ends: a guesser learns nothing by
    continuing. An overall cap (`overall_key` given) bounds guessing spread across many keys,
    but anyone can fill it with junk and so lock out everyone: leave it out (None) where each
    key guards a secret too large to guess, as a receipt's 77-bit passphrase is. Check and
    count are separate steps, so parallel requests can overshoot by the server's concurrency:
    a few guesses more per window, in exchange for not counting successful opens.
    """

    def __init__(
        self, conn: redis.Redis, overall_key: str | None, limits: Limits | None = None
    ) -> None:
        self.conn = conn
        self.limits = limits or Limits()
        self._overall = PREFIX + overall_key if overall_key is not None else None

    def check(self, key: str) -> None:
        """Raise RateLimited when `key` or the overall count (if kept) is at its limit."""
        names = [PREFIX + key] if self._overall is None else [PREFIX + key, self._overall]
        caps = [self.limits.per_key, self.limits.overall]
        try:
            pipe = self.conn.pipeline(transaction=False)
            for name in names:
                pipe.get(name)
                pipe.ttl(name)
            replies = pipe.execute()
        except (RedisError, OSError) as e:
            raise LimiterUnavailable(type(e).__name__) from e
        waits = [
            _wait(ttl, self.limits.window_s)
            for count, ttl, cap in zip(replies[::2], replies[1::2], caps, strict=False)
            if int(count or 0) >= cap
        ]
        if waits:
            raise RateLimited(max(waits))

    def record_failure(self, key: str) -> None:
        """Count one failure for `key` (and overall); each window starts at its first failure."""
        window = self.limits.window_s
        names = [PREFIX + key] if self._overall is None else [PREFIX + key, self._overall]
        try:
            pipe = self.conn.pipeline(transaction=True)
            for name in names:
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
