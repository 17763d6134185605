"""Twilio forgets every message once it is final: inbound texts, alerts and replies."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from xml.etree import ElementTree

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from tests.conftest import ACCOUNT_SID, PUBLIC_URL, post_signed, sms_params
from tests.support.alerting import LINCOLN, RUIZ
from tests.support.fakes import FakeTwilio
from tests.support.media import MEDIA_PATH, PNG, run_worker
from tipline.db import new_id, utcnow
from tipline.extensions import db
from tipline.models import Attachment, DataKey, OutboundMessage, TwilioForget
from tipline.outbox import forget
from workers.runner import twilio_pass

MMS_SID = "MM" + "1" * 32  # the message MEDIA_PATH belongs to
LATER = timedelta(minutes=1)  # past an inbound text's first try


def forget_pass(app: Flask, now: datetime) -> int:
    """One sweeper pass of the worker's Twilio hook."""
    with app.app_context():
        try:
            return twilio_pass(db.session(), now)
        finally:
            db.session.commit()
            db.session.remove()


def pending(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(TwilioForget)) or 0)


def text_in(app: Flask, body: str, sid: str, **extra: str) -> None:
    resp = post_signed(app.test_client(), "/sms/inbound", sms_params(body, sid=sid, **extra))
    assert resp.status_code == 200


def outbound(app: Flask, purpose: str = "alert") -> tuple[str, str]:
    """A sent SMS (id, SID) waiting for its status callbacks."""
    sid = "SM" + new_id()
    with app.app_context():
        msg = OutboundMessage(
            id=new_id(),
            channel="sms",
            purpose=purpose,
            to_label="ruiz",
            summary="CRITICAL weapon T4821",
            status="queued",
            provider_sid=sid,
            sent_at=utcnow(),
        )
        db.session.add(msg)
        db.session.commit()
        return msg.id, sid


def callback(app: Flask, sid: str, status: str) -> None:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
    assert post_signed(app.test_client(), "/sms/status", params).status_code == 204


def test_an_inbound_text_is_deleted_once_its_media_are_stored(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    media = {
        "NumMedia": "1",
        "MediaUrl0": fake_twilio.url + MEDIA_PATH,
        "MediaContentType0": "image/png",
    }
    text_in(twilio_app, "look at this picture of the fight", MMS_SID, **media)
    with twilio_app.app_context():  # the webhook asked Twilio nothing, and kept no plain SID
        key_id, sealed = db.session.execute(
            text("SELECT data_key_id, sid FROM twilio_forget")
        ).one()
        assert MMS_SID.encode() not in sealed
    assert fake_twilio.message_deletes() == []

    assert forget_pass(twilio_app, utcnow() + LATER) == 0  # its picture is not fetched yet
    assert fake_twilio.message_deletes() == []
    run_worker(twilio_app)  # fetches, stores, and deletes the media
    with twilio_app.app_context():
        assert db.session.scalars(select(Attachment.status)).all() == ["stored"]
    assert forget_pass(twilio_app, utcnow() + LATER) == 1
    assert fake_twilio.message_deletes() == [MMS_SID]
    assert pending(twilio_app) == 0
    with twilio_app.app_context():  # its data key went with it
        assert db.session.get(DataKey, key_id) is None


def test_a_plain_text_is_deleted_after_twilio_is_done_with_its_webhook(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    sid = "SM" + new_id()
    text_in(twilio_app, "someone is selling vapes in the bathroom", sid)
    now = utcnow()
    assert forget_pass(twilio_app, now) == 0  # not before INBOUND_FIRST_TRY
    assert forget_pass(twilio_app, now + LATER) == 1
    assert fake_twilio.message_deletes() == [sid]


@pytest.mark.parametrize(
    ("purpose", "final"),
    [("alert", "delivered"), ("reply", "undelivered"), ("confirm", "failed")],
)
def test_a_sent_message_is_deleted_once_its_callback_says_it_is_final(
    twilio_app: Flask, fake_twilio: FakeTwilio, purpose: str, final: str
) -> None:
    _msg_id, sid = outbound(twilio_app, purpose)
    callback(twilio_app, sid, "sent")
    assert forget_pass(twilio_app, utcnow()) == 0
    assert pending(twilio_app) == 0
    callback(twilio_app, sid, final)
    assert forget_pass(twilio_app, utcnow()) == 1
    assert fake_twilio.message_deletes() == [sid]
    callback(twilio_app, sid, "read")  # a later status asks for nothing more
    assert pending(twilio_app) == 0


@pytest.mark.parametrize("refusal", [409, 400])
def test_a_not_final_refusal_is_retried_later_and_quietly(
    twilio_app: Flask,
    fake_twilio: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
    refusal: int,
) -> None:
    _msg_id, sid = outbound(twilio_app)
    callback(twilio_app, sid, "delivered")
    fake_twilio.message_delete_answers = [refusal]
    now = utcnow()
    with caplog.at_level(logging.DEBUG, logger="tipline.outbox.erase"):
        assert forget_pass(twilio_app, now) == 0
        assert forget_pass(twilio_app, now + timedelta(seconds=30)) == 0  # backing off
        assert fake_twilio.message_deletes() == [sid]
        assert pending(twilio_app) == 1
        assert forget_pass(twilio_app, now + forget.RETRY_FIRST) == 1
    assert fake_twilio.message_deletes() == [sid, sid]
    assert pending(twilio_app) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_not_found_at_twilio_counts_as_deleted(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    _msg_id, sid = outbound(twilio_app)
    callback(twilio_app, sid, "failed")
    fake_twilio.message_delete_answers = [404]
    assert forget_pass(twilio_app, utcnow()) == 1
    assert fake_twilio.message_deletes() == [sid]
    assert pending(twilio_app) == 0


def test_a_twilio_outage_keeps_every_pending_delete(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    sids = []
    for _ in range(3):
        _msg_id, sid = outbound(twilio_app)
        callback(twilio_app, sid, "delivered")
        sids.append(sid)
    fake_twilio.message_delete_answers = [500]
    now = utcnow()
    assert forget_pass(twilio_app, now) == 0
    assert len(fake_twilio.message_deletes()) == 1  # the first 500 ends the pass
    assert pending(twilio_app) == 3
    assert forget_pass(twilio_app, now + timedelta(seconds=30)) == 0  # all of them wait
    assert len(fake_twilio.message_deletes()) == 1
    assert forget_pass(twilio_app, now + forget.RETRY_FIRST) == 3
    assert sorted(fake_twilio.message_deletes()[1:]) == sorted(sids)
    assert pending(twilio_app) == 0


def test_a_delete_refused_for_a_week_is_given_up_with_one_warning(
    twilio_app: Flask, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    _msg_id, sid = outbound(twilio_app)
    callback(twilio_app, sid, "delivered")
    fake_twilio.message_delete_answers = [409, 409]
    now = utcnow()
    with caplog.at_level(logging.DEBUG, logger="tipline.outbox.erase"):
        forget_pass(twilio_app, now)
        assert pending(twilio_app) == 1
        forget_pass(twilio_app, now + forget.GIVE_UP_AFTER + timedelta(hours=1))
    assert pending(twilio_app) == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert sid not in warnings[0].getMessage()


def test_an_automatic_reply_reports_its_status_and_is_deleted_once_final(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    params = sms_params("there is a fight by the gym", sid="SM" + new_id())
    resp = post_signed(twilio_app.test_client(), "/sms/inbound", params)
    reply = ElementTree.fromstring(resp.data).find("Message")  # noqa: S314 - our own TwiML
    assert reply is not None
    assert reply.get("action") == PUBLIC_URL + "/sms/status"
    reply_sid = "SM" + new_id()  # Twilio's, for the reply it sent from the TwiML
    callback(twilio_app, reply_sid, "sent")
    assert pending(twilio_app) == 1  # the inbound text only
    callback(twilio_app, reply_sid, "delivered")
    assert forget_pass(twilio_app, utcnow()) == 1  # the text itself waits for its first try
    assert fake_twilio.message_deletes() == [reply_sid]
    with twilio_app.app_context():
        sealed = db.session.execute(text("SELECT sid FROM twilio_forget")).scalars().all()
        assert all(
            reply_sid.encode() not in s and params["MessageSid"].encode() not in s for s in sealed
        )


@pytest.mark.parametrize("reply", ["Tip T1234 at Lincoln & Park <High>", 'He said "911"'])
def test_reply_twiml_with_its_status_url_is_what_twilios_library_writes(reply: str) -> None:
    from twilio.twiml.messaging_response import MessagingResponse  # noqa: PLC0415

    from tipline.web.sms.views import twiml  # noqa: PLC0415

    action = 'https://tips.example.org/sms/status?a=1&b="2"'
    expected = MessagingResponse()
    expected.message(reply, action=action)
    assert twiml(reply, action) == str(expected)


def test_a_staff_text_and_an_empty_text_are_deleted_too(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    staff_sid, empty_sid = "SM" + new_id(), "SM" + new_id()
    params = sms_params("ACK 9999", from_=RUIZ, to=LINCOLN, sid=staff_sid)
    assert post_signed(twilio_app.test_client(), "/sms/inbound", params).status_code == 200
    text_in(twilio_app, "", empty_sid)
    assert forget_pass(twilio_app, utcnow() + LATER) == 2
    assert sorted(fake_twilio.message_deletes()) == sorted([staff_sid, empty_sid])


def test_a_message_whose_last_callback_was_lost_is_asked_about_a_day_on(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    _msg_id, sid = outbound(twilio_app)
    callback(twilio_app, sid, "sent")  # and never a final status
    now = utcnow()
    assert forget_pass(twilio_app, now) == 0
    assert pending(twilio_app) == 0
    fake_twilio.message_delete_answers = [409]  # Twilio still holds it: asked again later
    day_on = now + forget.LOST_CALLBACK + LATER
    assert forget_pass(twilio_app, day_on) == 0
    assert forget_pass(twilio_app, day_on + forget.RETRY_FIRST) == 1
    assert fake_twilio.message_deletes() == [sid, sid]
    assert forget_pass(twilio_app, day_on + forget.GIVE_UP_AFTER) == 0  # recorded only once
    assert fake_twilio.message_deletes() == [sid, sid]
