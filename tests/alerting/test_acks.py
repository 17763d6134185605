"""Acknowledging: SMS `ACK 4821` (and its variants), the confirm page, keypress 1."""

from __future__ import annotations

import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from flask import Flask

from tests.conftest import post_signed, sign
from tests.support.acks import T0, csrf, link_token, paged, text_staff
from tests.support.alerting import (
    PATEL,
    WASHINGTON,
    outbound,
    run_due,
    sender_for,
    steps,
    the_alert,
)
from tests.support.fakes import FakeTwilio
from tipline.alerting import acks
from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import Alert, Delivery


@pytest.mark.parametrize(
    "form", ["ACK {d}", "ack {d}", "Ack T{d}", "ACK t{d}.", " ack  T{d} ", "ACK{d}", "ackT{d}"]
)
def test_sms_ack_stops_the_chain_and_confirms(twilio_app: Flask, form: str) -> None:
    tip_id, code = paged(twilio_app)
    reply = text_staff(twilio_app.test_client(), form.format(d=code[1:]))
    assert reply.startswith(f"Acknowledged: {code}")
    alert = the_alert(twilio_app)
    assert alert.status == "acked"
    assert alert.acked_via == "sms"
    assert alert.next_at is None
    assert run_due(twilio_app, T0 + timedelta(hours=2)) == 0
    assert len(steps(twilio_app)) == 1


def test_ack_cancels_pending_pages_and_tells_the_others_already_paged(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    _tip_id, code = paged(twilio_app)
    sender = sender_for(twilio_app)
    sender.send_owed(T0)
    run_due(twilio_app, T0 + timedelta(seconds=120))  # step 2: patel, brooks, ruiz
    sender.send_owed(T0 + timedelta(seconds=120))
    run_due(twilio_app, T0 + timedelta(seconds=300))  # step 3 queued but not sent yet
    reply = text_staff(twilio_app.test_client(), f"ACK {code[1:]}")
    assert "Others paged were told" in reply
    notices = outbound(twilio_app, purpose="notice")
    assert {m.to_label for m in notices} == {"patel", "brooks"}
    assert all(m.summary == f"Ruiz acknowledged {code}" for m in notices)
    step3 = [m for m in outbound(twilio_app, purpose="alert") if m.status == "canceled"]
    assert step3, "the unsent pages of step 3 are cancelled"
    before = len(fake_twilio.messages())
    sender.send_owed(utcnow())  # the notices were queued on the real clock, by the webhook
    sender.notifier.close()
    sent = fake_twilio.messages()[before:]
    assert sorted(r.form["To"] for r in sent) == sorted([PATEL, "+15550000122"])
    assert all(r.form["Body"].startswith("Ruiz acknowledged") for r in sent)


def test_ack_alone_acknowledges_the_senders_only_open_alert(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app)
    assert text_staff(twilio_app.test_client(), "ACK").startswith(f"Acknowledged: {code}")


def test_ack_alone_lists_several_open_alerts_and_changes_nothing(twilio_app: Flask) -> None:
    _a, code_a = paged(twilio_app)
    _b, code_b = paged(twilio_app, "there is a bomb in the gym, it goes off at noon")
    reply = text_staff(twilio_app.test_client(), "ack")
    assert "2 open alerts" in reply
    assert code_a in reply
    assert code_b in reply
    with twilio_app.app_context():
        assert {a.status for a in db.session.query(Alert)} == {"open"}


def test_unknown_code_from_a_staff_phone_gets_a_clear_reply_and_changes_nothing(
    twilio_app: Flask,
) -> None:
    paged(twilio_app)
    reply = text_staff(twilio_app.test_client(), "ACK 99999")
    assert "No alert T99999" in reply
    assert "Nothing changed" in reply
    assert the_alert(twilio_app).status == "open"


def test_the_to_number_picks_the_school(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app)
    reply = text_staff(twilio_app.test_client(), f"ACK {code[1:]}", to=WASHINGTON)
    assert "Nothing changed" in reply
    assert the_alert(twilio_app).status == "open"


def test_second_ack_is_told_who_was_first(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app)
    client = twilio_app.test_client()
    text_staff(client, f"ACK {code[1:]}")
    reply = text_staff(client, f"ACK {code[1:]}", from_=PATEL)
    assert reply == f"{code} was already acknowledged by Ruiz."


@pytest.mark.parametrize("body", ["acknowledged", "ACK 12", "ack 4821 please call", "back"])
def test_texts_that_are_not_an_ack_are_not_parsed_as_one(body: str) -> None:
    assert acks.parse_ack(body) is None


def test_ack_from_a_student_number_is_a_student_message(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app)
    reply = text_staff(twilio_app.test_client(), f"ACK {code[1:]}", from_="+15559990000")
    assert re.search(r"\bT\d{4,}\b", reply)
    assert the_alert(twilio_app).status == "open"


# -- the confirm page --------------------------------------------------------------------------


def test_link_get_only_shows_and_post_acknowledges(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app, at=utcnow())  # links expire: page on the real clock
    token = link_token(twilio_app)
    client = twilio_app.test_client()
    page = client.get(f"/ack/{token}")
    assert page.status_code == 200
    assert code.encode() in page.data
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get(f"/ack/{token}").status_code == 200
    assert the_alert(twilio_app).status == "open"  # a link preview acknowledges nothing
    done = client.post(f"/ack/{token}", data={"csrf_token": csrf(page)})
    assert done.status_code == 200
    assert b"Acknowledged by Officer" in done.data
    alert = the_alert(twilio_app)
    assert alert.status == "acked"
    assert alert.acked_via == "link"
    [confirm] = outbound(twilio_app, purpose="confirm")
    assert confirm.to_label == outbound(twilio_app, purpose="alert")[0].to_label


def test_link_post_without_csrf_token_is_refused(twilio_app: Flask) -> None:
    paged(twilio_app, at=utcnow())
    resp = twilio_app.test_client().post(f"/ack/{link_token(twilio_app)}")
    assert resp.status_code == 400
    assert the_alert(twilio_app).status == "open"


def test_unknown_or_expired_link_is_not_found(twilio_app: Flask) -> None:
    paged(twilio_app)
    client = twilio_app.test_client()
    assert client.get("/ack/not-a-real-token").status_code == 404
    token = link_token(twilio_app)
    with twilio_app.app_context():
        assert acks.alert_for_token(db.session, token, utcnow()) is None  # T0 was long ago
        assert acks.alert_for_token(db.session, token, T0 + timedelta(hours=23)) is not None
        assert acks.alert_for_token(db.session, token, T0 + timedelta(hours=25)) is None


def test_tokens_are_stored_only_as_hashes(twilio_app: Flask) -> None:
    paged(twilio_app)
    token = link_token(twilio_app)
    with twilio_app.app_context():
        hashes = [d.ack_token_hash for d in db.session.query(Delivery)]
    assert token not in hashes
    assert acks.hash_token(token) in hashes


# -- voice -------------------------------------------------------------------------------------


def test_call_twiml_reads_the_alert_and_gathers_one_key(twilio_app: Flask) -> None:
    _tip_id, code = paged(twilio_app)
    [call] = outbound(twilio_app, channel="voice")
    resp = post_signed(twilio_app.test_client(), f"/voice/alert/{call.id}", {"CallSid": "CA1"})
    assert resp.mimetype == "text/xml"
    root = ElementTree.fromstring(resp.data)  # noqa: S314 - our own TwiML
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"http://tipline.test/voice/ack/{call.id}"
    said = "".join(s.text or "" for s in root.iter("Say"))
    assert "Press 1 to acknowledge" in said
    assert " ".join(code[1:]) in said
    assert "gun" not in said  # no tip text on a phone that may be on speaker


def test_keypress_1_acknowledges_as_the_person_called(twilio_app: Flask) -> None:
    paged(twilio_app)
    [call] = outbound(twilio_app, channel="voice")
    client = twilio_app.test_client()
    other = post_signed(client, f"/voice/ack/{call.id}", {"Digits": "7"})
    assert b"<Redirect>" in other.data
    assert the_alert(twilio_app).status == "open"
    resp = post_signed(client, f"/voice/ack/{call.id}", {"Digits": "1"})
    assert b"Acknowledged" in resp.data
    alert = the_alert(twilio_app)
    assert alert.status == "acked"
    assert alert.acked_via == "voice"
    assert [m.to_label for m in outbound(twilio_app, purpose="confirm")] == ["ruiz"]


def test_voice_webhooks_need_twilios_signature(twilio_app: Flask) -> None:
    paged(twilio_app)
    [call] = outbound(twilio_app, channel="voice")
    client = twilio_app.test_client()
    assert client.post(f"/voice/ack/{call.id}", data={"Digits": "1"}).status_code == 403
    bad = {"X-Twilio-Signature": sign(f"/voice/ack/{call.id}", {"Digits": "2"})}
    assert (
        client.post(f"/voice/ack/{call.id}", data={"Digits": "1"}, headers=bad).status_code == 403
    )
    assert the_alert(twilio_app).status == "open"


def test_call_status_is_recorded(twilio_app: Flask) -> None:
    paged(twilio_app)
    [call] = outbound(twilio_app, channel="voice")
    resp = post_signed(
        twilio_app.test_client(),
        f"/voice/status/{call.id}",
        {"CallSid": "CA1", "CallStatus": "no-answer"},
    )
    assert resp.status_code == 204
    assert outbound(twilio_app, channel="voice")[0].status == "no-answer"
