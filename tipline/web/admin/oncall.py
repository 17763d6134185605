"""On duty (/admin/oncall): who covers each duty now and next at the login's schools; admins of
a school (district staff: any) set temporary cover from the page."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.district import cover
from tipline.district.config import ROLES
from tipline.extensions import db, dbsession
from tipline.models import User
from tipline.staff import access
from tipline.web.admin.blueprint import bp, staff_user
from tipline.web.admin.forms import OverrideForm

COVER_ROLES = ("admin", "district")


def may_cover(user: User, slug: str) -> bool:
    """Admins set cover at their own schools; district staff at every school."""
    if user.role == "district":
        return True
    return user.role == "admin" and any(s.slug == slug for s in user.schools)


@bp.get("/oncall")
def oncall() -> str:
    user = staff_user()
    session = dbsession()
    now = utcnow()
    slugs = [school.slug for school in access.visible_schools(session, user)]
    schools = cover.on_duty_at(session, slugs, now)
    return render_template(
        "admin/oncall.html",
        schools=schools,
        now=now,
        zone=ZoneInfo,
        duties=ROLES,
        may_cover={s.slug: may_cover(user, s.slug) for s in schools},
    )


def _local(raw: str, timezone: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise cover.CoverError(
            f"{raw[:32]!r} is not a date and time like 2026-03-09T07:30"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(timezone))


@bp.post("/oncall/override")
def oncall_override() -> Response:
    user = staff_user()
    form = OverrideForm()
    if not form.validate_on_submit():
        flash("Not set: fill in every field (the form may have expired).", "error")
        return redirect(url_for("admin.oncall"))
    slug = form.school.data
    if not may_cover(user, slug):
        abort(403)
    session = dbsession()
    try:
        school = next((s for s in access.visible_schools(session, user) if s.slug == slug), None)
        if school is None:
            raise cover.CoverError(f"unknown school {slug!r}")
        row = cover.add_override(
            session,
            school=slug,
            duty=form.duty.data,
            staff=form.staff.data,
            start=_local(form.start.data, school.timezone),
            end=_local(form.end.data, school.timezone),
            created_by=access.actor(user),
        )
    except cover.CoverError as exc:
        db.session.rollback()
        flash(f"Not set: {exc}.", "error")
        return redirect(url_for("admin.oncall"))
    name = row.staff.name
    db.session.commit()
    flash(f"Set: {name} covers {row.duty} at {school.name}.", "ok")
    return redirect(url_for("admin.oncall"))
