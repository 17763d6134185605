"""Follow-ups by receipt: the conversation, new messages, re-triage, limits, Redis down."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.web import (
    Page,
    csrf_from,
    dump_tables,
    post_tip,
    stored_anywhere,
    submit_tip,
)
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.intake import receipts, records
from tipline.intake.receipts import normalize_code
from tipline.models import Message, Tip
from tipline.platform.ratelimit import Limits
from tipline.platform.services import ALERTS_QUEUE, services
from tipline.web.report import views
from workers.runner import dispatch_pending

LOW_TIP = "someone keeps taking my calculator in math class"
CRITICAL = "he has a gun in his backpack at school right now"


def followup(client: FlaskClient, code: str, passphrase: str, message: str = "") -> Any:
    data = {"csrf_token": csrf_from(client, "/followup"), "code": code, "passphrase": passphrase}
    if message:
        data["message"] = message
    return client.post("/followup", data=data)


def reply(client: FlaskClient, page: Page, message: str) -> Any:
    return client.post(
        "/followup",
        data={
            "csrf_token": page.value("csrf_token"),
            "token": page.value("token"),
            "message": message,
        },
    )


def the_tip(app: Flask) -> Tip:
    tip = db.session.scalars(select(Tip)).one()
    assert isinstance(tip, Tip)
    return tip


def test_followup_form_asks_for_the_code_then_the_passphrase(client: FlaskClient) -> None:
    page = Page(client.get("/followup").get_data(as_text=True))
    first, second = page.text_inputs()[:2]
    assert (first["name"], second["name"]) == ("code", "passphrase")
    assert any(f["tag"] == "textarea" and f["name"] == "message" for f in page.inputs)
    assert "call 911" in page.html


def test_followup_shows_the_whole_conversation_with_staff_replies(
    app: Flask, client: FlaskClient
) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    with app.app_context():
        tip = the_tip(app)
        records.add_message(
            dbsession(),
            services(app).vault,
            tip,
            direction="out",
            channel="web",
            text="Thanks, we will talk to the teacher.",
            now=utcnow(),
        )
        db.session.commit()
    resp = followup(client, code, passphrase)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_data(as_text=True)
    assert LOW_TIP in body
    assert "Thanks, we will talk to the teacher." in body
    assert "School staff" in body
    assert body.index(LOW_TIP) < body.index("Thanks, we will")
    assert Page(body).value("token")


def test_code_and_passphrase_are_normalized_when_read_back(app: Flask, client: FlaskClient) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    sloppy_code = " " + code.replace("-", " ").lower().replace("0", "o").replace("1", "l") + " "
    sloppy_pass = "  " + passphrase.upper().replace(" ", " - ") + "\n"
    resp = followup(client, sloppy_code, sloppy_pass)
    assert resp.status_code == 200
    assert LOW_TIP in resp.get_data(as_text=True)


def test_wrong_code_and_wrong_passphrase_get_the_same_generic_error(
    app: Flask, client: FlaskClient
) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    other = "0000-0000-0000-0000" if normalize_code(code) != "0" * 16 else "1111-1111-1111-1111"
    answers = [
        followup(client, code, passphrase + " extra"),
        followup(client, other, passphrase),
        followup(client, "not a code at all", passphrase),
    ]
    bodies = [re.sub(r'value="[^"]*"', "", a.get_data(as_text=True)) for a in answers]
    assert {a.status_code for a in answers} == {200}
    assert bodies[0] == bodies[1] == bodies[2]
    assert "do not open a tip" in bodies[0]
    assert Page(answers[1].get_data(as_text=True)).value("passphrase") == ""
    assert LOW_TIP not in bodies[0]


def test_followup_message_is_sealed_and_a_more_severe_one_reroutes(
    app: Flask, client: FlaskClient
) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    svc = services(app)
    with app.app_context():
        tip = the_tip(app)
        assert tip.severity in ("low", "normal")
        tip.needs_routing = False  # as if the routing job had run
        tip.routed_at = utcnow()
        db.session.commit()
        tip_id = tip.id
    svc.redis.flushdb()

    resp = followup(client, code, passphrase, message=CRITICAL)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert LOW_TIP in body
    assert CRITICAL in body
    with app.app_context():
        tip = the_tip(app)
        assert tip.severity == "critical"
        assert tip.category == "weapon"
        assert tip.needs_routing
        assert tip.message_count == 2
        msg = db.session.scalars(select(Message)).one()
        assert (msg.direction, msg.channel) == ("in", "web")
        assert svc.vault.get_text(msg, "body") == CRITICAL
    dispatch_pending(svc)  # the worker's dispatcher turns the hand-off into the routing job
    assert f"route-{tip_id}" in svc.queue(ALERTS_QUEUE).job_ids
    assert not stored_anywhere(dump_tables(app), CRITICAL)


def test_a_calmer_followup_never_lowers_the_severity(app: Flask, client: FlaskClient) -> None:
    code, passphrase = submit_tip(client, CRITICAL)
    with app.app_context():
        tip = the_tip(app)
        before = tip.severity
        tip.needs_routing = False
        db.session.commit()
    resp = followup(client, code, passphrase, message="jk it was a toy, nobody is hurt")
    assert resp.status_code == 200
    with app.app_context():
        tip = the_tip(app)
        assert tip.severity == before
        assert not tip.needs_routing


def test_reply_form_adds_messages_without_asking_again(app: Flask, client: FlaskClient) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    page = Page(followup(client, code, passphrase).get_data(as_text=True))
    assert "passphrase" not in {f.get("name") for f in page.inputs}  # not written back
    resp = reply(client, page, "it happened again today")
    assert resp.status_code == 200
    page = Page(resp.get_data(as_text=True))
    assert "it happened again today" in page.html
    assert "Your message was added." in page.html
    resp = reply(client, page, "and yesterday")
    assert "and yesterday" in resp.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(Message)).all()) == 2


def test_empty_reply_shows_an_error_tied_to_the_field(app: Flask, client: FlaskClient) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    page = Page(followup(client, code, passphrase).get_data(as_text=True))
    page = Page(reply(client, page, "   ").get_data(as_text=True))
    assert "Write a message" in page.text("message-error")
    assert page.attrs("message")["aria-describedby"] == "message-hint message-error"
    with app.app_context():
        assert db.session.scalars(select(Message)).all() == []


@pytest.mark.parametrize("how", ["tampered", "expired"])
def test_a_bad_or_old_reply_token_asks_for_the_receipt_again(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    page = Page(followup(client, code, passphrase).get_data(as_text=True))
    token = page.value("token")
    if how == "tampered":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    else:
        monkeypatch.setattr(views, "TOKEN_MAX_AGE", -1)
    resp = client.post(
        "/followup",
        data={"csrf_token": page.value("csrf_token"), "token": token, "message": "more"},
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "timed out" in body
    assert LOW_TIP not in body
    with app.app_context():
        assert db.session.scalars(select(Message)).all() == []


def test_a_blocked_sender_cannot_post_through_a_page_already_open(
    app: Flask, client: FlaskClient
) -> None:
    """The attack: keep the follow-up page open, get blocked, and go on posting through it."""
    code, passphrase = submit_tip(client, LOW_TIP)
    page = Page(followup(client, code, passphrase).get_data(as_text=True))
    with app.app_context():
        tipster = the_tip(app).tipster
        assert tipster is not None
        tipster.blocked = True
        db.session.commit()
    resp = reply(client, page, "still here, still posting")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "timed out" in body  # the same page as a stale token: nothing says "blocked"
    assert LOW_TIP not in body
    assert followup(client, code, passphrase, message="and again").status_code == 200
    with app.app_context():
        assert db.session.scalars(select(Message)).all() == []


def test_followup_without_csrf_token_is_rejected(app: Flask, client: FlaskClient) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    resp = client.post("/followup", data={"code": code, "passphrase": passphrase})
    assert resp.status_code == 400
    assert LOW_TIP not in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("7K3M-QX2P-9D4R-HC6W", "7K3MQX2P9D4RHC6W"),
        ("7k3m qx2p 9d4r hc6w", "7K3MQX2P9D4RHC6W"),
        (" 7K3MQX2P9D4RHC6W\n", "7K3MQX2P9D4RHC6W"),
        ("7K3M\u2013QX2P\u2014O01L-IiLl", "7K3MQX2P00111111"),  # phone dashes, O/I/L
        ("7K3M-QX2P-9D4R-HC6", None),
        ("7K3M-QX2P-9D4R-HC6U", None),  # U is not a Crockford digit
    ],
)
def test_typed_codes_are_normalized(typed: str, normal: str | None) -> None:
    assert receipts.normalize_code(typed) == normal


def test_passphrases_are_normalized() -> None:
    assert receipts.normalize_passphrase("  Apple-TREE\tyo-yo  ") == "apple tree yo yo"
    assert receipts.normalize_passphrase("apple tree yo yo") == "apple tree yo yo"


# -- rate limits ----------------------------------------------------------------------------


def test_wrong_passphrases_are_rate_limited_even_with_the_right_one(
    app: Flask, client: FlaskClient
) -> None:
    code, passphrase = submit_tip(client, LOW_TIP)
    other_code, other_pass = submit_tip(client, "another student's tip")
    for _ in range(Limits().per_key):
        resp = followup(client, code, "wrong words entirely")
        assert resp.status_code == 200
        assert "do not open a tip" in resp.get_data(as_text=True)
    resp = followup(client, code, passphrase)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 429
    assert "Too many attempts" in body
    assert "15 minutes" in body
    assert int(resp.headers["Retry-After"]) > 0
    assert LOW_TIP not in body
    # The code's spelling does not matter to the limiter, and other receipts still work.
    assert followup(client, code.lower().replace("-", ""), passphrase).status_code == 429
    assert followup(client, other_code, other_pass).status_code == 200
    # Redis holds keyed hashes only: no code, no passphrase.
    for key in services(app).redis.scan_iter():
        assert (normalize_code(code) or "").encode() not in key.upper()


def test_junk_posts_on_random_codes_do_not_close_followups_for_everyone(
    app: Flask, client: FlaskClient
) -> None:
    """The attack: one person posts wrong guesses for many codes to lock every student out."""
    code, passphrase = submit_tip(client, LOW_TIP)
    token = csrf_from(client, "/followup")
    for _ in range(150):
        junk = receipts.format_code(receipts.new_code())
        resp = client.post(
            "/followup", data={"csrf_token": token, "code": junk, "passphrase": "some words"}
        )
        assert resp.status_code == 200
        assert "do not open a tip" in resp.get_data(as_text=True)
    resp = followup(client, code, passphrase)
    assert resp.status_code == 200
    assert LOW_TIP in resp.get_data(as_text=True)


# -- Redis down -----------------------------------------------------------------------------


def test_redis_down_refuses_followups_with_503_but_tips_are_still_stored(
    dead_redis_app: Flask,
) -> None:
    client = dead_redis_app.test_client()
    code, passphrase = submit_tip(client, CRITICAL)
    with dead_redis_app.app_context():
        tip = the_tip(dead_redis_app)
        assert tip.needs_routing  # the sweeper routes it once Redis is back
        assert tip.routed_at is None

    assert client.get("/followup").status_code == 200
    resp = followup(client, code, passphrase)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 503
    assert "try again" in body.lower()
    assert "Retry-After" in resp.headers
    assert CRITICAL not in body
    resp = post_tip(client, "a second tip while Redis is down")
    assert resp.status_code == 200
