"""Twilio status callbacks: delivery state moves forward only, unknown SIDs are harmless."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import ACCOUNT_SID, post_signed
from tipline.db import new_id, utcnow
from tipline.extensions import db
from tipline.models import OutboundMessage
from tipline.outbox import delivery

SID = "SM" + "a" * 32


def outbound(app: Flask, sid: str = SID, status: str = "queued") -> str:
    with app.app_context():
        msg = OutboundMessage(
            id=new_id(),
            channel="sms",
            purpose="alert",
            to_label="ruiz",
            summary="CRITICAL weapon T4821",
            status=status,
            provider_sid=sid,
            updated_at=utcnow() - timedelta(minutes=5),
        )
        db.session.add(msg)
        db.session.commit()
        return msg.id


def state(app: Flask, msg_id: str) -> tuple[str, str | None]:
    with app.app_context():
        msg = db.session.get(OutboundMessage, msg_id)
        assert msg is not None
        return msg.status, msg.error_code


def callback(
    client: FlaskClient, status: str, sid: str = SID, error: str | None = None, signed: bool = True
) -> TestResponse:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
    if error is not None:
        params["ErrorCode"] = error
    if signed:
        return post_signed(client, "/sms/status", params)
    return client.post("/sms/status", data=params)


def test_status_callbacks_update_delivery_state(twilio_app: Flask) -> None:
    msg_id = outbound(twilio_app)
    client = twilio_app.test_client()
    for status in ("sending", "sent", "delivered"):
        assert callback(client, status).status_code == 204
        assert state(twilio_app, msg_id) == (status, None)
    with twilio_app.app_context():
        msg = db.session.get(OutboundMessage, msg_id)
        assert msg is not None
        assert msg.updated_at > utcnow() - timedelta(minutes=1)


def test_a_late_status_never_moves_delivery_backwards(twilio_app: Flask) -> None:
    msg_id = outbound(twilio_app)
    client = twilio_app.test_client()
    callback(client, "delivered")
    for late in ("sent", "sending", "queued", "failed"):
        assert callback(client, late).status_code == 204
        assert state(twilio_app, msg_id) == ("delivered", None)


def test_a_failure_records_its_error_code(twilio_app: Flask) -> None:
    msg_id = outbound(twilio_app, status="sent")
    callback(twilio_app.test_client(), "undelivered", error="30003")
    assert state(twilio_app, msg_id) == ("undelivered", "30003")


def test_an_unknown_sid_is_acknowledged_without_error(twilio_app: Flask) -> None:
    msg_id = outbound(twilio_app)
    resp = callback(twilio_app.test_client(), "delivered", sid="SM" + "f" * 32)
    assert resp.status_code == 204
    assert state(twilio_app, msg_id) == ("queued", None)


@pytest.mark.parametrize(
    ("sid", "status", "error"),
    [
        (SID, "exploded", None),
        ("SM\x00abc", "delivered", None),
        (SID, "delivered\x00", None),
        (SID, "failed", "30003'; DROP TABLE tip; --"),
        ("x" * 500, "delivered", None),
    ],
)
def test_odd_callbacks_change_nothing_and_never_500(
    twilio_app: Flask, sid: str, status: str, error: str | None
) -> None:
    msg_id = outbound(twilio_app)
    resp = callback(twilio_app.test_client(), status, sid=sid, error=error)
    assert resp.status_code < 500
    got_status, got_error = state(twilio_app, msg_id)
    assert got_error is None
    assert got_status in {"queued", "failed"}


def test_unsigned_status_callback_is_rejected(twilio_app: Flask) -> None:
    msg_id = outbound(twilio_app)
    assert callback(twilio_app.test_client(), "delivered", signed=False).status_code == 403
    assert state(twilio_app, msg_id) == ("queued", None)


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus"])
def test_status_callback_without_sid_or_status_is_a_400(client: FlaskClient, missing: str) -> None:
    params = {"MessageSid": SID, "MessageStatus": "delivered"}
    del params[missing]
    assert client.post("/sms/status", data=params).status_code == 400


def test_record_status_returns_the_message_once_per_transition(app: Flask) -> None:
    outbound(app)
    now = utcnow()
    with app.app_context():
        session = db.session()
        moved = delivery.record_status(session, SID, "failed", "30008", now)
        assert moved is not None
        assert (moved.status, moved.error_code, moved.updated_at) == ("failed", "30008", now)
        assert delivery.record_status(session, SID, "failed", "30008", now) is None
        assert delivery.record_status(session, SID, "sent", None, now) is None
        assert delivery.record_status(session, "SM" + "0" * 32, "sent", None, now) is None
        session.commit()
