"""Staff sign-in: generic failures, TOTP with replay protection, lockout, sessions, headers."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.admin import (
    PASSWORD,
    TOTP_SECRET,
    AuthActions,
    current_code,
    get_user,
)
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, User
from tipline.platform.services import services
from tipline.staff import signin
from tipline.staff.accounts import upsert_user

EMAIL = "dana.ruiz@example.org"


def actions(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (e.actor, e.action)
            for e in dbsession().scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def test_login_with_password_opens_the_queue(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"])
    response = auth.login(EMAIL)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    page = auth.client.get("/admin/")
    assert page.status_code == 200
    assert EMAIL in page.get_data(as_text=True)
    assert (f"user:{user_id}", "login.success") in actions(app)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (EMAIL, "wrong password, long enough"),
        ("nobody@example.org", PASSWORD),
        ("NOBODY@example.org", "wrong password, long enough"),
    ],
)
def test_failed_login_says_the_same_whatever_was_wrong(
    app: Flask, auth: AuthActions, email: str, password: str
) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    response = auth.login(email, password)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert signin.GENERIC_ERROR.split(":")[0] in body
    assert "unknown" not in body.lower()
    assert auth.client.get("/admin/").status_code == 302
    # The audit log names a login by id or "anonymous": never the email typed, never an IP.
    for actor, action in actions(app):
        assert "@" not in actor
        assert "127.0.0.1" not in actor
        if action.startswith("login."):
            assert action == "login.failure"


def test_totp_is_required_when_enrolled(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"], totp=TOTP_SECRET)
    response = auth.login(EMAIL)
    assert response.headers["Location"] == "/admin/login/totp"
    assert auth.client.get("/admin/").status_code == 302  # not signed in yet
    bad = auth.totp("000000" if current_code() != "000000" else "111111")
    assert signin.GENERIC_ERROR.split(":")[0] in bad.get_data(as_text=True)
    ok = auth.totp(current_code())
    assert ok.status_code == 302
    assert ok.headers["Location"] == "/admin/"
    assert auth.client.get("/admin/").status_code == 200


def test_totp_code_cannot_be_replayed(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"], totp=TOTP_SECRET)
    code = current_code()
    auth.login(EMAIL)
    assert auth.totp(code).status_code == 302
    auth.logout()
    auth.login(EMAIL)
    replay = auth.totp(code)
    assert replay.status_code == 200
    assert auth.client.get("/admin/").status_code == 302
    # An older code (the previous step, still inside the ±1 window) is refused as well.
    auth.login(EMAIL)
    assert auth.totp(current_code(now=utcnow() - timedelta(seconds=30))).status_code == 200
    assert get_user(app, user_id).failed_logins == 2


def test_totp_window_is_one_step_each_way() -> None:
    now = utcnow()
    step = int(now.timestamp()) // 30
    totp = pyotp.TOTP(TOTP_SECRET)
    for offset in (-1, 0, 1):
        code = str(totp.generate_otp(step + offset))
        assert signin.matching_counter(TOTP_SECRET, code, now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = str(totp.generate_otp(step + offset))
        nearby = {str(totp.generate_otp(step + k)) for k in (-1, 0, 1)}
        if code not in nearby:  # one in a million: a far code equal to a near one
            assert signin.matching_counter(TOTP_SECRET, code, now) is None
    assert signin.matching_counter(TOTP_SECRET, "12345", now) is None
    assert signin.matching_counter(TOTP_SECRET, "abcdef", now) is None


def test_five_failures_lock_the_account_for_fifteen_minutes(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"])
    for _ in range(5):
        assert auth.login(EMAIL, "wrong password, long enough").status_code == 200
    user = get_user(app, user_id)
    assert user.locked_until is not None
    assert timedelta(minutes=14) < user.locked_until - utcnow() <= timedelta(minutes=15)
    locked = auth.login(EMAIL)  # the right password, while locked
    assert locked.status_code == 200
    assert signin.GENERIC_ERROR.split(":")[0] in locked.get_data(as_text=True)
    assert auth.client.get("/admin/").status_code == 302
    events = [a for _, a in actions(app)]
    assert events.count("login.failure") == 4
    assert events.count("login.lockout") == 1
    assert events[-1] == "login.locked"
    with app.app_context():  # the lock lapses after 15 minutes
        row = dbsession().get(User, user_id)
        assert row is not None
        row.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert auth.login(EMAIL).status_code == 302


def test_totp_failures_count_toward_the_lockout(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"], totp=TOTP_SECRET)
    wrong = "000000" if current_code() != "000000" else "111111"
    auth.login(EMAIL)
    for _ in range(5):
        auth.totp(wrong)
    assert get_user(app, user_id).locked_until is not None
    assert auth.totp(current_code()).status_code == 200


def test_email_is_rate_limited_even_without_an_account(app: Flask, auth: AuthActions) -> None:
    for _ in range(10):
        assert auth.login("nobody@example.org", "wrong password, long enough").status_code == 200
    throttled = auth.login("nobody@example.org", "wrong password, long enough")
    assert throttled.status_code == 429
    assert signin.GENERIC_ERROR.split(":")[0] in throttled.get_data(as_text=True)
    # Other emails are unaffected; Redis holds no email in the clear.
    auth.create(EMAIL, "sro", ["lincoln"])
    assert auth.login(EMAIL).status_code == 302
    keys = b" ".join(services(app).redis.keys("*"))
    assert b"nobody" not in keys
    assert b"example.org" not in keys


def test_logout_is_post_only(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    assert auth.client.get("/admin/logout").status_code == 405
    assert auth.client.get("/admin/").status_code == 200
    assert auth.client.post("/admin/logout").status_code == 400  # no CSRF token
    assert auth.client.get("/admin/").status_code == 200
    assert auth.logout().status_code == 302
    assert auth.client.get("/admin/").status_code == 302


def test_login_starts_a_fresh_session(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    with auth.client.session_transaction() as sess:
        sess["planted"] = "by someone else"
    auth.login(EMAIL)
    with auth.client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"]


def test_password_change_ends_other_sessions(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    assert auth.client.get("/admin/").status_code == 200
    with app.app_context():
        upsert_user(
            dbsession(),
            services(app).vault,
            email=EMAIL,
            role="sro",
            password="a brand new password",
            schools=["lincoln"],
        )
        db.session.commit()
    assert auth.client.get("/admin/").status_code == 302


def test_session_expires_after_a_working_day(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    with auth.client.session_transaction() as sess:
        sess["auth_at"] = sess["auth_at"] - 13 * 3600
    assert auth.client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("/admin/dashboard", "/admin/dashboard"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/tip/lincoln", "/admin/"),
    ],
)
def test_next_only_leads_inside_the_admin_view(auth: AuthActions, target: str, lands: str) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    response = auth.login(EMAIL, next_=target)
    assert response.headers["Location"] == lands


def test_login_form_without_csrf_token_is_rejected(auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    response = auth.client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert auth.client.get("/admin/").status_code == 302


@pytest.mark.parametrize("path", ["/admin/login", "/admin/", "/admin/dashboard"])
def test_admin_pages_are_never_cached_and_run_no_script(auth: AuthActions, path: str) -> None:
    auth.login_as("sro")
    response = auth.client.get(path)
    assert response.status_code in (200, 302)
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    body = response.get_data(as_text=True)
    assert "<script" not in body
    assert "http://" not in body.replace("http://tipline.test", "")
    assert "https://" not in body


def test_deactivated_login_cannot_sign_in(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"])
    with app.app_context():
        row = dbsession().get(User, user_id)
        assert row is not None
        row.active = False
        db.session.commit()
    assert auth.login(EMAIL).status_code == 200
