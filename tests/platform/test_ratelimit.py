"""The failure limiter on a real Redis: per key, overall, windows, and failing safe."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from tipline.platform.ratelimit import (
    PREFIX,
    FailureLimiter,
    LimiterUnavailable,
    Limits,
    RateLimited,
)
from tipline.platform.services import services


@pytest.fixture
def conn(app: Flask) -> redis.Redis:
    """This run's Redis db, emptied for the test by the app fixture."""
    return services(app).redis


@pytest.fixture
def dead_redis() -> Iterator[redis.Redis]:
    """A client for a port nothing listens on, made the way the app makes its own."""
    conn = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    yield conn
    conn.close()


def test_a_key_is_refused_once_it_reaches_its_limit(conn: redis.Redis) -> None:
    limiter = FailureLimiter(conn, "overall", Limits(per_key=3, overall=100, window_s=60))
    for _ in range(3):
        limiter.check("key-a")
        limiter.record_failure("key-a")
    assert limiter.failures("key-a") == 3
    with pytest.raises(RateLimited) as refused:
        limiter.check("key-a")
    assert 0 < refused.value.retry_after <= 60
    limiter.check("key-b")  # another key is not affected


def test_the_overall_cap_refuses_every_key(conn: redis.Redis) -> None:
    limiter = FailureLimiter(conn, "overall", Limits(per_key=5, overall=4, window_s=60))
    for i in range(4):
        limiter.record_failure(f"guess-{i}")
    for key in ("guess-0", "never-tried"):
        with pytest.raises(RateLimited):
            limiter.check(key)


def test_without_an_overall_key_only_the_key_counts(conn: redis.Redis) -> None:
    limiter = FailureLimiter(conn, None, Limits(per_key=2, overall=3, window_s=60))
    for i in range(50):
        limiter.record_failure(f"guess-{i}")
    limiter.check("never-tried")
    assert sorted(conn.scan_iter())[0] == (PREFIX + "guess-0").encode()
    assert len(list(conn.scan_iter())) == 50
    limiter.record_failure("guess-0")
    with pytest.raises(RateLimited):
        limiter.check("guess-0")


def test_counts_expire_with_their_window(conn: redis.Redis) -> None:
    limiter = FailureLimiter(conn, "overall", Limits(per_key=1, overall=10, window_s=1))
    limiter.record_failure("key-a")
    with pytest.raises(RateLimited):
        limiter.check("key-a")
    assert 0 < conn.ttl(PREFIX + "key-a") <= 1
    time.sleep(1.2)
    limiter.check("key-a")
    assert limiter.failures("key-a") == 0


def test_the_window_starts_at_the_first_failure_and_is_not_extended(conn: redis.Redis) -> None:
    limiter = FailureLimiter(conn, "overall", Limits(per_key=5, overall=10, window_s=60))
    limiter.record_failure("key-a")
    conn.expire(PREFIX + "key-a", 30)
    limiter.record_failure("key-a")
    assert conn.ttl(PREFIX + "key-a") <= 30  # later failures do not push the end out
    assert limiter.failures("key-a") == 2


def test_keys_are_only_what_the_caller_gave(conn: redis.Redis) -> None:
    limiter = FailureLimiter(conn, "all-hash", Limits())
    limiter.record_failure("hash-of-code")
    assert sorted(conn.scan_iter()) == [
        (PREFIX + "all-hash").encode(),
        (PREFIX + "hash-of-code").encode(),
    ]


def test_redis_down_fails_safe(dead_redis: redis.Redis) -> None:
    limiter = FailureLimiter(dead_redis, "overall")
    with pytest.raises(LimiterUnavailable):
        limiter.check("key-a")
    with pytest.raises(LimiterUnavailable):
        limiter.record_failure("key-a")
    with pytest.raises(LimiterUnavailable):
        limiter.failures("key-a")
