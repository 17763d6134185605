"""The second factor: enrollment on first sign-in (QR as inline SVG, the secret as text),
ten one-time recovery codes, reset by an admin of the school or the CLI, dev mode's exception."""

from __future__ import annotations

import re

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from tests.conftest import app_for
from tests.support.admin import (
    LOGINS,
    PASSWORD,
    AuthActions,
    current_code,
    forget_last_code,
    get_user,
)
from tipline.cli import main
from tipline.errors import ConfigError
from tipline.extensions import dbsession
from tipline.models import AuditEvent, RecoveryCode, User
from tipline.platform.services import services
from tipline.settings import load_settings
from tipline.staff.accounts import totp_secret

EMAIL = "dana.ruiz@example.org"
SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
CODES = re.compile(r"<li><code>([a-z2-9-]+)</code></li>")


def enroll(auth: AuthActions, email: str = EMAIL) -> tuple[str, list[str]]:
    """Sign in for the first time: password, scan (read the secret), confirm; the codes shown."""
    assert auth.login(email).headers["Location"] == "/admin/login/enroll"
    page = auth.client.get("/admin/login/enroll").get_data(as_text=True)
    found = SECRET.search(page)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    done = auth.enroll(pyotp.TOTP(secret).now())
    assert done.status_code == 200
    return secret, CODES.findall(done.get_data(as_text=True))


def audit_actions(app: Flask) -> list[str]:
    with app.app_context():
        return [e.action for e in dbsession().scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_first_sign_in_enrolls_with_a_server_drawn_qr_code(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"], totp=None)
    auth.login(EMAIL)
    page = auth.client.get("/admin/login/enroll")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in body  # drawn here, inline: no image from anywhere
    assert "<script" not in body
    assert "<img" not in body
    assert "https://" not in body
    assert "script-src 'none'" in page.headers["Content-Security-Policy"]
    again = auth.client.get("/admin/login/enroll").get_data(as_text=True)
    assert SECRET.search(body) is not None
    assert SECRET.search(body).group(1) == SECRET.search(again).group(1)
    assert auth.client.get("/admin/").status_code == 302  # not signed in while enrolling

    secret = SECRET.search(body).group(1).replace(" ", "")
    done = auth.enroll(pyotp.TOTP(secret).now())
    assert done.status_code == 200
    codes = CODES.findall(done.get_data(as_text=True))
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert auth.client.get("/admin/").status_code == 200
    with app.app_context():
        user = dbsession().get(User, user_id)
        assert user is not None
        assert totp_secret(services(app).vault, user) == secret
        assert user._totp_pending is None
        hashes = dbsession().scalars(select(RecoveryCode.code_hash)).all()
    assert len(hashes) == 10
    assert all(h.startswith("$argon2") for h in hashes)
    assert not any(code.replace("-", "") in h for code in codes for h in hashes)
    assert "totp.enrolled" in audit_actions(app)


def test_wrong_code_does_not_enroll(app: Flask, auth: AuthActions) -> None:
    user_id = auth.create(EMAIL, "sro", ["lincoln"], totp=None)
    auth.login(EMAIL)
    refused = auth.enroll("000000")
    assert refused.status_code == 200
    assert "Sign-in failed" in refused.get_data(as_text=True)
    assert auth.client.get("/admin/").status_code == 302
    assert get_user(app, user_id)._totp_secret is None


def test_enrollment_page_needs_the_password_first(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"], totp=None)
    assert auth.client.get("/admin/login/enroll").headers["Location"] == "/admin/login"
    auth.create("other@example.org", "sro", ["lincoln"])  # enrolled already
    auth.login("other@example.org")
    assert auth.client.get("/admin/login/enroll").headers["Location"] == "/admin/login"


def test_recovery_code_signs_in_once(app: Flask, auth: AuthActions) -> None:
    auth.create(EMAIL, "sro", ["lincoln"], totp=None)
    _, codes = enroll(auth)
    auth.logout()
    auth.login(EMAIL)
    assert auth.totp(codes[0].upper()).status_code == 302
    assert auth.client.get("/admin/").status_code == 200
    assert "recovery codes left: 9" in auth.client.get("/admin/account").get_data(as_text=True)
    auth.logout()
    auth.login(EMAIL)
    assert auth.totp(codes[0]).status_code == 200  # spent
    assert auth.client.get("/admin/").status_code == 302


@pytest.mark.parametrize("who", ["admin", "district"])
def test_admin_of_the_school_resets_a_second_factor(
    app: Flask, auth: AuthActions, who: str
) -> None:
    sro = AuthActions(app, app.test_client())
    sro_id = sro.login_as("sro")
    auth.login_as(who)
    response = auth.post("/admin/account/reset-second-factor", {"email": EMAIL})
    assert response.status_code == 302
    assert "enrolls a new second factor" in auth.client.get("/admin/account").get_data(as_text=True)
    assert get_user(app, sro_id)._totp_secret is None
    assert sro.client.get("/admin/").status_code == 302  # its sessions ended
    assert "totp.reset" in audit_actions(app)
    assert sro.login(EMAIL).headers["Location"] == "/admin/login/enroll"


@pytest.mark.parametrize("who", ["other_admin", "counselor"])
def test_only_an_admin_of_its_schools_resets_a_login(
    app: Flask, auth: AuthActions, who: str
) -> None:
    sro_id = auth.create_role("sro")
    auth.login_as(who)
    auth.post("/admin/account/reset-second-factor", {"email": EMAIL})
    assert "Not reset" in auth.client.get("/admin/account").get_data(as_text=True)
    assert get_user(app, sro_id)._totp_secret is not None
    assert "totp.reset" not in audit_actions(app)


def test_cli_resets_a_second_factor(app: Flask, env: dict[str, str], auth: AuthActions) -> None:
    sro_id = auth.login_as("sro")
    result = CliRunner().invoke(main, ["reset-second-factor", EMAIL.upper()], env=env)
    assert result.exit_code == 0, result.output
    assert get_user(app, sro_id)._totp_secret is None
    assert auth.client.get("/admin/").status_code == 302
    assert "totp.reset" in audit_actions(app)
    missing = CliRunner().invoke(main, ["reset-second-factor", "nobody@example.org"], env=env)
    assert missing.exit_code != 0


def test_dev_mode_signs_the_demo_login_in_with_its_password(env: dict[str, str]) -> None:
    with app_for({**env, "TIPLINE_DEV_MODE": "1"}) as app:
        auth = AuthActions(app, app.test_client())
        auth.create("admin@example.org", "admin", ["lincoln"], totp=None)
        response = auth.login("admin@example.org", PASSWORD)
        assert response.headers["Location"] == "/admin/"
        assert auth.client.get("/admin/").status_code == 200
        # An enrolled login still gives its code, in dev mode too.
        auth.create(LOGINS["sro"][0], "sro", ["lincoln"])
        forget_last_code(app, LOGINS["sro"][0])
        other = AuthActions(app, app.test_client())
        assert other.login(LOGINS["sro"][0]).headers["Location"] == "/admin/login/totp"


def test_dev_mode_cannot_be_set_with_an_https_public_url(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="TIPLINE_DEV_MODE"):
        load_settings({**env, "TIPLINE_DEV_MODE": "1", "TIPLINE_PUBLIC_URL": "https://x.test"})


def test_new_recovery_codes_need_a_current_code(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")  # provisioned with create-user --totp-secret: no codes yet
    page = auth.client.get("/admin/account").get_data(as_text=True)
    assert "recovery codes left: 0" in page
    auth.post("/admin/account/recovery-codes", {"code": "000000"})
    assert "No new codes" in auth.client.get("/admin/account").get_data(as_text=True)
    forget_last_code(app, EMAIL)
    shown = auth.post("/admin/account/recovery-codes", {"code": current_code()})
    assert shown.status_code == 200
    codes = CODES.findall(shown.get_data(as_text=True))
    assert len(codes) == 10
    page = auth.client.get("/admin/account").get_data(as_text=True)
    assert "recovery codes left: 10" in page
    assert "recovery_codes.renewed" in audit_actions(app)
    auth.logout()
    auth.login(EMAIL)
    assert auth.totp(codes[3]).status_code == 302


def test_each_password_step_offers_a_fresh_secret(app: Flask, auth: AuthActions) -> None:
    """A secret someone else saw after an earlier password step is never the one enrolled."""
    auth.create(EMAIL, "sro", ["lincoln"], totp=None)
    auth.login(EMAIL)
    first = SECRET.search(auth.client.get("/admin/login/enroll").get_data(as_text=True))
    other = AuthActions(app, app.test_client())
    other.login(EMAIL)
    second = SECRET.search(other.client.get("/admin/login/enroll").get_data(as_text=True))
    assert first is not None
    assert second is not None
    assert first.group(1) != second.group(1)
    # The first browser's secret is gone, and that browser starts over.
    stale = auth.client.get("/admin/login/enroll")
    assert stale.headers["Location"] == "/admin/login"
    assert other.enroll(pyotp.TOTP(second.group(1).replace(" ", "")).now()).status_code == 200
    assert other.client.get("/admin/").status_code == 200
