"""Faults lose nothing: with Redis stopped the tip is stored, and routed once Redis is back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import sms_params
from tests.support.redisproc import RedisProcess
from tipline.cli.assemble import build_app
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import Tip
from tipline.platform import queueing, sweeper
from tipline.platform.services import QUEUE_NAMES, REDIS_REST, services
from workers.allowlist import JobWorker


@pytest.fixture
def app_on_own_redis(app: Flask, env: dict[str, str], own_redis: RedisProcess) -> Iterator[Flask]:
    """The test's app (database already reset) but with a Redis this test may kill."""
    other = build_app({**env, "TIPLINE_REDIS_URL": own_redis.url}, TESTING=True)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_sms_tip_is_stored_with_redis_stopped_and_routed_when_it_returns(
    app_on_own_redis: Flask, own_redis: RedisProcess
) -> None:
    app = app_on_own_redis
    own_redis.stop()
    resp = app.test_client().post("/sms/inbound", data=sms_params("there is a gun in locker 12"))
    assert resp.status_code == 200
    assert b"T" in resp.data
    with app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        assert tip.needs_routing
        assert tip.routed_at is None
        tip_id = tip.id

    own_redis.start()  # the same socket, empty: every queued job would have been lost anyway
    svc = services(app)
    # A failed hand-off (on SQLite; PostgreSQL hands a first text off by NOTIFY) leaves Redis
    # alone for a moment: the sweeper's pass once that is over.
    later = svc.clock() + REDIS_REST + 1
    svc.clock = lambda: later
    with app.app_context():
        result = sweeper.sweep_once(
            dbsession(),
            "test-sweeper",
            utcnow() + timedelta(seconds=10),
            lambda t, c: queueing.enqueue_route_tip(svc, t, c),
            lambda a: queueing.enqueue_fetch_media(svc, a),
        )
        assert result.held
        assert len(result.tips) == 1
        JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis).work(burst=True)
        db.session.expire_all()
        tip = db.session.get(Tip, tip_id)
        assert tip is not None
        assert not tip.needs_routing
        assert tip.routed_at is not None


def test_livez_stays_up_and_healthz_reports_redis_down(
    app_on_own_redis: Flask, own_redis: RedisProcess
) -> None:
    own_redis.stop()
    client = app_on_own_redis.test_client()
    assert client.get("/livez").status_code == 200
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["redis"] == "down"
    assert resp.get_json()["db"] == "ok"


def test_after_a_failed_hand_off_redis_is_left_alone_for_a_moment(
    app_on_own_redis: Flask, own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A hanging Redis costs each call its socket timeout: after one failure the next
    hand-offs give up at once (the tips stay marked), and Redis is asked again later."""
    svc = services(app_on_own_redis)
    now = [100.0]
    svc.clock = lambda: now[0]
    own_redis.stop()
    pushes: list[str] = []

    def push(tip_id: str) -> None:
        pushes.append(tip_id)
        svc.redis.lpush(queueing.HANDOFF_KEY, tip_id)

    assert not queueing.attempt(svc, lambda: push("a"), "tip a waits")
    assert not queueing.attempt(svc, lambda: push("b"), "tip b waits")
    assert pushes == ["a"]  # the second did not even try
    assert "resting after a failure" in caplog.text
    own_redis.start()
    assert not queueing.attempt(svc, lambda: push("c"), "tip c waits")  # still resting
    now[0] += REDIS_REST + 0.1
    assert queueing.attempt(svc, lambda: push("d"), "tip d waits")
    assert pushes == ["a", "d"]
    assert svc.redis.lrange(queueing.HANDOFF_KEY, 0, -1) == [b"d"]


def test_the_queue_speaks_resp2_whatever_the_client_defaults_to(app: Flask) -> None:
    """redis-py 8 defaults to RESP3, with which one worker paged a burst of critical tips
    seconds late (bench/alerting.py A); the connection says RESP2 outright."""
    conn = services(app).redis
    assert conn.connection_pool.connection_kwargs["protocol"] == 2
    assert conn.ping()
