"""`/livez`, `/healthz` and `/metrics`."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.platform import metrics as tipline_metrics
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
    state = {"db": "down", "redis": "down", "worker": "down"}  # "spool": a count, added last
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
    # Texts this host took while the database was down and has not stored yet.
    return jsonify({**state, "spool": services().spool.size()}), 200 if ok else 503


LOOPBACK = frozenset({"127.0.0.1", "::1"})
PROXIED = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: the bearer token when one is set, else loopback callers only.

    A request a reverse proxy on this host passed on also comes from loopback: without a
    token, one that carries a proxy's forwarding header is refused too.
    """
    token = services().settings.metrics_token
    if token is None:
        if request.remote_addr not in LOOPBACK or any(h in request.headers for h in PROXIED):
            abort(403)
    else:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return Response(
                "bearer token required\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
                mimetype="text/plain",
            )
    body = tipline_metrics.exposition(dbsession(), services(), utcnow())
    return Response(body, content_type=CONTENT_TYPE_LATEST)
