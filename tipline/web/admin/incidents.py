"""An incident's page (/admin/incidents/<id>): its tips, its pages, one acknowledgement for
all, and moving tips into or out of it. Each POST carries a CSRF token and is audited."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from tipline.db import utcnow
from tipline.errors import TiplineError
from tipline.extensions import db, dbsession
from tipline.models import Incident
from tipline.platform.services import services
from tipline.staff import access, incidentpage
from tipline.web.admin.blueprint import bp, staff_user
from tipline.web.admin.forms import IncidentTipForm, PostForm


def incident_or_abort(incident_id: str) -> Incident:
    try:
        return incidentpage.incident_for(dbsession(), staff_user(), incident_id)
    except access.NotFound:
        abort(404)


@bp.get("/incidents/<incident_id>")
def incident(incident_id: str) -> str:
    found = incident_or_abort(incident_id)
    page = incidentpage.view(dbsession(), staff_user(), found)
    db.session.commit()
    return render_template(
        "admin/incident.html",
        page=page,
        ack=PostForm(formdata=None) if page.may_acknowledge else None,
        add=IncidentTipForm(formdata=None) if page.may_move else None,
        now=utcnow(),
    )


def _back(found: Incident) -> Response:
    return redirect(url_for("admin.incident", incident_id=found.id))


def _refused(exc: TiplineError) -> None:
    db.session.rollback()
    if isinstance(exc, access.NotPermitted):
        abort(403)
    if isinstance(exc, access.NotFound):
        abort(404)
    flash(str(exc), "error")


@bp.post("/incidents/<incident_id>/acknowledge")
def incident_acknowledge(incident_id: str) -> Response:
    found = incident_or_abort(incident_id)
    if not PostForm().validate_on_submit():
        flash("Not acknowledged: the form expired, try again.", "error")
        return _back(found)
    try:
        result = incidentpage.acknowledge(
            dbsession(), services().vault, staff_user(), found, utcnow()
        )
    except TiplineError as exc:
        _refused(exc)
    else:
        db.session.commit()
        flash(result.reply if result.seen else "Acknowledged: paging stopped for all its tips.")
    return _back(found)


@bp.post("/incidents/<incident_id>/tips")
def incident_add_tip(incident_id: str) -> Response:
    found = incident_or_abort(incident_id)
    form = IncidentTipForm()
    if not form.validate_on_submit():
        flash("Not moved: give a tip code like T4821.", "error")
        return _back(found)
    try:
        tip = incidentpage.add_tip(dbsession(), staff_user(), found, form.code.data, utcnow())
    except TiplineError as exc:
        _refused(exc)
    else:
        db.session.commit()
        flash(f"{tip.code} is now part of this incident (nobody is paged again for it).", "ok")
    return _back(found)


@bp.post("/incidents/<incident_id>/tips/<tip_id>/remove")
def incident_remove_tip(incident_id: str, tip_id: str) -> Response:
    found = incident_or_abort(incident_id)
    if not PostForm().validate_on_submit():
        flash("Not moved: the form expired, try again.", "error")
        return _back(found)
    try:
        tip = incidentpage.remove_tip(dbsession(), staff_user(), found, tip_id, utcnow())
    except TiplineError as exc:
        _refused(exc)
    else:
        db.session.commit()
        flash(f"{tip.code} is out of this incident and stands alone.", "ok")
    return _back(found)
