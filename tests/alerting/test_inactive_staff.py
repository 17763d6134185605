"""Someone no longer on staff cannot stop an escalation: not by an old link, not by SMS.

The attack: a staff member leaves (removed from the config, `tipline init` deactivates them)
but keeps the phone with old alerts in it, or the number passes to someone else. Opening an
alert's link, or texting ACK, must not acknowledge a live alert.
"""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from tests.support.acks import csrf, link_token, paged, text_staff
from tests.support.alerting import RUIZ, outbound, the_alert
from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import Staff


def deactivate(app: Flask, **where: str) -> None:
    with app.app_context():
        staff = db.session.scalars(select(Staff).filter_by(**where)).one()
        staff.active = False
        db.session.commit()


def test_an_ack_link_of_someone_deactivated_acknowledges_nothing(twilio_app: Flask) -> None:
    paged(twilio_app, at=utcnow())  # links expire: page on the real clock
    token = link_token(twilio_app)
    client = twilio_app.test_client()
    page = client.get(f"/ack/{token}")
    assert page.status_code == 200  # while still on staff, the link works
    deactivate(twilio_app, key=outbound(twilio_app, purpose="alert")[0].to_label)
    assert client.get(f"/ack/{token}").status_code == 404
    resp = client.post(f"/ack/{token}", data={"csrf_token": csrf(page)})
    assert resp.status_code == 404
    assert b"not valid" in resp.data
    alert = the_alert(twilio_app)
    assert alert.status == "open"
    assert alert.acked_by_staff_id is None
    assert outbound(twilio_app, purpose="confirm") == []


def test_an_sms_ack_from_someone_deactivated_acknowledges_nothing(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app)
    deactivate(twilio_app, phone=RUIZ)
    reply = text_staff(twilio_app.test_client(), f"ACK {code[1:]}", from_=RUIZ)
    assert not reply.startswith("Acknowledged")
    assert re.search(r"\bT\d{4,}\b", reply)  # an ordinary student message: its own tip code
    alert = the_alert(twilio_app)
    assert alert.status == "open"
    assert alert.acked_by_staff_id is None
