"""The audit page (/admin/audit) and its CSV export: admins of their schools, district for all."""

from __future__ import annotations

from flask import Response, abort, render_template, request, stream_with_context

from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.staff import access, auditlog
from tipline.web.admin.blueprint import bp, staff_user


def _reader_and_filter() -> tuple[auditlog.AuditFilter, list[str]]:
    if not auditlog.may_read(staff_user()):
        abort(403)
    return auditlog.AuditFilter.parse(request.args.to_dict())


@bp.get("/audit")
def audit_log() -> str:
    user = staff_user()
    flt, problems = _reader_and_filter()
    session = dbsession()
    page = auditlog.read(session, user, flt)
    db.session.commit()
    return render_template(
        "admin/audit.html",
        page=page,
        flt=flt,
        problems=problems,
        schools=access.visible_schools(session, user),
        prev_args=flt.query_args(flt.page - 1),
        next_args=flt.query_args(flt.page + 1),
        export_args=flt.query_args(),
    )


@bp.get("/audit.csv")
def audit_csv() -> Response:
    """The filtered log as stored (ids only), every cell safe to open in a spreadsheet."""
    user = staff_user()
    flt, _ = _reader_and_filter()
    lines = auditlog.export(dbsession(), user, flt)
    db.session.commit()  # the export is on record before its first byte leaves
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
