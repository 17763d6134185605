"""Sign-in (password, then a code; enrollment of the second factor on first sign-in) and
sign-out."""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import redirect, render_template, request, session, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.platform.services import services
from tipline.staff import signin
from tipline.web.admin.blueprint import bp, end_session, start_session
from tipline.web.admin.forms import LoginForm, PostForm, TotpForm

PENDING = "admin_pending"
PENDING_SECONDS = 300  # the code must follow the password within five minutes


def client_address() -> str | None:
    """The staff member's address, for sign-in delays only (tips never read an address).

    Behind TIPLINE_TRUSTED_PROXIES proxies, the address the nearest of them saw connect.
    """
    hops = services().settings.trusted_proxies
    if hops == 0:
        return request.remote_addr
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
    forwarded = [a for a in forwarded if a]
    return forwarded[-hops] if len(forwarded) >= hops else request.remote_addr


def _safe_next(target: str | None) -> str:
    """Only a path inside the admin view: a `next` pointing elsewhere is an open redirect."""
    default = url_for("admin.queue")
    if not target or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return default
    return target


def _pending(enroll: bool) -> dict[str, Any] | None:
    """The password step this browser passed in the last five minutes, if any."""
    pending = session.get(PENDING)
    if (
        not isinstance(pending, dict)
        or not isinstance(pending.get("uid"), int)
        or not isinstance(pending.get("at"), int)
        or time.time() - pending["at"] > PENDING_SECONDS
        or bool(pending.get("enroll")) != enroll
    ):
        session.pop(PENDING, None)
        return None
    return pending


def _failed(template: str, form: Any, attempt: signin.Attempt, **context: Any) -> Any:
    if attempt.outcome is signin.Outcome.DELAYED:
        error = signin.DELAYED_ERROR.format(seconds=attempt.retry_after)
        page = render_template(template, form=form, error=error, **context)
        return page, 429, {"Retry-After": str(attempt.retry_after)}
    return render_template(template, form=form, error=signin.GENERIC_ERROR, **context)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("admin.queue"))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("admin/login.html", form=form, error=None)
    now = utcnow()
    attempt = signin.check_password(
        dbsession(),
        services().vault,
        form.email.data,
        form.password.data,
        client_address(),
        now,
        second_factor=not services().settings.dev_mode,
    )
    target = _safe_next(request.args.get("next"))
    if attempt.user is not None and attempt.outcome in (
        signin.Outcome.NEEDS_TOTP,
        signin.Outcome.NEEDS_ENROLLMENT,
    ):
        db.session.commit()
        enroll = attempt.outcome is signin.Outcome.NEEDS_ENROLLMENT
        session.clear()
        session[PENDING] = {
            "uid": attempt.user.id,
            "at": int(time.time()),
            "next": target,
            "enroll": enroll,
        }
        return redirect(url_for("admin.enroll" if enroll else "admin.totp"))
    if attempt.outcome is signin.Outcome.SIGNED_IN and attempt.user is not None:
        start_session(attempt.user, now)
        db.session.commit()
        return redirect(target)
    db.session.commit()
    return _failed("admin/login.html", form, attempt)


@bp.route("/login/totp", methods=["GET", "POST"])
def totp() -> Any:
    pending = _pending(enroll=False)
    if pending is None:
        return redirect(url_for("admin.login"))
    form = TotpForm()
    if not form.validate_on_submit():
        return render_template("admin/totp.html", form=form, error=None)
    now = utcnow()
    attempt = signin.check_code(
        dbsession(), services().vault, pending["uid"], form.code.data, client_address(), now
    )
    if attempt.outcome is signin.Outcome.SIGNED_IN and attempt.user is not None:
        start_session(attempt.user, now)
        db.session.commit()
        return redirect(_safe_next(pending.get("next")))
    db.session.commit()
    return _failed("admin/totp.html", form, attempt)


@bp.route("/login/enroll", methods=["GET", "POST"])
def enroll() -> Any:
    """First sign-in: scan the QR code (or type the secret), confirm with a code, and take the
    ten recovery codes, shown this once."""
    pending = _pending(enroll=True)
    if pending is None:
        return redirect(url_for("admin.login"))
    vault = services().vault
    found = signin.enrollment_secret(dbsession(), vault, pending["uid"])
    if found is None:
        session.pop(PENDING, None)
        return redirect(url_for("admin.login"))
    user, secret = found
    db.session.commit()  # the offered secret stays the same on a reload or a wrong code
    # Bound to this browser: if another password step has replaced the secret since this
    # browser first saw it, it starts over rather than confirm a secret someone else saw.
    seen = hashlib.sha256(secret.encode()).hexdigest()[:32]
    if pending.setdefault("seen", seen) != seen:
        session.pop(PENDING, None)
        return redirect(url_for("admin.login"))
    session[PENDING] = pending
    uri = signin.provisioning_uri(secret, user.email)
    # Drawn here as inline SVG: no third-party service sees the secret, and the CSP needs no
    # exception (no script, no image from elsewhere).
    svg = segno.make(uri, error="m").svg_inline(scale=4, title="QR code for your authenticator")
    qr = Markup(svg)  # noqa: S704 - segno's own markup; its only input is our otpauth URI
    context = {"qr": qr, "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))}
    form = TotpForm()
    if not form.validate_on_submit():
        return render_template("admin/enroll.html", form=form, error=None, **context)
    now = utcnow()
    attempt = signin.confirm_enrollment(
        dbsession(), vault, pending["uid"], form.code.data, client_address(), now
    )
    if attempt.outcome is signin.Outcome.SIGNED_IN and attempt.user is not None:
        start_session(attempt.user, now)
        db.session.commit()
        return render_template(
            "admin/recovery_codes.html",
            codes=attempt.recovery_codes,
            next=_safe_next(pending.get("next")),
        )
    db.session.commit()
    return _failed("admin/enroll.html", form, attempt, **context)


@bp.post("/logout")
def logout() -> Response:
    """POST only, with a CSRF token: a link or an image on another page cannot sign staff out."""
    form = PostForm()
    if form.validate_on_submit():
        end_session()
    return redirect(url_for("admin.login"))
