"""Staff logins (/admin/logins): admins create, disable and re-enable the logins of their
schools and reset a second factor; district staff for all. Every POST: CSRF, audited."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.errors import TiplineError
from tipline.extensions import db, dbsession
from tipline.models import User
from tipline.platform.services import services
from tipline.staff import access, logins
from tipline.web.admin.blueprint import bp, staff_user
from tipline.web.admin.forms import NewLoginForm, PostForm


def _manager() -> User:
    user = staff_user()
    if not logins.may_manage(user):
        abort(403)
    return user


@bp.get("/logins")
def staff_logins() -> str:
    user = _manager()
    session = dbsession()
    return render_template(
        "admin/logins.html",
        rows=logins.manageable(session, user),
        roles=logins.roles_for(user),
        schools=access.visible_schools(session, user),
        staff=logins.staff_choices(session, user),
    )


@bp.post("/logins")
def create_login() -> Response | str:
    user = _manager()
    form = NewLoginForm()
    if not form.validate_on_submit():
        flash("Not created: give an email address and a role (the form may have expired).", "error")
        return redirect(url_for("admin.staff_logins"))
    session = dbsession()
    try:
        created, password = logins.create(
            session,
            services().vault,
            user,
            email=form.email.data,
            role=form.role.data,
            schools=request.form.getlist("schools"),
            staff_key=form.staff.data or None,
        )
    except TiplineError as exc:
        db.session.rollback()
        flash(f"Not created: {exc}.", "error")
        return redirect(url_for("admin.staff_logins"))
    db.session.commit()
    return render_template("admin/login_created.html", email=created.email, password=password)


def _change(user_id: int, work: str) -> Response:
    user = _manager()
    if not PostForm().validate_on_submit():
        flash("Nothing changed: the form expired, try again.", "error")
        return redirect(url_for("admin.staff_logins"))
    session, now = dbsession(), utcnow()
    try:
        if work == "reset":
            target = logins.reset_second_factor(session, services().vault, user, user_id)
            message = f"Reset: {target.email} enrolls a new second factor at the next sign-in."
        else:
            target = logins.set_active(session, user, user_id, work == "enable", now)
            message = f"{target.email} is {'enabled' if target.active else 'disabled'}."
    except TiplineError as exc:
        db.session.rollback()
        flash(f"Nothing changed: {exc}.", "error")
        return redirect(url_for("admin.staff_logins"))
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("admin.staff_logins"))


@bp.post("/logins/<int:user_id>/disable")
def disable_login(user_id: int) -> Response:
    return _change(user_id, "disable")


@bp.post("/logins/<int:user_id>/enable")
def enable_login(user_id: int) -> Response:
    return _change(user_id, "enable")


@bp.post("/logins/<int:user_id>/reset-second-factor")
def reset_login_second_factor(user_id: int) -> Response:
    return _change(user_id, "reset")
