"""Helpers for acknowledgement tests: a paged tip, a staff text, the link an alert carries."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import post_signed, sms_params, twiml_text
from tests.support.alerting import (
    GUN,
    LINCOLN,
    RUIZ,
    WEDNESDAY_10AM,
    add_tip,
    outbound,
    route,
    tip_code,
)
from tipline.extensions import db
from tipline.platform.services import services

T0 = WEDNESDAY_10AM


def text_staff(client: FlaskClient, body: str, from_: str = RUIZ, to: str = LINCOLN) -> str:
    resp = post_signed(client, "/sms/inbound", sms_params(body, from_=from_, to=to))
    assert resp.status_code == 200
    return twiml_text(resp)


def paged(app: Flask, text: str = GUN, at: datetime = T0) -> tuple[str, str]:
    """A critical tip at lincoln, routed and its first step run: (tip id, tip code)."""
    tip_id = add_tip(app, text, at)
    route(app, tip_id, at)
    return tip_id, tip_code(app, tip_id)


def link_token(app: Flask) -> str:
    sms = outbound(app, purpose="alert", channel="sms")[0]
    with app.app_context():
        msg = db.session.get(type(sms), sms.id)
        assert msg is not None
        body = services(app).vault.get_text(msg, "body") or ""
    m = re.search(r"/ack/([A-Za-z0-9_-]+)", body)
    assert m is not None
    return m.group(1)


def csrf(resp: TestResponse) -> str:
    m = re.search(rb'name="csrf_token" value="([^"]+)"', resp.data)
    assert m is not None
    return m.group(1).decode()
