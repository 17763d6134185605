"""The admin blueprint: login required everywhere but sign-in, and strict response headers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, request, session
from flask.blueprints import BlueprintSetupState
from flask_login import current_user, login_user, logout_user

from tipline.db import utcnow
from tipline.extensions import db, dbsession, login_manager
from tipline.models import Tip, User
from tipline.staff import access, sessions
from tipline.vault import audit

bp = Blueprint("admin", __name__, url_prefix="/admin")

SESSION_KEY = "sid"  # the staff session's random token, inside Flask's signed cookie
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.totp", "admin.enroll"})
# Requests a page's script makes on its own, not a person: they never count as activity (the
# idle timeout would never end a session whose queue is left open), and without a session
# they get a bare 401 instead of a redirect to the sign-in page, which the script cannot show.
PASSIVE_ENDPOINTS = frozenset({"admin.queue_live"})
# No script at all, no third-party origin, no framing: the admin pages are forms and links.
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The queue page alone runs a script: its own file from this origin (no inline script, no
# eval), which may fetch from this origin only.
QUEUE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.record_once
def _configure_login(_state: BlueprintSetupState) -> None:
    login_manager.login_view = "admin.login"
    login_manager.login_message = "Please sign in."
    login_manager.user_loader(load_user)


def load_user(user_id: str) -> User | None:
    """The signed-in login, while its session row is neither revoked, idle nor too old."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not user_id.isdigit():
        return None
    passive = request.endpoint in PASSIVE_ENDPOINTS
    user, touched = sessions.resolve(dbsession(), token, utcnow(), touch=not passive)
    if touched:
        db.session.commit()
    if user is None or user.id != int(user_id):
        return None
    return user


def start_session(user: User, now: datetime) -> None:
    """A fresh session for a fresh login: nothing from before sign-in survives."""
    session.clear()
    token = sessions.start(dbsession(), user, now)
    login_user(user)
    session[SESSION_KEY] = token


def end_session() -> None:
    """Revoke this browser's session row (a copy of the cookie dies with it) and clear it."""
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        if current_user.is_authenticated:  # loaded before the row is revoked
            audit.record(dbsession(), access.actor(staff_user()), "logout")
        sessions.revoke(dbsession(), token, utcnow())
        db.session.commit()
    logout_user()
    session.clear()


def staff_user() -> User:
    """The signed-in User (login is enforced for every admin endpoint before this runs)."""
    user = current_user._get_current_object()
    assert isinstance(user, User)  # noqa: S101 - _require_login guarantees it
    return user


def tip_or_abort(tip_id: str, action: str = "view") -> Tip:
    """The tip for this login and action: 404 when it does not see it, 403 when its role may not."""
    try:
        return access.tip_for(dbsession(), staff_user(), tip_id, action)
    except access.NotFound:
        abort(404)
    except access.NotPermitted:
        abort(403)


@bp.before_request
def _require_login() -> Any:
    """Fail closed: a new admin view is private unless listed in PUBLIC_ENDPOINTS."""
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        return None
    if request.endpoint in PASSIVE_ENDPOINTS:
        return Response(status=401)
    return login_manager.unauthorized()


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers.setdefault("Content-Security-Policy", CSP)  # a download sets a stricter one
    response.vary.add("Cookie")
    return response
