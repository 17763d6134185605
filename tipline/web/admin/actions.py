"""Casework over POST: reply, acknowledge, status, assign, note, reclassify.

Each redirects back to the tip. A reply to an SMS tip and an acknowledgement queue SMS
(OutboundMessage + Delivery, due now) in the same transaction; the worker sends what is owed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, url_for
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import Tip
from tipline.platform.services import services
from tipline.staff import access, casework
from tipline.web.admin.blueprint import bp, staff_user, tip_or_abort
from tipline.web.admin.forms import (
    AssignForm,
    LegalHoldForm,
    NoteForm,
    PostForm,
    ReclassifyForm,
    ReplyForm,
    StatusForm,
)


def _done(tip: Tip, form: Any, work: Callable[[], str]) -> Response:
    """Run `work` if the form is valid; commit on success, roll back and say why on failure."""
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    else:
        try:
            message = work()
        except casework.CaseworkError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(message, "ok")
    return redirect(url_for("admin.tip", tip_id=tip.id))


@bp.post("/tips/<tip_id>/reply")
def reply(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id, "reply"), ReplyForm()

    def work() -> str:
        casework.reply(dbsession(), services().vault, staff_user(), tip, form.reply.data, utcnow())
        return "Reply stored for the student."

    return _done(tip, form, work)


@bp.post("/tips/<tip_id>/acknowledge")
def acknowledge(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id, "acknowledge"), PostForm()

    def work() -> str:
        result = casework.acknowledge(dbsession(), services().vault, staff_user(), tip, utcnow())
        return result.reply if result.seen else f"Acknowledged {tip.code}: paging stopped."

    return _done(tip, form, work)


@bp.post("/tips/<tip_id>/status")
def status(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id, "status"), StatusForm()

    def work() -> str:
        casework.change_status(
            dbsession(), staff_user(), tip, form.status.data, form.disposition.data or "", utcnow()
        )
        return f"Status is now {tip.status}."

    return _done(tip, form, work)


@bp.post("/tips/<tip_id>/hold")
def legal_hold(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id), LegalHoldForm()
    if staff_user().role not in casework.HOLD_ROLES:
        abort(403)

    def work() -> str:
        hold = form.hold.data == "1"
        casework.set_legal_hold(dbsession(), staff_user(), tip, hold, utcnow())
        return "Legal hold set: retention keeps this tip." if hold else "Legal hold lifted."

    return _done(tip, form, work)


@bp.post("/tips/<tip_id>/assign")
def assign(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id, "assign"), AssignForm()
    form.offer(access.assignable_users(dbsession(), tip))

    def work() -> str:
        who = casework.assign(dbsession(), staff_user(), tip, form.user_id.data, utcnow())
        return f"Assigned to {who.email}."

    return _done(tip, form, work)


@bp.post("/tips/<tip_id>/notes")
def note(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id, "note"), NoteForm()

    def work() -> str:
        casework.add_note(
            dbsession(), services().vault, staff_user(), tip, form.note.data, utcnow()
        )
        return "Note added."

    return _done(tip, form, work)


@bp.post("/tips/<tip_id>/reclassify")
def reclassify(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id, "reclassify"), ReclassifyForm()

    def work() -> str:
        changed = casework.reclassify(
            dbsession(), staff_user(), tip, form.severity.data, form.category.data, utcnow()
        )
        return f"Now {tip.severity} / {tip.category}." if changed else "Nothing changed."

    return _done(tip, form, work)
