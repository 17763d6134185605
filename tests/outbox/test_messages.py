"""What alerts say: GSM-7 only, two segments at most, never the student's number; console
lines; replies to students."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from tests.support.alerting import (
    GUN,
    LINCOLN,
    STUDENT,
    WEDNESDAY_10AM,
    add_tip,
    outbound,
    route,
    sender_for,
    the_alert,
    tip_code,
    use_config,
)
from tests.support.fakes import FakeTwilio
from tests.support.policies import policy, step
from tipline.alerting import wording
from tipline.extensions import db
from tipline.intake.records import conversation
from tipline.models import Message, Tip
from tipline.outbox import gsm
from tipline.platform.services import services
from tipline.staff import casework

T0 = WEDNESDAY_10AM


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("“quoted” and ‘single’", "\"quoted\" and 'single'"),
        ("a — b – c … d · e → f", "a - b - c ... d - e -> f"),
        ("emoji 😡🔫 gone", "emoji gone"),
        ("café naïve año", "café naive año"),
        ("line\nbreaks\r\n  and   spaces", "line breaks and spaces"),
    ],
)
def test_alert_text_is_transliterated_to_gsm7(raw: str, expected: str) -> None:
    out = gsm.to_gsm7(raw)
    assert out == expected
    assert gsm.is_gsm7(out)


def test_segments_are_counted_in_septets() -> None:
    assert gsm.segments("a" * 160) == 1
    assert gsm.segments("a" * 161) == 2
    assert gsm.segments("a" * 306) == 2
    assert gsm.segments("a" * 307) == 3
    assert gsm.septets("[]") == 4  # extension characters take two
    assert gsm.septets(gsm.cut("word " * 100, 50)) <= 50


def test_long_tips_make_two_segment_alerts_without_the_students_number(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    text = (GUN + " 🔫 “for real” — text me at 555-123-0001 or +1 (555) 123 0001 ") * 20
    route(twilio_app, add_tip(twilio_app, text, T0), T0)
    sender = sender_for(twilio_app)
    sender.send_owed(T0)
    sender.notifier.close()
    body = fake_twilio.messages()[0].form["Body"]
    assert gsm.is_gsm7(body)
    assert gsm.segments(body) <= 2
    assert "555" not in body.split("/ack/")[0]
    assert "Reply ACK" in body
    assert "Lincoln High School" in body


def test_link_schools_send_no_tip_text(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, T0, school="washington"), T0)
    sender = sender_for(twilio_app)
    sender.send_owed(T0)
    sender.notifier.close()
    body = fake_twilio.messages()[0].form["Body"]
    assert "open the link" in body
    assert "gun" not in body
    assert "Jake" not in body
    assert fake_twilio.messages()[0].form["From"] == "+15550000200"


def test_console_mode_prints_one_line_per_message_and_no_tip_text(
    app: Flask, tmp_path: Path
) -> None:
    use_config(
        app,
        tmp_path,
        policy("all-channels", step("on-duty:sro", channels=("sms", "voice", "email"))),
    )
    tip_id = add_tip(app, GUN, T0)
    route(app, tip_id, T0)
    sender = sender_for(app)
    assert sender.send_owed(T0) == ["console"] * 3
    code = tip_code(app, tip_id)
    assert sender.console.getvalue().splitlines() == [
        f"[sms → ruiz +15550000111] CRITICAL weapon {code} · Reply ACK {code[1:]}",
        f"[voice → ruiz +15550000111] CRITICAL weapon {code} · press 1 to acknowledge",
        f"[email → ruiz dana.ruiz@example.org] CRITICAL weapon {code} · Reply ACK {code[1:]}",
    ]
    [sms] = outbound(app, channel="sms")
    assert sms.status == "console"
    assert sms._body is not None
    with app.app_context():
        body = services(app).vault.get_text(db.session.get(type(sms), sms.id), "body")  # type: ignore[arg-type]
    assert body is not None
    assert "gun" in body


def test_storm_count_appears_in_later_pages(app: Flask) -> None:
    route(app, add_tip(app, "fight in the cafeteria, someone has a knife", T0), T0)
    for n in range(4):
        at = T0 + timedelta(seconds=10 * (n + 1))
        route(app, add_tip(app, "huge fight in the cafeteria right now!!", at), at)
    alert = the_alert(app)
    with app.app_context():
        loaded = db.session.get(type(alert), alert.id)
        assert loaded is not None
        assert wording.summary(loaded, wording.tip_count(db.session, loaded)).endswith(
            f"(5 tips) · Reply ACK {loaded.tip.code_digits}"
        )


def the_tip(tip_id: str) -> Tip:
    tip = db.session.get(Tip, tip_id)
    assert tip is not None
    return tip


# -- replies to students -----------------------------------------------------------------------


def test_reply_to_an_sms_tip_is_sealed_and_sent_from_the_schools_number(
    twilio_app: Flask, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    tip_id = add_tip(twilio_app, "someone is selling vapes in the bathroom", T0)
    with twilio_app.app_context():
        reply = casework.send_reply(
            db.session, services(twilio_app).vault, the_tip(tip_id), "Thanks, we are on it.", now=T0
        )
        db.session.commit()
        assert reply.outbound_id is not None
        msg = db.session.get(Message, reply.message.id)
        assert msg is not None
        assert msg.direction == "out"
        assert msg._body != b"Thanks, we are on it."
    sender = sender_for(twilio_app)
    with caplog.at_level("DEBUG"):
        assert sender.send_owed(T0) == ["sent"]
    sender.notifier.close()
    [sms] = fake_twilio.messages()
    assert (sms.form["To"], sms.form["From"]) == (STUDENT, LINCOLN)
    assert sms.form["Body"] == "Thanks, we are on it."
    assert "ValidityPeriod" not in sms.form
    assert STUDENT not in caplog.text
    assert "on it" not in caplog.text
    with twilio_app.app_context():
        stored = db.session.get(Message, reply.message.id)
        assert stored is not None
        assert stored.delivery_status == "queued"


def test_reply_to_a_web_tip_waits_on_the_followup_page(app: Flask) -> None:
    tip_id = add_tip(app, "someone is selling vapes in the bathroom", T0, source="web", phone=None)
    with app.app_context():
        svc = services(app)
        reply = casework.send_reply(db.session, svc.vault, the_tip(tip_id), "Thank you.", now=T0)
        db.session.commit()
        assert reply.outbound_id is None
        tip = db.session.get(Tip, tip_id)
        assert tip is not None
        assert [e.text for e in conversation(db.session, svc.vault, tip)][-1] == "Thank you."
    assert outbound(app) == []


def test_console_reply_line_names_no_number(app: Flask) -> None:
    tip_id = add_tip(app, "someone is selling vapes in the bathroom", T0)
    with app.app_context():
        casework.send_reply(db.session, services(app).vault, the_tip(tip_id), "Hi", now=T0)
        db.session.commit()
    sender = sender_for(app)
    sender.send_owed(T0)
    line = sender.console.getvalue().strip()
    assert line == f"[sms → student] reply to {tip_code(app, tip_id)}"


@pytest.mark.parametrize("text", ["", "   ", "x" * 1601])
def test_empty_or_overlong_replies_are_refused(app: Flask, text: str) -> None:
    tip_id = add_tip(app, "someone is selling vapes in the bathroom", T0)
    with app.app_context(), pytest.raises(casework.CaseworkError):
        casework.send_reply(db.session, services(app).vault, the_tip(tip_id), text, now=T0)
