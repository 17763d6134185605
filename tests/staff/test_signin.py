"""Staff sign-in: generic failures, a second factor for everyone, TOTP replay protection,
growing delays instead of a lock, headers."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import app_for
from tests.support.admin import (
    PASSWORD,
    TOTP_SECRET,
    AuthActions,
    current_code,
    get_user,
)
from tipline.db import utcnow
from tipline.errors import ConfigError
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, SigninAddress, User
from tipline.platform.services import services
from tipline.settings import load_settings
from tipline.staff import signin
from tipline.staff.accounts import upsert_user

EMAIL = "dana.ruiz@example.org"
WRONG = "wrong password, long enough"
ATTACKER = "203.0.113.9"
STAFF_PHONE = "198.51.100.7"


def actions(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (e.actor, e.action)
            for e in dbsession().scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def from_address(app: Flask, address: str) -> AuthActions:
    """A browser of its own at `address` (sign-in delays are per client address)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return AuthActions(app, client)


def wrong_code() -> str:
    return "000000" if current_code() != "000000" else "111111"


def test_password_and_code_open_the_queue(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"])
    first = auth.login(EMAIL)
    assert first.headers["Location"] == "/admin/login/totp"
    assert auth.client.get("/admin/").status_code == 302  # the password alone is not enough
    response = auth.totp(current_code())
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    page = auth.client.get("/admin/")
    assert page.status_code == 200
    assert EMAIL in page.get_data(as_text=True)
    assert (f"user:{user_id}", "login.success") in actions(app)


@pytest.mark.parametrize("role", ["admin", "sro", "counselor", "district"])
def test_every_role_needs_a_second_factor(app: Flask, auth: AuthActions, role: str) -> None:
    auth.create(EMAIL, role, [] if role == "district" else ["lincoln"], totp=None)
    response = auth.login(EMAIL)
    assert response.headers["Location"] == "/admin/login/enroll"
    assert auth.client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (EMAIL, WRONG),
        ("nobody@example.org", PASSWORD),
        ("NOBODY@example.org", WRONG),
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


def test_wrong_code_is_refused(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    auth.login(EMAIL)
    bad = auth.totp(wrong_code())
    assert signin.GENERIC_ERROR.split(":")[0] in bad.get_data(as_text=True)
    assert auth.client.get("/admin/").status_code == 302
    assert auth.totp(current_code()).status_code == 302
    assert auth.client.get("/admin/").status_code == 200


def test_totp_code_cannot_be_replayed(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"])
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


# -- the attack the old lock allowed, and the delays that replace it -----------------------


@pytest.mark.parametrize("failures", [5, 30])
def test_wrong_passwords_for_an_email_do_not_lock_out_its_owner(app: Flask, failures: int) -> None:
    """Before: five wrong passwords locked the account for 15 minutes, right password too."""
    attacker = from_address(app, ATTACKER)
    owner = from_address(app, STAFF_PHONE)
    user_id = owner.create(EMAIL, "sro", ["lincoln"])
    for _ in range(failures):
        assert attacker.login(EMAIL, WRONG).status_code in (200, 429)
    assert attacker.client.get("/admin/").status_code == 302
    # The owner, with the right password and code, gets in at once.
    response = owner.sign_in(EMAIL)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert owner.client.get("/admin/").status_code == 200
    assert (f"user:{user_id}", "login.success") in actions(app)
    assert "login.lockout" not in [a for _, a in actions(app)]


def test_wrong_codes_do_not_lock_out_the_owner(app: Flask) -> None:
    """Someone with the password (phished) guesses codes; the owner still signs in."""
    attacker = from_address(app, ATTACKER)
    owner = from_address(app, STAFF_PHONE)
    owner.create(EMAIL, "sro", ["lincoln"])
    attacker.login(EMAIL)
    for _ in range(6):
        assert attacker.totp(wrong_code()).status_code in (200, 429)
    assert owner.sign_in(EMAIL).status_code == 302
    assert owner.client.get("/admin/").status_code == 200


def test_delayed_address_is_told_to_wait(app: Flask) -> None:
    attacker = from_address(app, ATTACKER)
    attacker.create(EMAIL, "sro", ["lincoln"])
    for _ in range(signin.FREE_FAILURES):
        assert attacker.login(EMAIL, WRONG).status_code == 200
    delayed = attacker.login(EMAIL, WRONG)
    assert delayed.status_code == 429
    assert int(delayed.headers["Retry-After"]) >= 1
    assert "try again in" in delayed.get_data(as_text=True)
    with app.app_context():  # the address is kept only as a keyed hash
        keys = dbsession().scalars(select(SigninAddress.key)).all()
    assert len(keys) == 1
    assert ATTACKER not in keys[0]


def run(app: Flask, email: str, password: str, address: str, at: timedelta) -> signin.Attempt:
    """One password attempt through the domain function, at a chosen moment."""
    with app.app_context():
        attempt = signin.check_password(
            dbsession(), services(app).vault, email, password, address, NOW + at
        )
        db.session.commit()
        return attempt


NOW = utcnow().replace(microsecond=0)


def test_delays_double_per_address_up_to_a_cap(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    t = timedelta(0)
    for _ in range(signin.FREE_FAILURES):  # free: no delay
        assert run(app, EMAIL, WRONG, ATTACKER, t).outcome is signin.Outcome.FAILED
    waits = []
    for _ in range(14):
        early = run(app, EMAIL, PASSWORD, ATTACKER, t)  # even the right password waits here
        assert early.outcome is signin.Outcome.DELAYED
        waits.append(early.retry_after)
        t += timedelta(seconds=early.retry_after)
        assert run(app, EMAIL, WRONG, ATTACKER, t).outcome is signin.Outcome.FAILED
    assert waits[:5] == [1, 2, 4, 8, 16]
    assert max(waits) == signin.ADDRESS_CAP.total_seconds()
    # Another address, with the right password, is not delayed at all.
    other = run(app, EMAIL, PASSWORD, STAFF_PHONE, t)
    assert other.outcome is signin.Outcome.NEEDS_TOTP
    # A day after the last failure the count starts again.
    t += signin.FORGET_AFTER + timedelta(minutes=16)
    assert run(app, EMAIL, WRONG, ATTACKER, t).outcome is signin.Outcome.FAILED
    assert run(app, EMAIL, WRONG, ATTACKER, t).outcome is signin.Outcome.FAILED


def test_failures_spread_over_addresses_meet_the_accounts_delay(
    app: Flask, auth: AuthActions
) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    for n in range(8):
        attempt = run(app, EMAIL, WRONG, f"192.0.2.{n}", timedelta(0))
        assert attempt.outcome is signin.Outcome.FAILED
    # Each of those addresses failed once, yet must now wait the account's delay.
    again = run(app, EMAIL, WRONG, "192.0.2.7", timedelta(0))
    assert again.outcome is signin.Outcome.DELAYED
    assert again.retry_after == signin.delay_for(8, signin.ACCOUNT_CAP).total_seconds()
    # The owner, elsewhere, with the right password: no delay.
    owner = run(app, EMAIL, PASSWORD, STAFF_PHONE, timedelta(0))
    assert owner.outcome is signin.Outcome.NEEDS_TOTP


def test_ipv6_addresses_are_counted_by_their_64(app: Flask) -> None:
    with app.app_context():
        vault, session = services(app).vault, dbsession()
        one = signin.address_key(session, vault, "2001:db8:1:2::1")
        two = signin.address_key(session, vault, "2001:db8:1:2:ffff::9")
        three = signin.address_key(session, vault, "2001:db8:1:3::1")
    assert one == two != three


# -- sessions, redirects, headers ----------------------------------------------------------


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
    auth.sign_in(EMAIL)
    with auth.client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"]
        assert sess["sid"]


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
    response = auth.sign_in(EMAIL, next_=target)
    assert response.headers["Location"] == lands


def test_login_form_without_csrf_token_is_rejected(auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    response = auth.client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert auth.client.get("/admin/").status_code == 302


# The queue (/admin/) runs its own script: tests/staff/test_live_queue.py checks its headers.
@pytest.mark.parametrize("path", ["/admin/login", "/admin/dashboard", "/admin/account"])
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
    assert auth.client.get("/admin/").status_code == 302


def test_behind_proxies_the_address_comes_from_x_forwarded_for(env: dict[str, str]) -> None:
    with app_for({**env, "TIPLINE_TRUSTED_PROXIES": "1"}) as app:
        attacker = AuthActions(app, app.test_client())
        attacker.create(EMAIL, "sro", ["lincoln"])
        header = {"X-Forwarded-For": f"10.9.9.9, {ATTACKER}"}  # the first entry is forged
        for _ in range(signin.FREE_FAILURES):
            attacker.client.post(
                "/admin/login",
                data={"email": EMAIL, "password": WRONG, "csrf_token": attacker.token()},
                headers=header,
            )
        token = attacker.token()
        delayed = attacker.client.post(
            "/admin/login",
            data={"email": EMAIL, "password": WRONG, "csrf_token": token},
            headers=header,
        )
        assert delayed.status_code == 429
        # The proxy itself (every staff member's remote address) is not delayed.
        owner = AuthActions(app, app.test_client())
        owner.client.environ_base["HTTP_X_FORWARDED_FOR"] = STAFF_PHONE
        assert owner.sign_in(EMAIL).status_code == 302


@pytest.mark.parametrize("value", ["-1", "x", "6"])
def test_trusted_proxies_must_be_a_small_number(env: dict[str, str], value: str) -> None:
    with pytest.raises(ConfigError, match="TIPLINE_TRUSTED_PROXIES"):
        load_settings({**env, "TIPLINE_TRUSTED_PROXIES": value})


def test_unknown_emails_delay_the_address_too(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"])
    for n in range(signin.FREE_FAILURES):
        attempt = run(app, f"nobody{n}@example.org", PASSWORD, ATTACKER, timedelta(0))
        assert attempt.outcome is signin.Outcome.FAILED
    assert run(app, EMAIL, PASSWORD, ATTACKER, timedelta(0)).outcome is signin.Outcome.DELAYED
    assert run(app, EMAIL, PASSWORD, STAFF_PHONE, timedelta(0)).outcome is (
        signin.Outcome.NEEDS_TOTP
    )


def test_sign_out_is_audited(app: Flask, auth: AuthActions) -> None:
    user_id = auth.login_as("sro")
    auth.logout()
    assert (f"user:{user_id}", "logout") in actions(app)
