"""The signed-in login's own page: sign out everywhere; an admin resets a second factor."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import User
from tipline.platform.services import services
from tipline.staff import accounts, sessions, signin
from tipline.staff.access import actor
from tipline.vault import audit
from tipline.web.admin.blueprint import bp, end_session, staff_user
from tipline.web.admin.forms import PostForm, ResetSecondFactorForm, TotpForm
from tipline.web.admin.login import client_address


@bp.get("/account")
def account() -> str:
    user = staff_user()
    reset = ResetSecondFactorForm(formdata=None) if user.role in ("admin", "district") else None
    return render_template(
        "admin/account.html",
        user=user,
        enrolled=accounts.has_second_factor(user),
        codes_left=accounts.recovery_codes_left(dbsession(), user),
        everywhere=PostForm(formdata=None),
        renew=TotpForm(formdata=None) if accounts.has_second_factor(user) else None,
        reset=reset,
    )


@bp.post("/account/recovery-codes")
def renew_recovery_codes() -> Any:
    """Ten new recovery codes, shown once, for a current TOTP code (the old codes stop working)."""
    user = staff_user()
    form = TotpForm()
    if form.validate_on_submit():
        attempt = signin.renew_recovery_codes(
            dbsession(), services().vault, user, form.code.data, client_address(), utcnow()
        )
        db.session.commit()
        if attempt.outcome is signin.Outcome.CONFIRMED:
            return render_template(
                "admin/recovery_codes.html",
                codes=attempt.recovery_codes,
                next=url_for("admin.account"),
            )
        if attempt.outcome is signin.Outcome.DELAYED:
            flash(signin.DELAYED_ERROR.format(seconds=attempt.retry_after), "error")
            return redirect(url_for("admin.account"))
    flash("No new codes: that code was not right. Use the one your app shows now.", "error")
    return redirect(url_for("admin.account"))


@bp.post("/logout/everywhere")
def logout_everywhere() -> Response:
    """End every session of this login, on every device (a lost phone, a shared computer)."""
    form = PostForm()
    if form.validate_on_submit():
        user = staff_user()
        ended = sessions.revoke_all(dbsession(), user.id, utcnow())
        audit.record(dbsession(), actor(user), "login.signout_everywhere", sessions_ended=ended)
        db.session.commit()
        end_session()
    return redirect(url_for("admin.login"))


@bp.post("/account/reset-second-factor")
def reset_second_factor() -> Any:
    """An admin of the login's schools (or district staff) resets its second factor."""
    user = staff_user()
    form = ResetSecondFactorForm()
    if user.role not in ("admin", "district") or not form.validate_on_submit():
        flash("Not reset: only an admin of the login's schools can reset it.", "error")
        return redirect(url_for("admin.account"))
    session = dbsession()
    email = form.email.data.strip().lower()
    target = session.scalars(select(User).where(User.email == email)).first()
    if target is None or target.id == user.id or not accounts.may_reset(user, target):
        # One answer for "no such login" and "not yours": the form is no directory of logins.
        flash("Not reset: no login with that email at your schools.", "error")
        return redirect(url_for("admin.account"))
    accounts.reset_second_factor(session, services().vault, target, actor(user))
    db.session.commit()
    flash(f"Reset: {target.email} enrolls a new second factor at the next sign-in.", "ok")
    return redirect(url_for("admin.account"))
