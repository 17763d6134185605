"""`/livez` and `/healthz`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from tipline.db import utcnow
from tipline.extensions import db
from tipline.platform import sweeper
from tipline.platform.services import services

bp = Blueprint("ops", __name__)


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
        if sweeper.heartbeat_fresh(db.session(), utcnow()):
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
