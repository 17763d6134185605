"""What staff do in the admin view goes out at once, not on the sweeper's next pass."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from tests.support.admin import AuthActions, make_alert, make_tip
from tipline.extensions import dbsession
from tipline.models import OutboundMessage
from tipline.outbox.messages import send_job_id
from tipline.platform.services import ALERTS_QUEUE, services

FIGHT = "there is going to be a fight after school behind the gym on friday"


def queued_sends(app: Flask, tip_id: str, purpose: str) -> tuple[list[str], list[str]]:
    """The send job ids owed for the tip's messages of `purpose`, and the jobs queued in rq."""
    with app.app_context():
        ids = dbsession().scalars(
            select(OutboundMessage.id).where(
                OutboundMessage.tip_id == tip_id, OutboundMessage.purpose == purpose
            )
        )
        owed = [send_job_id(i, 0) for i in ids]
    return owed, list(services(app).queue(ALERTS_QUEUE).get_job_ids())


def test_a_reply_to_an_sms_tip_is_queued_when_the_post_returns(
    app: Flask, auth: AuthActions
) -> None:
    tip_id = make_tip(app, FIGHT, phone="+15557654321")
    auth.login_as("sro")
    auth.post(f"/admin/tips/{tip_id}/reply", {"reply": "Thank you. Is anyone hurt now?"})
    owed, queued = queued_sends(app, tip_id, "reply")
    assert len(owed) == 1
    assert owed[0] in queued


def test_an_acknowledgement_confirmation_is_queued_when_the_post_returns(
    app: Flask, auth: AuthActions
) -> None:
    tip_id = make_tip(app, FIGHT)
    make_alert(app, tip_id)
    auth.login_as("sro")
    assert auth.post(f"/admin/tips/{tip_id}/acknowledge", {}).status_code == 302
    owed, queued = queued_sends(app, tip_id, "confirm")
    assert len(owed) == 1  # Ruiz acknowledged on the web: the SMS confirms it on his phone
    assert owed[0] in queued
