"""Sign-in (password, then TOTP when enrolled) and sign-out."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.platform.ratelimit import FailureLimiter
from tipline.platform.services import services
from tipline.staff import signin
from tipline.web.admin.blueprint import bp, start_session
from tipline.web.admin.forms import LoginForm, PostForm, TotpForm

PENDING = "admin_pending"
PENDING_SECONDS = 300  # the code must follow the password within five minutes


def _limiter() -> FailureLimiter | None:
    """The sign-in limiter; None when Redis cannot even be set up (sign-in then allows)."""
    try:
        return signin.limiter(services().redis)
    except Exception:
        return None


def _safe_next(target: str | None) -> str:
    """Only a path inside the admin view: a `next` pointing elsewhere is an open redirect."""
    default = url_for("admin.queue")
    if not target or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("admin.queue"))
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        now = utcnow()
        attempt = signin.check_password(
            dbsession(), services().vault, _limiter(), form.email.data, form.password.data, now
        )
        db.session.commit()
        target = _safe_next(request.args.get("next"))
        if attempt.outcome is signin.Outcome.NEEDS_TOTP and attempt.user is not None:
            session.clear()
            session[PENDING] = {"uid": attempt.user.id, "at": int(time.time()), "next": target}
            return redirect(url_for("admin.totp"))
        if attempt.outcome is signin.Outcome.SIGNED_IN and attempt.user is not None:
            start_session(attempt.user, now)
            return redirect(target)
        error, status = signin.GENERIC_ERROR, 429 if attempt.throttled else 200
    return render_template("admin/login.html", form=form, error=error), status


@bp.route("/login/totp", methods=["GET", "POST"])
def totp() -> Any:
    pending = session.get(PENDING)
    if (
        not isinstance(pending, dict)
        or not isinstance(pending.get("uid"), int)
        or not isinstance(pending.get("at"), int)
        or time.time() - pending["at"] > PENDING_SECONDS
    ):
        session.pop(PENDING, None)
        return redirect(url_for("admin.login"))
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        now = utcnow()
        attempt = signin.check_totp(
            dbsession(), services().vault, _limiter(), pending["uid"], form.code.data, now
        )
        db.session.commit()
        if attempt.outcome is signin.Outcome.SIGNED_IN and attempt.user is not None:
            start_session(attempt.user, now)
            return redirect(_safe_next(pending.get("next")))
        error = signin.GENERIC_ERROR
    return render_template("admin/totp.html", form=form, error=error)


@bp.post("/logout")
def logout() -> Response:
    """POST only, with a CSRF token: a link or an image on another page cannot sign staff out."""
    form = PostForm()
    if form.validate_on_submit():
        logout_user()
        session.clear()
    return redirect(url_for("admin.login"))
