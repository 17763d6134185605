"""In Chromium, as staff and a student would: enroll and sign in with a code, see a new
critical tip arrive in the open queue, acknowledge it (the chain stops), reply, and the student
reads the reply on /followup."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.admin import PASSWORD, TOTP_SECRET, AuthActions, forget_last_code
from tests.support.alerting import steps, the_alert
from tests.support.browser import PHONE, RUIZ_EMAIL, Live, fits, open_followup, send_tip, sign_in
from tests.support.fakes import FakeTwilio
from tests.support.wait import wait_for
from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import AlertStep, Tip, User

pytestmark = pytest.mark.browser

WEAPON = "a kid in my class has a gun in his backpack right now, he showed it in the parking lot"
OKAFOR = "+15550000141"  # the district's phone: the chain's second step


def ruiz_login(app: Flask, *, totp: str | None = TOTP_SECRET) -> None:
    AuthActions(app, app.test_client()).create(
        RUIZ_EMAIL, "sro", ["lincoln"], totp=totp, staff="ruiz"
    )


def newest_tip(app: Flask) -> Tip:
    with app.app_context():
        tip = db.session.scalars(select(Tip).order_by(Tip.created_at.desc())).first()
        assert tip is not None
        db.session.expunge(tip)
        db.session.remove()
        return tip


def routed(app: Flask) -> bool:
    with app.app_context():
        found = db.session.scalar(select(AlertStep.id).limit(1)) is not None
        db.session.remove()
        return found


def test_first_sign_in_enrolls_a_second_factor_and_the_next_asks_for_a_code(
    live: Live, new_page: Callable[..., Any]
) -> None:
    ruiz_login(live.app, totp=None)
    page = new_page(PHONE)  # an SRO opening the link in an alert, on a phone
    page.goto(live.url + "/admin/login")
    page.fill("#email", RUIZ_EMAIL)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/login/enroll")
    assert page.locator(".qr svg").count() == 1  # drawn on the page, no image from elsewhere
    fits(page, "the enrollment page")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    assert page.locator("#recovery-codes li").count() == 10
    fits(page, "the recovery codes")
    page.click("text=Continue")
    page.wait_for_url("**/admin/")
    assert page.inner_text("h1") == "Tips"

    page.click("text=Sign out")
    page.wait_for_url("**/admin/login")
    page.fill("#email", RUIZ_EMAIL)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/login/totp")  # enrolled: a code now, no new secret
    fits(page, "the code page")
    page.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("main button[type=submit]")
    page.locator(".error-summary").wait_for()  # the answer may be delayed (sign-in delays)
    assert page.locator(".error-summary").count() == 1  # a wrong code does not get in
    forget_last_code(live.app, RUIZ_EMAIL)
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")
    with live.app.app_context():
        user = db.session.scalars(select(User).where(User.email == RUIZ_EMAIL)).one()
        assert user._totp_secret is not None
        assert user._totp_pending is None
        db.session.remove()


def test_critical_tip_appears_live_ack_stops_the_chain_and_the_reply_reaches_the_student(
    live: Live, new_page: Callable[..., Any], fake_twilio: FakeTwilio
) -> None:
    ruiz_login(live.app)
    staff = new_page()
    sign_in(live, staff)
    staff.evaluate("window.notReloaded = true")

    student = new_page()
    receipt, passphrase = send_tip(live, student, WEAPON)
    sent = time.monotonic()
    code = newest_tip(live.app).code  # staff see the tip's code, never the student's receipt

    # The queue's own script shows it: no reload (the marker survives), within 5 s.
    link = staff.locator(f"#live-queue a:text-is('{code}')").first
    link.wait_for(timeout=5000)
    assert time.monotonic() - sent < 5
    assert staff.evaluate("window.notReloaded") is True
    assert staff.locator(".critical-banner").is_visible()
    assert staff.title().startswith("(1) ")

    wait_for(lambda: routed(live.app), 10, "the worker to route the tip and page Ruiz")
    link.click()
    staff.wait_for_selector("h1")
    assert code in staff.inner_text("h1")
    staff.click("button:text-is('Acknowledge')")
    assert f"Acknowledged {code}: paging stopped." in staff.inner_text(".flash")
    alert = the_alert(live.app)
    assert alert.status == "acked"

    # The chain's next step was due `wait` after the first: past it, it has not run.
    wait = alert.policy["steps"][0]["wait"]
    with live.app.app_context():
        first = db.session.scalars(select(AlertStep).order_by(AlertStep.id)).first()
        assert first is not None
        due = first.executed_at + timedelta(seconds=wait)
        db.session.remove()
    # Past it by more than rq's scheduler (every second) and the sweeper (every 2 s) take to
    # run a due step.
    time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 3)
    assert [s[:2] for s in steps(live.app)] == [(0, 0)]
    assert OKAFOR not in [m.form["To"] for m in fake_twilio.messages()]

    staff.fill("#reply", "Thank you. An officer is on the way; stay where you are safe.")
    staff.click("button:text-is('Send reply')")
    assert staff.inner_text(".flash") == "Reply stored for the student."

    open_followup(live, student, receipt, passphrase)
    assert "An officer is on the way; stay where you are safe." in student.inner_text("main")
