"""Helpers for the admin-view tests: logins (AuthActions, as in flaskr) and tips.

No tests here; the test_admin_* modules build their fixtures from these.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tipline.db import new_id, utcnow
from tipline.extensions import db, dbsession
from tipline.intake import records
from tipline.models import Alert, Attachment, School, Tip, Tipster, User
from tipline.platform.services import services
from tipline.staff.accounts import upsert_user
from tipline.triage import classify

PASSWORD = "correct horse battery staple"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

# role, schools, staff key: one login per role, like the example config's staff.
LOGINS: dict[str, tuple[str, list[str], str]] = {
    "sro": ("dana.ruiz@example.org", ["lincoln"], "ruiz"),
    "admin": ("anita.patel@example.org", ["lincoln"], "patel"),
    "counselor": ("rosa.garcia@example.org", ["lincoln"], "garcia"),
    "district": ("grace.okafor@example.org", [], "okafor"),
    "other_admin": ("linh.nguyen@example.org", ["washington"], "nguyen"),
}


class AuthActions:
    """Create logins and sign in and out through the real forms, CSRF tokens included."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client

    def create(
        self,
        email: str,
        role: str,
        schools: list[str],
        *,
        totp: str | None = TOTP_SECRET,
        staff: str | None = None,
        password: str = PASSWORD,
    ) -> int:
        """A login, enrolled with `totp` as `create-user --totp-secret` does (None: not yet)."""
        with self.app.app_context():
            user, _ = upsert_user(
                dbsession(),
                services(self.app).vault,
                email=email,
                role=role,
                password=password,
                schools=schools,
                totp_secret=totp,
                staff_key=staff,
            )
            db.session.commit()
            return user.id

    def create_role(self, name: str, *, totp: str | None = TOTP_SECRET) -> int:
        email, schools, staff = LOGINS[name]
        role = "admin" if name == "other_admin" else name
        return self.create(email, role, schools, totp=totp, staff=staff)

    def token(self, path: str = "/admin/login") -> str:
        page = self.client.get(path)
        match = CSRF.search(page.get_data(as_text=True))
        assert match is not None, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def login(
        self, email: str, password: str = PASSWORD, *, next_: str | None = None
    ) -> TestResponse:
        url = "/admin/login" + (f"?next={next_}" if next_ else "")
        return self.client.post(
            url,
            data={"email": email, "password": password, "csrf_token": self.token(url)},
        )

    def totp(self, code: str) -> TestResponse:
        return self.client.post(
            "/admin/login/totp",
            data={"code": code, "csrf_token": self.token("/admin/login/totp")},
        )

    def enroll(self, code: str) -> TestResponse:
        return self.client.post(
            "/admin/login/enroll",
            data={"code": code, "csrf_token": self.token("/admin/login/enroll")},
        )

    def sign_in(
        self, email: str, password: str = PASSWORD, *, next_: str | None = None
    ) -> TestResponse:
        """Password, then the current TOTP code of an enrolled login: the whole sign-in."""
        first = self.login(email, password, next_=next_)
        assert first.headers.get("Location") == "/admin/login/totp", first.get_data(as_text=True)
        forget_last_code(self.app, email)
        return self.totp(current_code())

    def login_as(self, name: str) -> int:
        user_id = self.create_role(name)
        response = self.sign_in(LOGINS[name][0])
        assert response.status_code == 302, response.get_data(as_text=True)
        return user_id

    def logout(self) -> TestResponse:
        return self.client.post("/admin/logout", data={"csrf_token": self.token("/admin/")})

    def post(self, path: str, data: dict[str, Any]) -> TestResponse:
        """A form POST with this session's CSRF token (taken from the queue page)."""
        return self.client.post(path, data={**data, "csrf_token": self.token("/admin/")})


def current_code(secret: str = TOTP_SECRET, now: datetime | None = None) -> str:
    return str(pyotp.TOTP(secret).at(now or utcnow()))


def forget_last_code(app: Flask, email: str) -> None:
    """As if the last code used had expired: tests sign one login in more often than every
    30 s, and each code is accepted only once."""
    with app.app_context():
        user = dbsession().scalars(select(User).where(User.email == email)).one()
        user.last_totp_counter = None
        db.session.commit()


def make_tip(
    app: Flask,
    text: str,
    school: str = "lincoln",
    *,
    phone: str | None = None,
    age: timedelta = timedelta(0),
) -> str:
    """A tip stored through intake with the real triage verdict; returns its id.

    With `phone`, an SMS tip whose sender is stored the way SMS intake stores one (keyed
    hash plus sealed copy); otherwise a web tip.
    """
    with app.app_context():
        session, vault = dbsession(), services(app).vault
        row = session.scalars(select(School).where(School.slug == school)).one()
        tipster = None
        if phone is not None:
            tipster = Tipster(id=new_id(), kind="sms", data_key=vault.new_data_key())
            tipster.phone_hash = vault.lookup_hash(session, "phone", phone)
            vault.put(tipster, "phone", phone)
            session.add(tipster)
        tip = records.create_tip(
            session,
            vault,
            school=row,
            text=text,
            source="web" if phone is None else "sms",
            verdict=classify(text),
            tipster=tipster,
            now=utcnow() - age,
        )
        db.session.commit()
        return tip.id


# The snapshot of the example's "life-safety" chain: it names SROs, admins and the district.
LIFE_SAFETY: dict[str, Any] = {
    "name": "life-safety",
    "repeat": 0,
    "steps": [
        {"notify": ["on-duty:sro"], "channels": ["sms"], "wait": 120},
        {"notify": ["role:admin", "on-duty:sro"], "channels": ["sms"], "wait": 180},
        {"notify": ["role:district", "role:sro"], "channels": ["sms"], "wait": 300},
    ],
}


def make_alert(
    app: Flask, tip_id: str, status: str = "open", policy: dict[str, Any] | None = None
) -> str:
    """An alert paging for the tip, as escalation would open it (no steps run), with the
    snapshot of `policy` (default: LIFE_SAFETY)."""
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        alert = Alert(
            id=new_id(),
            school_id=tip.school_id,
            tip_id=tip.id,
            severity=tip.severity,
            category=tip.category,
            policy=LIFE_SAFETY if policy is None else policy,
            status=status,
            token=new_id(),
            created_at=utcnow(),
        )
        dbsession().add(alert)
        db.session.commit()
        return alert.id


def add_attachment(app: Flask, tip_id: str, content: bytes, content_type: str) -> str:
    with app.app_context():
        session = dbsession()
        vault = services(app).vault
        att = Attachment(
            id=f"att{tip_id[:20]}",
            tip_id=tip_id,
            content_type=content_type,
            size=len(content),
            status="stored",
            data_key=vault.new_data_key(),
        )
        vault.put(att, "content", content)
        session.add(att)
        db.session.commit()
        return att.id


def get_tip(app: Flask, tip_id: str) -> Tip:
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        dbsession().expunge(tip)
        return tip


def get_user(app: Flask, user_id: int) -> User:
    with app.app_context():
        user = dbsession().get(User, user_id)
        assert user is not None
        dbsession().expunge(user)
        return user
