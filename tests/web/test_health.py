"""Monitoring endpoints."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from tipline.db import utcnow
from tipline.extensions import db
from tipline.platform import lease
from tipline.platform.sweeper import LEASE_NAME as SWEEPER_LEASE


def test_livez_answers_ok(client: FlaskClient) -> None:
    assert client.get("/livez").status_code == 200


def test_healthz_reports_worker_down_without_a_sweeper_heartbeat(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json() == {"db": "ok", "redis": "ok", "worker": "down", "spool": 0}


def test_healthz_is_ok_with_a_fresh_heartbeat(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        assert lease.acquire(db.session, SWEEPER_LEASE, "w1", utcnow(), timedelta(seconds=15))
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"db": "ok", "redis": "ok", "worker": "ok", "spool": 0}


def test_healthz_reports_a_stale_heartbeat_as_down(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        old = utcnow() - timedelta(minutes=5)
        assert lease.acquire(db.session, SWEEPER_LEASE, "w1", old, timedelta(seconds=15))
    assert client.get("/healthz").get_json()["worker"] == "down"
