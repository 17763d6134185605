"""`/ack/<token>`: the link in an alert. GET only shows; the button POSTs the acknowledgement.

Link previews (messaging apps fetch URLs to draw a card) only ever GET, so they never
acknowledge. The token is 128 random bits, stored only as a hash, good for one alert and one
recipient, and stops working a day after the alert fired.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, render_template_string
from flask.typing import ResponseReturnValue

from tipline.alerting import acks, wording
from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.models import Alert, Staff
from tipline.platform.services import services

log = logging.getLogger(__name__)

bp = Blueprint("ackpage", __name__)

PAGE = """{% extends "base.html" %}
{% block title %}Alert {{ code or "" }}{% endblock %}
{% block content %}
{% if not code %}
<h1>This link is not valid</h1>
<p>It may have expired. Reply ACK and the tip number to the alert text instead.</p>
{% else %}
<h1>{{ label }} {{ code }}</h1>
<p>{{ school }}. Sent to {{ name }}.</p>
{% if seen %}
<p id="ack-state">{{ seen }}</p>
{% elif status == "open" %}
<form method="post">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button type="submit" id="ack-button">Acknowledge {{ code }}</button>
</form>
{% elif status == "acked" %}
<p id="ack-state">Acknowledged by {{ acked_by }}{% if via %} ({{ via }}){% endif %}.{% if mine %}
The others paged were told.{% endif %}</p>
{% else %}
<p id="ack-state">This alert is no longer paging anyone.</p>
{% endif %}
{% endif %}
{% endblock %}
"""


def _render(
    found: tuple[Alert, Staff] | None, *, mine: bool = False, seen: str = ""
) -> ResponseReturnValue:
    """The confirm page of an alert and the person its link was sent to; 404 without one."""
    if found is None:
        resp = Response(render_template_string(PAGE, code=None), 404)
    else:
        alert, staff = found
        html = render_template_string(
            PAGE,
            code=alert.tip.code,
            label=wording.label(alert),
            school=alert.school.name,
            name=staff.name,
            status=alert.status,
            acked_by=alert.acked_by.name if alert.acked_by else "someone",
            via=alert.acked_via,
            mine=mine,
            seen=seen,
        )
        resp = Response(html)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/ack/<token>")
def show(token: str) -> ResponseReturnValue:
    return _render(acks.alert_for_token(dbsession(), token, utcnow()))


@bp.post("/ack/<token>")
def confirm(token: str) -> ResponseReturnValue:
    session = dbsession()
    found = acks.alert_for_token(session, token, utcnow())
    if found is None:
        return _render(None)
    alert, staff = found
    svc = services()
    result = acks.acknowledge(session, svc.vault, alert.id, staff, "link", utcnow())
    session.commit()
    if result.acked:
        log.info("alert %s acknowledged by %s on the confirm page", alert.tip.code, staff.key)
    if result.seen:
        log.info("alert %s seen by %s (not named by its policy)", alert.tip.code, staff.key)
    return _render(found, mine=result.acked, seen=result.reply if result.seen else "")
