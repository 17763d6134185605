"""Reading: the queue, a tip's case file, attachment downloads, the dashboard."""

from __future__ import annotations

import mimetypes
from datetime import datetime
from typing import Any

from flask import Response, abort, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.outbox import messages
from tipline.platform.services import services
from tipline.staff import access, casework, floods, incidentpage, livequeue, trends
from tipline.staff import breakglass as glass
from tipline.staff import dashboard as stats
from tipline.staff.queuesearch import SEARCH_CAP
from tipline.triage import CATEGORIES, SEVERITIES
from tipline.web.admin import (  # noqa: F401 - their routes join the blueprint
    account,
    actions,
    auditpage,
    breakglass,
    figures,
    incidents,
    login,
    logins,
    oncall,
)
from tipline.web.admin.blueprint import QUEUE_CSP, bp, staff_user, tip_or_abort
from tipline.web.admin.forms import (
    AssignForm,
    LegalHoldForm,
    NoteForm,
    PostForm,
    ReclassifyForm,
    ReplyForm,
    RevealForm,
    StatusForm,
)

__all__ = ["bp"]

# Types a browser may be told about; anything else is sent as opaque bytes. Either way the
# response is a download (Content-Disposition: attachment) that the browser must not sniff.
SAFE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"})


@bp.app_template_filter("admin_age")
def admin_age(then: datetime, now: datetime | None = None) -> str:
    """How long ago, short enough for a table cell: 3m, 5h, 2d."""
    seconds = max(0, int(((now or utcnow()) - then).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@bp.get("/")
def queue() -> Response:
    """The queue page; its script (static/livequeue.js) keeps it current through `queue_live`."""
    user = staff_user()
    flt = access.QueueFilter.parse(request.args.to_dict())
    live = livequeue.live_queue(dbsession(), services().vault, user, flt)
    response = make_response(
        render_template(
            "admin/queue.html",
            live=live,
            page=live.page,
            flt=flt,
            args=livequeue.query_args(flt),
            schools=access.visible_schools(dbsession(), user),
            severities=SEVERITIES,
            statuses=access.STATUS_FILTERS,
            categories=CATEGORIES,
            search_cap=SEARCH_CAP,
            floods=floods.active(dbsession(), user, utcnow()),
            end_form=PostForm(),
        )
    )
    response.headers["Content-Security-Policy"] = QUEUE_CSP
    return response


@bp.get("/queue/live")
def queue_live() -> Response:
    """The queue's rows for the page's script, polled every few seconds: 304 while nothing the
    login may view changed. A passive endpoint: it does not count as activity (blueprint.py)."""
    user = staff_user()
    flt = access.QueueFilter.parse(request.args.to_dict())
    live = livequeue.live_queue(dbsession(), services().vault, user, flt)
    if live.etag in request.if_none_match:
        response = Response(status=304)
    else:
        body = render_template(
            "admin/_live_queue.html",
            live=live,
            page=live.page,
            flt=flt,
            args=livequeue.query_args(flt),
            search_cap=SEARCH_CAP,
        )
        response = Response(body, mimetype="text/html")
    response.set_etag(live.etag)
    return response


@bp.get("/tips/<tip_id>")
def tip(tip_id: str) -> str:
    user = staff_user()
    record = tip_or_abort(tip_id)
    session = dbsession()
    case = access.open_case(session, services().vault, user, record)
    session.commit()

    def may(action: str) -> bool:
        return access.allowed(session, user, record, action)

    forms: dict[str, Any] = {}
    if may("reply"):
        forms["reply"] = ReplyForm(formdata=None)
    if may("note"):
        forms["note"] = NoteForm(formdata=None)
    if may("status"):
        forms["status"] = StatusForm(formdata=None)
    if may("reclassify"):
        forms["reclassify"] = ReclassifyForm(
            formdata=None, severity=record.severity, category=record.category
        )
    if may("assign"):
        form = AssignForm(formdata=None)
        form.offer(access.assignable_users(session, record))
        forms["assign"] = form
    if user.role in casework.HOLD_ROLES and record.purged_at is None:
        forms["hold"] = LegalHoldForm(formdata=None, hold="0" if record.legal_hold else "1")
    if may("acknowledge") and user.staff_id is not None and case.alert_open:
        forms["ack"] = PostForm(formdata=None)
    now = utcnow()
    reveals = glass.views(session, user, record, now) if user.role in glass.ROLES else []
    session.commit()  # requests found expired on the way
    if glass.available(user, record):
        forms["reveal"] = RevealForm(formdata=None)
    return render_template(
        "admin/tip.html",
        case=case,
        forms=forms,
        now=now,
        download=may("download"),
        reveals=reveals,
        reveal_reason=lambda r: glass.reason(services().vault, r),
        incident_id=incidentpage.incident_id_of(session, record),
    )


@bp.get("/tips/<tip_id>/attachments/<attachment_id>")
def attachment(tip_id: str, attachment_id: str) -> Response:
    """Decrypt and send one attachment as a download; never rendered inline in the admin view."""
    user = staff_user()
    session = dbsession()
    try:
        att, content = access.download(session, services().vault, user, tip_id, attachment_id)
    except access.NotFound:
        abort(404)
    session.commit()
    kind = att.content_type.split(";")[0].strip().lower()
    if kind not in SAFE_TYPES:
        kind = "application/octet-stream"
    ext = mimetypes.guess_extension(kind) or ".bin"
    response = Response(content, mimetype=kind)
    response.headers["Content-Disposition"] = f'attachment; filename="attachment-{att.id}{ext}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/dashboard")
def dashboard() -> str:
    user, now = staff_user(), utcnow()
    board = stats.build(dbsession(), user, now)
    found = trends.trends(dbsession(), user, now)
    return render_template(
        "admin/dashboard.html",
        board=board,
        severities=SEVERITIES,
        charts=figures.build_charts(found),
        figures=found,
        floods=floods.recent(dbsession(), user, now),
        end_form=PostForm(),
    )


@bp.post("/floods/<flood_id>/end")
def end_flood(flood_id: str) -> BaseResponse:
    """An admin ends a school's flood mode: pages go out one by one again (audited)."""
    if not PostForm().validate_on_submit():
        abort(400)
    svc = services()
    try:
        run = floods.end(
            dbsession(),
            svc.vault,
            staff_user(),
            flood_id,
            utcnow(),
            public_url=svc.settings.public_url,
        )
    except access.NotFound:
        abort(404)
    except access.NotPermitted:
        abort(403)
    if run is None:
        flash("That flood had already ended.", "ok")
    else:
        # Redis down: the notice is owed in the database and the sweeper sends it.
        messages.enqueue_sends(svc, run.outbound_ids, front=run.outbound_ids)
        flash("Flood mode ended: pages are sent one by one again.", "ok")
    return redirect(url_for("admin.dashboard"))
