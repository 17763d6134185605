"""Only staff the tip's policy (or the school's fallback) names can stop its escalation.

Anybody else's acknowledgement, by SMS, by the link or on the tip page, is recorded as seen,
confirmed as "seen — escalation continues", and the next step still runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.acks import csrf, link_token, text_staff
from tests.support.admin import AuthActions
from tests.support.alerting import (
    GARCIA,
    GUN,
    PATEL,
    RUIZ,
    add_tip,
    route,
    run_due,
    steps,
    the_alert,
    tip_code,
    use_config,
)
from tests.support.policies import policy, step
from tipline.alerting.acks import new_ack_token
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import Alert, AuditEvent, Staff, Tip
from tipline.outbox.messages import queue_outbound
from tipline.platform.services import services

PHONES = {"ruiz": RUIZ, "garcia": GARCIA}
LOGIN = {"ruiz": "sro", "garcia": "counselor"}


def paged_drugs_tip(app: Flask, now: datetime) -> tuple[str, str]:
    """A critical tip about drugs at Lincoln: the "life-safety" chain pages the SRO on duty,
    then admins, then the district. It names no counselor, yet counselors see drugs tips."""
    tip_id = add_tip(app, GUN, now)
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        tip.category = "drugs"
        db.session.commit()
    route(app, tip_id, now)
    return tip_id, tip_code(app, tip_id)


def link_for(app: Flask, who: str, now: datetime) -> str:
    """The ack link `who` holds: ruiz's came with the page; a link reaching garcia (whom the
    chain does not name) is added the way a page adds one."""
    if who == "ruiz":
        return link_token(app)
    token, token_hash = new_ack_token()
    with app.app_context():
        session = dbsession()
        alert = session.scalars(select(Alert)).one()
        staff = session.scalars(select(Staff).where(Staff.key == who)).one()
        queue_outbound(
            session,
            services(app).vault,
            channel="sms",
            purpose="alert",
            to_label=who,
            summary="forwarded",
            body="link",
            now=now,
            tip_id=alert.tip_id,
            staff_id=staff.id,
            alert=alert,
            round_step=(0, 0),
            ack_token_hash=token_hash,
        )
        db.session.commit()
    return token


def ack(app: Flask, channel: str, who: str, tip_id: str, code: str, now: datetime) -> str:
    """Acknowledge through `channel` as `who`; the confirmation they read."""
    client = app.test_client()
    if channel == "sms":
        return text_staff(client, f"ACK {code[1:]}", from_=PHONES[who])
    if channel == "link":
        token = link_for(app, who, now)
        page = client.get(f"/ack/{token}")
        done = client.post(f"/ack/{token}", data={"csrf_token": csrf(page)})
        assert done.status_code == 200
        return done.get_data(as_text=True)
    auth = AuthActions(app, client)
    auth.login_as(LOGIN[who])
    resp = auth.post(f"/admin/tips/{tip_id}/acknowledge", {})
    assert resp.status_code == 302
    return client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)


def audit_of(app: Flask, tip_id: str, action: str) -> list[dict[str, object]]:
    with app.app_context():
        events = dbsession().scalars(
            select(AuditEvent).where(AuditEvent.tip_id == tip_id, AuditEvent.action == action)
        )
        return [dict(e.detail) for e in events]


@pytest.mark.parametrize("channel", ["sms", "link", "web"])
def test_named_staff_stop_the_escalation(twilio_app: Flask, channel: str) -> None:
    now = utcnow()  # links expire a day after the alert: page on the real clock
    tip_id, code = paged_drugs_tip(twilio_app, now)
    said = ack(twilio_app, channel, "ruiz", tip_id, code, now)
    assert "escalation continues" not in said
    alert = the_alert(twilio_app)
    assert alert.status == "acked"
    assert alert.acked_via == channel
    assert [d["via"] for d in audit_of(twilio_app, tip_id, "alert.acked")] == [channel]
    assert run_due(twilio_app, now + timedelta(minutes=3)) == 0
    assert len(steps(twilio_app)) == 1


@pytest.mark.parametrize("channel", ["sms", "link", "web"])
def test_unnamed_staff_acknowledgement_is_seen_and_the_chain_goes_on(
    twilio_app: Flask, channel: str
) -> None:
    now = utcnow()
    tip_id, code = paged_drugs_tip(twilio_app, now)
    said = ack(twilio_app, channel, "garcia", tip_id, code, now)
    dash = "-" if channel == "sms" else "\u2014"  # SMS is GSM-7
    assert f"seen {dash} escalation continues" in said
    alert = the_alert(twilio_app)
    assert alert.status == "open"
    assert alert.acked_by_staff_id is None
    assert audit_of(twilio_app, tip_id, "alert.acked") == []
    [seen] = audit_of(twilio_app, tip_id, "alert.seen")
    assert (seen["via"], seen["code"]) == (channel, code)
    assert run_due(twilio_app, now + timedelta(minutes=3)) == 1  # step 2 pages the admins
    [second] = [r for _, s, r in steps(twilio_app) if s == 1]
    assert {"patel", "brooks"} <= set(second)


def test_the_schools_fallback_is_named_too(twilio_app: Flask, tmp_path: Path) -> None:
    """Lincoln's fallback is role:admin: an admin stops a chain that would reach them only
    if a step found nobody ("reached or not")."""
    use_config(twilio_app, tmp_path, policy("sro-only", step("role:sro")))
    now = utcnow()
    tip_id, code = paged_drugs_tip(twilio_app, now)
    said = text_staff(twilio_app.test_client(), f"ACK {code[1:]}", from_=PATEL)
    assert said.startswith(f"Acknowledged: {code}")
    assert the_alert(twilio_app).status == "acked"
    assert audit_of(twilio_app, tip_id, "alert.seen") == []
