"""SMS intake through the real webhook: signatures, threading, keywords, replies, bad input."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from xml.etree import ElementTree

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, select
from twilio.request_validator import HMAC_SHA256
from werkzeug.test import TestResponse

from tests.conftest import (
    app_for,
    count,
    post_signed,
    sign,
    sms_params,
    twiml_text,
)
from tipline.db import utcnow
from tipline.extensions import db
from tipline.intake import keywords, sms
from tipline.models import InboundSid, Message, Tip, Tipster
from tipline.platform.services import ALERTS_QUEUE, services
from workers.runner import dispatch_marked, dispatch_pending

PHONE = "+15551230001"
OTHER_PHONE = "+15551230002"
LINCOLN = "+15550000100"
WASHINGTON = "+15550000200"
RUIZ = "+15550000111"
CODE = re.compile(r"\bT\d{4,}\b")


def post(client: FlaskClient, params: dict[str, str], *, signed: bool = False) -> TestResponse:
    if signed:
        return post_signed(client, "/sms/inbound", params)
    return client.post("/sms/inbound", data=params)


def reply_text(resp: TestResponse) -> str:
    """The text of the TwiML <Message>, or "" for an empty <Response/>."""
    assert resp.mimetype == "text/xml"
    root = ElementTree.fromstring(resp.data)  # noqa: S314 - our own TwiML, not untrusted
    assert root.tag == "Response"
    return twiml_text(resp)


def tips(app: Flask) -> list[Tip]:
    with app.app_context():
        found = list(db.session.scalars(select(Tip).order_by(Tip.created_at)))
        db.session.expunge_all()
        return found


def tip_text(app: Flask, tip_id: str) -> str:
    with app.app_context():
        tip = db.session.get(Tip, tip_id)
        assert tip is not None
        return services(app).vault.get_text(tip, "body") or ""


# -- signatures ------------------------------------------------------------------------------


def test_signed_webhook_is_accepted(twilio_app: Flask) -> None:
    resp = post(
        twilio_app.test_client(), sms_params("a fight after school by the gym"), signed=True
    )
    assert resp.status_code == 200
    assert CODE.search(reply_text(resp))
    assert count(twilio_app, Tip) == 1


def test_unsigned_webhook_is_rejected_when_twilio_is_configured(twilio_app: Flask) -> None:
    resp = post(twilio_app.test_client(), sms_params("a fight after school by the gym"))
    assert resp.status_code == 403
    assert count(twilio_app, Tip) == 0


@pytest.mark.parametrize("how", ["wrong token", "other params", "other path"])
def test_wrongly_signed_webhook_is_rejected(twilio_app: Flask, how: str) -> None:
    params = sms_params("a fight after school by the gym")
    if how == "wrong token":
        signature = sign("/sms/inbound", params, token="not-the-token")
    elif how == "other params":
        signature = sign("/sms/inbound", {**params, "Body": "something else"})
    else:
        signature = sign("/sms/status", params)
    resp = twilio_app.test_client().post(
        "/sms/inbound", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert resp.status_code == 403
    assert count(twilio_app, Tip) == 0


SHARED_KEY_ID, SHARED_SECRET = "webhooks_sharedkey_01test", "shared-secret-0123456789"


@pytest.fixture
def shared_key_app(twilio_env: dict[str, str]) -> Iterator[Flask]:
    """Twilio configured as a district using a Webhook Rule: a SharedKey signs the webhooks."""
    keys = f"{SHARED_KEY_ID}:{SHARED_SECRET}"
    with app_for({**twilio_env, "TWILIO_WEBHOOK_SHARED_KEYS": keys}) as app:
        yield app


def shared_key_headers(
    params: dict[str, str], *, key_id: str = SHARED_KEY_ID, secret: str = SHARED_SECRET
) -> dict[str, str]:
    """The headers Twilio sends when a Webhook Rule signs with a SharedKey and HMAC-SHA256."""
    return {
        "X-Twilio-Signature": sign("/sms/inbound", params, token=secret, algorithm=HMAC_SHA256),
        "X-Twilio-Webhooks-Signature-Settings": f"key={key_id},algorithm={HMAC_SHA256}",
    }


def test_a_webhook_signed_with_a_shared_key_is_accepted(shared_key_app: Flask) -> None:
    params = sms_params("a fight after school by the gym")
    resp = shared_key_app.test_client().post(
        "/sms/inbound", data=params, headers=shared_key_headers(params)
    )
    assert resp.status_code == 200
    assert CODE.search(reply_text(resp))
    assert count(shared_key_app, Tip) == 1
    # the Auth Token's signature still works beside it (webhooks no Rule matches)
    assert post(shared_key_app.test_client(), sms_params("vapes"), signed=True).status_code == 200


@pytest.mark.parametrize("how", ["wrong secret", "auth token", "sha1", "other params"])
def test_a_wrong_shared_key_signature_is_rejected(shared_key_app: Flask, how: str) -> None:
    params = sms_params("a fight after school by the gym")
    headers = shared_key_headers(params)
    if how == "wrong secret":
        headers = shared_key_headers(params, secret="not-the-secret")
    elif how == "auth token":  # the header says SharedKey: the Auth Token may not stand in
        headers["X-Twilio-Signature"] = sign("/sms/inbound", params)
    elif how == "sha1":  # signed with the key, but not with the algorithm the header names
        headers["X-Twilio-Signature"] = sign("/sms/inbound", params, token=SHARED_SECRET)
    else:
        headers = shared_key_headers({**params, "Body": "something else"})
    resp = shared_key_app.test_client().post("/sms/inbound", data=params, headers=headers)
    assert resp.status_code == 403
    assert count(shared_key_app, Tip) == 0


def test_a_shared_key_tipline_does_not_hold_is_a_403_that_says_which(
    twilio_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    params = sms_params("a fight after school by the gym")
    resp = twilio_app.test_client().post(
        "/sms/inbound", data=params, headers=shared_key_headers(params)
    )
    assert resp.status_code == 403
    assert SHARED_KEY_ID in caplog.text
    assert "TWILIO_WEBHOOK_SHARED_KEYS" in caplog.text
    assert SHARED_SECRET not in caplog.text
    assert count(twilio_app, Tip) == 0


def test_an_unknown_signature_algorithm_is_a_403_not_a_500(
    shared_key_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    params = sms_params("a fight after school by the gym")
    headers = shared_key_headers(params)
    headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={SHARED_KEY_ID},algorithm=HMAC_SHA3"
    resp = shared_key_app.test_client().post("/sms/inbound", data=params, headers=headers)
    assert resp.status_code == 403
    assert "HMAC_SHA3" in caplog.text
    assert count(shared_key_app, Tip) == 0


def test_console_mode_accepts_unsigned_webhooks(client: FlaskClient, app: Flask) -> None:
    resp = post(client, sms_params("someone is selling vapes in the bathroom"))
    assert resp.status_code == 200
    assert count(app, Tip) == 1


# -- threading ---------------------------------------------------------------------------------


def test_followup_threads_into_the_same_tip(client: FlaskClient, app: Flask) -> None:
    first = reply_text(post(client, sms_params("someone is selling vapes in the bathroom")))
    second = reply_text(post(client, sms_params("it is the kid with the red backpack")))
    [tip] = tips(app)
    assert tip.code in first
    assert second == f"Added to your tip {tip.code}."
    assert tip.message_count == 2
    assert count(app, Message) == 1


def test_a_different_phone_makes_a_different_tip(client: FlaskClient, app: Flask) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom", from_=PHONE))
    post(client, sms_params("someone is selling vapes in the bathroom", from_=OTHER_PHONE))
    assert len(tips(app)) == 2
    assert count(app, Tipster) == 2


def test_the_same_phone_at_another_school_makes_a_different_tip(
    client: FlaskClient, app: Flask
) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom", to=LINCOLN))
    post(client, sms_params("someone is selling vapes in the bathroom", to=WASHINGTON))
    assert len(tips(app)) == 2
    assert count(app, Tipster) == 1


@pytest.mark.parametrize(("word", "language"), [("NEW", "en"), ("new", "en"), ("Nuevo", "es")])
def test_new_starts_a_fresh_tip(client: FlaskClient, app: Flask, word: str, language: str) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom"))
    answer = reply_text(post(client, sms_params(word)))
    assert "new tip" in answer if language == "en" else "aviso nuevo" in answer
    assert len(tips(app)) == 1  # the word itself is not a tip
    post(client, sms_params("a fight is planned behind the gym on friday"))
    post(client, sms_params("around 3pm"))
    first, second = tips(app)
    assert first.id != second.id
    assert "fight" in tip_text(app, second.id)
    assert second.message_count == 2  # later texts thread into the fresh tip
    assert first.message_count == 1


def test_new_from_an_unknown_phone_stores_no_tip(client: FlaskClient, app: Flask) -> None:
    assert "new tip" in reply_text(post(client, sms_params("NEW")))
    assert count(app, Tip) == 0
    assert count(app, Tipster) == 0


def test_followup_window_expiry_starts_a_new_tip(app: Flask) -> None:
    svc, start = services(app), utcnow()

    def receive(body: str, hours: float) -> sms.SmsOutcome:
        with app.app_context():
            params = sms_params(body)
            return sms.receive_and_commit(
                db.session(),
                svc,
                to=params["To"],
                from_=params["From"],
                body=body,
                sid=params["MessageSid"],
                media=[],
                now=start + timedelta(hours=hours),
            )

    first = receive("someone is selling vapes in the bathroom", 0)
    assert receive("the kid with the red backpack", 71).tip_id == first.tip_id
    # The window runs from the tip's last activity (hour 71), not from its creation.
    assert receive("he was there again today", 71 + 71).tip_id == first.tip_id
    later = receive("now they sell them at the bus stop", 142 + 73)
    assert later.kind == "tip"
    assert later.tip_id != first.tip_id


def test_a_closed_tip_never_threads(client: FlaskClient, app: Flask) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom"))
    with app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        tip.status = "closed"
        db.session.commit()
    post(client, sms_params("they are back at it"))
    assert len(tips(app)) == 2


def test_window_follows_the_school_setting(client: FlaskClient, app: Flask) -> None:
    with app.app_context():
        from tipline.models import School  # noqa: PLC0415

        school = db.session.scalars(select(School).where(School.sms_number == LINCOLN)).one()
        school.followup_window_s = 60
        db.session.commit()
    post(client, sms_params("someone is selling vapes in the bathroom"))
    with app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        tip.last_activity_at = utcnow() - timedelta(seconds=61)
        db.session.commit()
    post(client, sms_params("they are back at it"))
    assert len(tips(app)) == 2


def test_replayed_message_sid_creates_one_tip_and_gets_the_same_reply(
    twilio_app: Flask,
) -> None:
    client = twilio_app.test_client()
    params = sms_params("he showed a knife at lunch today")
    first = post(client, params, signed=True)
    again = post(client, params, signed=True)
    assert again.status_code == 200
    assert reply_text(again) == reply_text(first)
    assert count(twilio_app, Tip) == 1
    assert count(twilio_app, InboundSid) == 1
    followup = sms_params("it was a folding knife")
    assert reply_text(post(client, followup, signed=True)) == reply_text(
        post(client, followup, signed=True)
    )
    assert count(twilio_app, Message) == 1


# -- what is never a tip -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "word",
    ["STOP", "stop", "Stop.", "HELP", "ALTO", "AYUDA", "STOP ALL", "unsubscribe", "START", "info"],
)
def test_carrier_keywords_are_never_tips_and_store_nothing(
    client: FlaskClient, app: Flask, word: str
) -> None:
    resp = post(client, sms_params(word))
    assert resp.status_code == 200
    assert reply_text(resp) == ""
    for model in (Tip, Tipster, InboundSid, Message):
        assert count(app, model) == 0


def test_every_twilio_keyword_is_recognized() -> None:
    for word in ["STOPALL", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "PARAR", "UNSTOP", "YES"]:
        assert keywords.is_carrier_keyword(f" {word.lower()} ")
    assert not keywords.is_carrier_keyword("stop him before he hurts someone")


@pytest.mark.parametrize("body", ["ACK 1234", "there is a gun in the gym"])
def test_staff_phone_is_a_command_never_a_tip(client: FlaskClient, app: Flask, body: str) -> None:
    resp = post(client, sms_params(body, from_=RUIZ))
    assert resp.status_code == 200
    assert reply_text(resp)  # the staff command's answer, never a tip receipt
    assert count(app, Tip) == 0
    assert count(app, Tipster) == 0


def test_ack_from_a_student_is_an_ordinary_tip(client: FlaskClient, app: Flask) -> None:
    resp = post(client, sms_params("ACK 1234"))
    assert CODE.search(reply_text(resp))
    assert count(app, Tip) == 1


def test_blocked_tipster_gets_an_empty_reply_and_nothing_is_stored(
    client: FlaskClient, app: Flask
) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom"))
    with app.app_context():
        db.session.scalars(select(Tipster)).one().blocked = True
        db.session.commit()
    resp = post(client, sms_params("spam spam spam"))
    assert resp.status_code == 200
    assert reply_text(resp) == ""
    assert count(app, Message) == 0
    assert count(app, InboundSid) == 1


# -- replies -----------------------------------------------------------------------------------


def test_first_reply_says_911_and_the_monitored_hours(client: FlaskClient, app: Flask) -> None:
    text = reply_text(post(client, sms_params("someone is selling vapes in the bathroom")))
    [tip] = tips(app)
    assert tip.code in text
    assert "call 911" in text
    assert "Mon-Fri 07:00-16:00" in text
    assert "988" not in text
    other = reply_text(post(client, sms_params("a fight at recess", to=WASHINGTON)))
    assert "Mon-Fri 07:30-15:30" in other


def test_spanish_tip_gets_a_spanish_reply(client: FlaskClient, app: Flask) -> None:
    text = reply_text(post(client, sms_params("hay una pelea en el baño de la escuela")))
    [tip] = tips(app)
    assert tip.language == "es"
    assert f"Tu código es {tip.code}" in text
    assert "llama al 911" in text
    assert "lun-vie 07:00-16:00" in text
    followup = reply_text(post(client, sms_params("ok")))
    assert followup == f"Añadido a tu aviso {tip.code}."  # the remembered language
    with app.app_context():
        assert db.session.scalars(select(Tipster)).one().language == "es"


@pytest.mark.parametrize(
    ("body", "lifeline"),
    [
        ("i want to kill myself", "988 Suicide & Crisis Lifeline"),
        (
            "mi amiga dice que se quiere matar, tiene pastillas",
            "Línea 988 de Prevención del Suicidio y Crisis",
        ),
    ],
)
def test_self_harm_tip_reply_gives_the_988_lifeline(
    client: FlaskClient, app: Flask, body: str, lifeline: str
) -> None:
    text = reply_text(post(client, sms_params(body)))
    assert lifeline in text
    assert "988" in text
    assert "911" in text
    assert tips(app)[0].category == "self_harm"


def test_self_harm_followup_reply_gives_the_988_lifeline(client: FlaskClient) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom"))
    text = reply_text(post(client, sms_params("also i want to kill myself")))
    assert text.startswith("Added to your tip T")
    assert "988" in text


# -- routing -----------------------------------------------------------------------------------


def forget_queued(app: Flask) -> None:
    """As if the routing jobs queued so far had run."""
    queued_job_ids(app, ALERTS_QUEUE)
    services(app).queue(ALERTS_QUEUE).empty()  # type: ignore[no-untyped-call]


def queued_job_ids(app: Flask, name: str) -> list[str]:
    """The rq jobs queued once the worker's dispatcher has taken what intake handed off."""
    dispatch_pending(services(app))
    dispatch_marked(app)  # a first text on PostgreSQL is handed off by NOTIFY, not the list
    return list(services(app).queue(name).get_job_ids())


def test_a_tip_is_marked_for_routing_and_a_route_job_is_queued(
    client: FlaskClient, app: Flask
) -> None:
    post(client, sms_params("he brought a gun to school"))
    [tip] = tips(app)
    assert tip.needs_routing
    assert tip.severity == "critical"
    assert f"route-{tip.id}" in queued_job_ids(app, ALERTS_QUEUE)


def test_a_more_severe_followup_raises_the_tip_and_routes_it_again(
    client: FlaskClient, app: Flask
) -> None:
    post(client, sms_params("someone is selling vapes in the bathroom"))
    forget_queued(app)
    with app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        assert tip.severity == "normal"
        tip.needs_routing = False  # as if routed
        db.session.commit()
    post(client, sms_params("and he brought a gun to school today"))
    [tip] = tips(app)
    assert (tip.severity, tip.category) == ("critical", "weapon")
    assert tip.needs_routing
    assert f"route-{tip.id}" in queued_job_ids(app, ALERTS_QUEUE)


def test_a_milder_followup_never_lowers_the_tip(client: FlaskClient, app: Flask) -> None:
    post(client, sms_params("he brought a gun to school"))
    forget_queued(app)
    with app.app_context():
        db.session.scalars(select(Tip)).one().needs_routing = False
        db.session.commit()
    post(client, sms_params("jk"))
    [tip] = tips(app)
    assert tip.severity == "critical"
    assert not tip.needs_routing
    assert queued_job_ids(app, ALERTS_QUEUE) == []


def test_webhook_answers_normally_with_redis_unreachable(client: FlaskClient, app: Flask) -> None:
    svc = services(app)
    real = svc.redis
    svc.__dict__["redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        resp = post(client, sms_params("he brought a gun to school"))
    finally:
        svc.__dict__["redis"] = real
    assert resp.status_code == 200
    assert CODE.search(reply_text(resp))
    assert tips(app)[0].needs_routing


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["From", "To", "Body", "MessageSid"])
def test_missing_field_is_a_400(client: FlaskClient, app: Flask, missing: str) -> None:
    params = sms_params("someone is selling vapes in the bathroom")
    del params[missing]
    assert post(client, params).status_code == 400
    assert count(app, Tip) == 0


@pytest.mark.parametrize(
    "raw_body",
    [b"a%00fight%00after%00school", b"%FF%FEa fight after school", b"%00%00", b"%C3%28%ED%A0%80"],
)
def test_nul_bytes_and_invalid_utf8_never_cause_a_500(
    client: FlaskClient, app: Flask, raw_body: bytes
) -> None:
    params = sms_params("x")
    form = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in params.items() if k != "Body")
    resp = client.post(
        "/sms/inbound",
        data=form.encode() + b"&Body=" + raw_body,
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code < 500
    for tip in tips(app):
        with app.app_context():
            row = db.session.execute(select(Tip.__table__.c.body).where(Tip.id == tip.id)).one()
        assert b"fight" not in row[0]  # sealed, not stored as sent
        assert "\x00" not in tip_text(app, tip.id)


def test_a_5_mb_body_is_a_413_not_a_500(client: FlaskClient, app: Flask) -> None:
    resp = post(client, sms_params("x" * (5 * 1024 * 1024)))
    assert resp.status_code == 413
    assert count(app, Tip) == 0


def test_a_5_mb_body_is_a_413_when_signed_too(twilio_app: Flask) -> None:
    params = sms_params("x" * (5 * 1024 * 1024))
    resp = post(twilio_app.test_client(), params, signed=True)
    assert resp.status_code == 413


def test_unknown_to_number_gets_a_404_and_no_tip(client: FlaskClient, app: Flask) -> None:
    for to in ["+15559999999", "not a number", "+1555\x00"]:
        resp = post(client, sms_params("he brought a gun to school", to=to))
        assert resp.status_code == 404
        assert reply_text(resp) == ""
    assert count(app, Tip) == 0


@pytest.mark.parametrize("sender", ["12345", "ACME School", "+1", "+1555"])
def test_non_e164_sender_gets_empty_twiml_and_no_tip(
    client: FlaskClient, app: Flask, sender: str
) -> None:
    resp = post(client, sms_params("he brought a gun to school", from_=sender))
    assert resp.status_code == 200
    assert reply_text(resp) == ""
    assert count(app, Tip) == 0


def test_an_empty_text_asks_for_words_and_stores_nothing(client: FlaskClient, app: Flask) -> None:
    resp = post(client, sms_params("   "))
    assert "empty" in reply_text(resp)
    assert count(app, Tip) == 0


# -- privacy -----------------------------------------------------------------------------------

PHONE_FORMS = [
    "+15551230001",
    "15551230001",
    "5551230001",
    "(555) 123-0001",
    "555-123-0001",
    "1230001",
    "123-0001",
    "555.123.0001",
]


def dump_database(app: Flask) -> str:
    """repr of every row of every table, bytes included.

    The tables are read from the database itself, not the models: a table only a migration
    knows about is searched too.
    """
    with app.app_context():
        tables = MetaData()
        tables.reflect(bind=db.engine)
        out = []
        for table in tables.sorted_tables:
            for row in db.session.execute(select(table)):
                out.append(f"{table.name}: {row!r}")
        return "\n".join(out)


def test_no_table_holds_the_tip_text_or_any_form_of_the_phone(
    client: FlaskClient, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = ["Jordan brought a gun in his blue duffel", "he keeps it in locker 1138"]
    for text in texts:
        assert post(client, sms_params(text, from_=PHONE)).status_code == 200
    post(client, sms_params("NEW", from_=PHONE))
    post(client, sms_params("STOP", from_=PHONE))
    dump = dump_database(app)
    assert "tip:" in dump
    assert "tipster:" in dump
    for secret in [*texts, "Jordan", "duffel", "locker 1138"]:
        assert secret not in dump
        assert secret not in caplog.text
    for form in PHONE_FORMS:
        assert form not in dump
        assert form not in caplog.text
    with app.app_context():
        tipster = db.session.scalars(select(Tipster)).one()
        assert services(app).vault.get_text(tipster, "phone") == PHONE  # sealed, for replies


def test_the_webhook_path_imports_no_twilio_rest_client_or_http_library() -> None:
    code = (
        "import sys, tipline.web.sms.views, tipline.intake.sms; "
        "print(sorted(m for m in sys.modules if m.startswith(('twilio.rest', 'requests'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "text", ["Tip T1234 at Lincoln & Park <High>", 'He said "911"', "Código: ñ\n]]>"]
)
def test_reply_twiml_is_what_twilios_library_writes(text: str) -> None:
    from twilio.twiml.messaging_response import MessagingResponse  # noqa: PLC0415

    from tipline.web.sms.views import twiml  # noqa: PLC0415

    expected = MessagingResponse()
    expected.message(text)
    assert twiml(text) == str(expected)
