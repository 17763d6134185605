"""Break-glass over POST: ask to reveal a student's number, approve, and see it once.

The number is decrypted by the worker (staff.breakglass.decrypt), never here; this process only
opens the copy sealed for the asker, and deletes its key as the page is drawn.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import Reveal
from tipline.platform import queueing
from tipline.platform.services import services
from tipline.staff import breakglass
from tipline.web.admin.blueprint import bp, staff_user, tip_or_abort
from tipline.web.admin.forms import PostForm, RevealForm


def _back(tip_id: str) -> Response:
    return redirect(url_for("admin.tip", tip_id=tip_id, _anchor="h-reveal"))


def _reveal_or_abort(reveal_id: str) -> Reveal:
    reveal = dbsession().get(Reveal, reveal_id)
    if reveal is None:
        abort(404)
    tip_or_abort(reveal.tip_id)  # 404 unless this login sees the tip
    return reveal


@bp.post("/tips/<tip_id>/reveal")
def reveal_request(tip_id: str) -> Response:
    tip, form = tip_or_abort(tip_id), RevealForm()
    if not breakglass.available(staff_user(), tip):
        abort(403)
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return _back(tip.id)
    svc = services()
    try:
        breakglass.request(
            dbsession(),
            svc.vault,
            staff_user(),
            tip,
            form.reason.data,
            utcnow(),
            svc.settings.public_url,
        )
    except breakglass.BreakGlassError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(
            "Request recorded: every admin of the school was told; a second one must "
            "approve within an hour.",
            "ok",
        )
    return _back(tip.id)


@bp.post("/reveals/<reveal_id>/approve")
def reveal_approve(reveal_id: str) -> Response:
    reveal, form = _reveal_or_abort(reveal_id), PostForm()
    if not form.validate_on_submit():
        abort(400)
    svc = services()
    try:
        breakglass.approve(
            dbsession(), svc.vault, staff_user(), reveal, utcnow(), svc.settings.public_url
        )
    except breakglass.BreakGlassError as exc:
        db.session.commit()  # an expiry found on the way is kept
        flash(str(exc), "error")
    else:
        db.session.commit()
        queueing.enqueue_reveal(svc, reveal.id)
        flash("Approved: the asker can see the number once, in a moment.", "ok")
    return _back(reveal.tip_id)


@bp.post("/reveals/<reveal_id>/show")
def reveal_show(reveal_id: str) -> Response | str:
    reveal, form = _reveal_or_abort(reveal_id), PostForm()
    if not form.validate_on_submit():
        abort(400)
    svc = services()
    if reveal.status == "approved" and reveal.requested_by == staff_user().id:
        queueing.enqueue_reveal(svc, reveal.id)  # again, if Redis lost the first one
        flash("The number is being decrypted; try again in a few seconds.", "error")
        return _back(reveal.tip_id)
    try:
        number = breakglass.show_once(dbsession(), svc.vault, staff_user(), reveal, utcnow())
    except breakglass.BreakGlassError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(reveal.tip_id)
    db.session.commit()
    tip = tip_or_abort(reveal.tip_id)
    return render_template("admin/reveal.html", tip=tip, number=number)
