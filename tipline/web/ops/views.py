"""`/livez` and `/healthz`."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify
from sqlalchemy import select, text

from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import WorkerLease
from tipline.platform.services import services

bp = Blueprint("ops", __name__)

SWEEPER_LEASE = "sweeper"
HEARTBEAT_FRESH = timedelta(seconds=30)


@bp.get("/livez")
def livez() -> Response:
    """This process can take tips: it answers, even with Redis down."""
    return jsonify(status="ok")


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Database, Redis and the worker's sweeper heartbeat, each "ok" or "down"."""
    state = {"db": "down", "redis": "down", "worker": "down"}
    try:
        db.session.execute(text("SELECT 1"))
        state["db"] = "ok"
        lease = db.session.scalars(
            select(WorkerLease).where(WorkerLease.name == SWEEPER_LEASE)
        ).first()
        if lease is not None and utcnow() - lease.heartbeat_at < HEARTBEAT_FRESH:
            state["worker"] = "ok"
    except Exception:
        db.session.rollback()
    try:
        if services().redis.ping():
            state["redis"] = "ok"
    except Exception:  # noqa: S110 - Redis unreachable is exactly what this reports
        pass
    ok = all(v == "ok" for v in state.values())
    return jsonify(state), 200 if ok else 503
