"""Delivery: Twilio failures retried once each, fallback to voice, final errors, ambiguity."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import count, post_signed
from tests.support.alerting import (
    GUN,
    RUIZ,
    WEDNESDAY_10AM,
    add_tip,
    outbound,
    route,
    sender_for,
    use_config,
)
from tests.support.fakes import FakeTwilio, Recorded
from tests.support.policies import policy, step
from tipline.alerting import fallback
from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import DeliveryAttempt, OutboundMessage
from tipline.outbox import sending

T0 = WEDNESDAY_10AM
SMS_ONLY = policy("life-safety-sms", step("on-duty:sro"))
EMAIL_ONLY = policy("mail", step("on-duty:sro", channels=("email",)))


def attempts(
    app: Flask, outbound_id: str | None = None
) -> list[tuple[int, str | None, str | None]]:
    with app.app_context():
        stmt = select(DeliveryAttempt).order_by(DeliveryAttempt.id)
        if outbound_id:
            stmt = stmt.where(DeliveryAttempt.outbound_id == outbound_id)
        rows = db.session.scalars(stmt)
        return [(a.number, a.outcome, a.error_code) for a in rows]


def test_twilio_500_then_201_sends_exactly_one_sms(
    twilio_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(twilio_app, tmp_path, SMS_ONLY)
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    fake_twilio.failures = [500]
    sender = sender_for(twilio_app)
    assert sender.send_owed(T0) == ["retry"]
    assert sender.send_owed(T0 + timedelta(milliseconds=400)) == []  # backoff >= 0.5 s
    assert sender.send_owed(T0 + timedelta(seconds=1)) == ["sent"]
    assert sender.send_owed(T0 + timedelta(seconds=60)) == []
    sender.notifier.close()
    assert len(fake_twilio.messages()) == 2  # one refused with 500, one created
    [msg] = outbound(twilio_app, channel="sms")
    assert msg.provider_sid
    assert msg.attempts == 2
    assert msg.status == "queued"
    assert attempts(twilio_app) == [(1, "transient", "20500"), (2, "sent", None)]


def test_429_and_5xx_back_off_with_jitter_up_to_a_cap() -> None:
    import random  # noqa: PLC0415

    rng = random.Random(7)  # noqa: S311 - a seeded jitter source, not a secret
    delays = [sending.backoff(n, rng) for n in range(1, 12)]
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert max(delays) <= sending.BACKOFF_CAP
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered


def test_a_job_run_twice_sends_one_sms(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    [sms] = outbound(twilio_app, channel="sms")
    sender = sender_for(twilio_app)
    with twilio_app.app_context():
        svc = twilio_app.extensions["tipline"]
        first = sending.deliver(
            db.session, svc.vault, sender.notifier, sms.id, T0, "http://x", fallback.fall_back
        )
        again = sending.deliver(
            db.session, svc.vault, sender.notifier, sms.id, T0, "http://x", fallback.fall_back
        )
    sender.notifier.close()
    assert (first.kind, again.kind) == ("sent", "noop")
    assert len(fake_twilio.messages()) == 1


def test_opted_out_recipient_is_final_recorded_and_never_retried(
    twilio_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(twilio_app, tmp_path, SMS_ONLY)
    original = fake_twilio.handle

    def opted_out(req: Recorded) -> tuple[int, bytes, str]:
        if req.path.endswith("/Messages.json"):
            with fake_twilio.lock:
                fake_twilio.requests.append(req)
            body = {
                "code": 21610,
                "message": "Attempt to send to unsubscribed recipient",
                "status": 400,
            }
            return 400, json.dumps(body).encode(), "application/json"
        return original(req)

    fake_twilio.handle = opted_out  # type: ignore[method-assign]
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    sender = sender_for(twilio_app)
    assert sender.send_owed(T0) == ["failed"]
    [sms] = outbound(twilio_app, channel="sms")
    assert (sms.status, sms.error_code, sms.attempts) == ("failed", "21610", 1)
    # a critical page that cannot go by SMS is placed as a call at once
    assert sender.send_owed(T0 + timedelta(seconds=1)) == ["sent"]
    assert sender.send_owed(T0 + timedelta(hours=1)) == []
    sender.notifier.close()
    assert len(fake_twilio.messages()) == 1
    assert [c.form["To"] for c in fake_twilio.calls()] == [RUIZ]


def test_undelivered_status_falls_through_to_a_call_at_once(
    twilio_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(twilio_app, tmp_path, SMS_ONLY)
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    sender = sender_for(twilio_app)
    sender.send_owed(T0)
    [sms] = outbound(twilio_app, channel="sms")
    params = {
        "MessageSid": sms.provider_sid or "",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    resp = post_signed(twilio_app.test_client(), "/sms/status", params)
    assert resp.status_code == 204
    [call] = outbound(twilio_app, channel="voice")
    assert call.to_label == "ruiz"
    assert call.status == "pending"
    assert sender.send_owed(utcnow()) == ["sent"]
    sender.notifier.close()
    assert [c.form["To"] for c in fake_twilio.calls()] == [RUIZ]
    # the same callback again (Twilio retries callbacks) places no second call
    assert post_signed(twilio_app.test_client(), "/sms/status", params).status_code == 204
    assert count(twilio_app, OutboundMessage) == 2


def test_failed_sms_to_a_non_critical_recipient_does_not_call(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    route(twilio_app, add_tip(twilio_app, "someone is selling vapes in the bathroom", T0), T0)
    sender = sender_for(twilio_app)
    sender.send_owed(T0)
    sender.notifier.close()
    sms = [m for m in outbound(twilio_app, channel="sms") if m.provider_sid][0]
    params = {"MessageSid": sms.provider_sid or "", "MessageStatus": "failed"}
    assert post_signed(twilio_app.test_client(), "/sms/status", params).status_code == 204
    assert [m.status for m in outbound(twilio_app, channel="sms") if m.id == sms.id] == ["failed"]
    assert outbound(twilio_app, channel="voice") == []


def test_a_timeout_that_did_create_the_message_is_not_sent_twice(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    """Twilio took the message but the answer never arrived: the retry finds it by listing."""
    created: list[dict[str, str]] = []

    def slow_then_list(req: Recorded) -> tuple[int, bytes, str]:
        with fake_twilio.lock:
            fake_twilio.requests.append(req)
        if req.method == "POST" and req.path.endswith("/Messages.json"):
            sid = f"SM{len(created):032x}"
            created.append(
                {
                    "sid": sid,
                    "to": req.form["To"],
                    "from": req.form["From"],
                    "body": req.form["Body"],
                    "status": "queued",
                    "date_created": format_datetime(utcnow(), usegmt=True),
                }
            )
            time.sleep(1.0)  # longer than the notifier's timeout below
            return 201, json.dumps(created[-1]).encode(), "application/json"
        if req.method == "GET" and req.path.endswith("/Messages.json"):
            page = {
                "messages": list(reversed(created)),
                "next_page_uri": None,
                "page": 0,
                "page_size": 20,
                "uri": req.path,
            }
            return 200, json.dumps(page).encode(), "application/json"
        return (
            201,
            json.dumps({"sid": "CA" + "0" * 32, "status": "queued"}).encode(),
            ("application/json"),
        )

    fake_twilio.handle = slow_then_list  # type: ignore[method-assign]
    now = utcnow()
    route(twilio_app, add_tip(twilio_app, GUN, now), now)
    sender = sender_for(twilio_app, timeout=0.3)
    kinds = sender.send_owed(now)
    assert sorted(kinds) == ["retry", "sent"]  # the SMS timed out; the call went through
    [sms] = outbound(twilio_app, channel="sms")
    assert sms.status == "unknown"
    assert sms.provider_sid is None
    time.sleep(1.0)
    assert sender.send_owed(utcnow() + timedelta(seconds=2)) == ["sent"]
    sender.notifier.close()
    posts = [r for r in fake_twilio.messages() if r.method == "POST"]
    assert len(posts) == 1
    [sms] = outbound(twilio_app, channel="sms")
    assert sms.provider_sid == created[0]["sid"]
    assert [a[1] for a in attempts(twilio_app, sms.id)] == ["ambiguous", "sent"]


def test_a_timeout_with_nothing_created_is_sent_again(
    twilio_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(twilio_app, tmp_path, SMS_ONLY)
    original = fake_twilio.handle
    calls = {"n": 0}

    def first_hangs(req: Recorded) -> tuple[int, bytes, str]:
        if req.method == "POST" and req.path.endswith("/Messages.json"):
            calls["n"] += 1
            if calls["n"] == 1:
                time.sleep(0.8)
                return 500, b"{}", "application/json"  # too late: the client gave up
        if req.method == "GET":
            page = {"messages": [], "next_page_uri": None, "page": 0, "uri": req.path}
            return 200, json.dumps(page).encode(), "application/json"
        return original(req)

    fake_twilio.handle = first_hangs  # type: ignore[method-assign]
    now = utcnow()
    route(twilio_app, add_tip(twilio_app, GUN, now), now)
    sender = sender_for(twilio_app, timeout=0.3)
    assert sender.send_owed(now) == ["retry"]
    assert sender.send_owed(now + timedelta(seconds=2)) == ["sent"]
    sender.notifier.close()
    assert len(fake_twilio.messages()) == 1  # only the successful POST was recorded


def test_recipient_without_a_phone_is_skipped_with_a_warning(
    twilio_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    from tipline.models import Staff  # noqa: PLC0415

    with twilio_app.app_context():
        ruiz = db.session.scalars(select(Staff).where(Staff.key == "ruiz")).one()
        ruiz.phone = None
        db.session.commit()
    with caplog.at_level("WARNING"):
        route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    assert {(m.channel, m.status) for m in outbound(twilio_app)} == {
        ("sms", "skipped"),
        ("voice", "skipped"),
    }
    assert "ruiz" in caplog.text
    assert "no phone" in caplog.text


def test_email_without_smtp_is_skipped_with_a_warning(
    twilio_app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    use_config(twilio_app, tmp_path, EMAIL_ONLY)
    route(twilio_app, add_tip(twilio_app, GUN, T0), T0)
    sender = sender_for(twilio_app)
    with caplog.at_level("WARNING"):
        assert sender.send_owed(T0) == ["skipped"]
    assert "TIPLINE_SMTP_URL" in caplog.text
    sender.notifier.close()
