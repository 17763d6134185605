"""Staff sessions live in the database: sign-out (here or everywhere) and timeouts end them,
whatever copy of the cookie is left; sign-in needs no Redis."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from tests.support.admin import LOGINS, AuthActions
from tipline.cli.assemble import build_app
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import SigninAddress, StaffSession
from tipline.staff import sessions
from tipline.vault.retention import apply_retention

SRO = LOGINS["sro"][0]


def rows(app: Flask) -> list[StaffSession]:
    with app.app_context():
        found = list(dbsession().scalars(select(StaffSession)))
        for row in found:
            dbsession().expunge(row)
        return found


def cookie_of(auth: AuthActions) -> str:
    cookie = auth.client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def copy_of(app: Flask, value: str) -> AuthActions:
    """Another browser holding a copy of a session cookie."""
    client = app.test_client()
    client.set_cookie("session", value)
    return AuthActions(app, client)


def shift(app: Flask, **ago: timedelta) -> None:
    """Move every session's timestamps into the past."""
    with app.app_context():
        for row in dbsession().scalars(select(StaffSession)):
            if "created" in ago:
                row.created_at = utcnow() - ago["created"]
            if "seen" in ago:
                row.last_seen_at = utcnow() - ago["seen"]
        db.session.commit()


def test_session_row_holds_only_a_hash_of_the_token(app: Flask, auth: AuthActions) -> None:
    user_id = auth.login_as("sro")
    with auth.client.session_transaction() as sess:
        token = sess["sid"]
    [row] = rows(app)
    assert row.user_id == user_id
    assert row.id == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.id
    assert row.revoked_at is None


def test_copied_cookie_stops_working_after_sign_out(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    stolen = copy_of(app, cookie_of(auth))
    assert stolen.client.get("/admin/").status_code == 200
    assert auth.logout().status_code == 302
    assert stolen.client.get("/admin/").status_code == 302
    [row] = rows(app)
    assert row.revoked_at is not None


def test_sign_out_everywhere_ends_every_session(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    phone = AuthActions(app, app.test_client())
    phone.sign_in(SRO)
    assert phone.client.get("/admin/").status_code == 200
    response = auth.post("/admin/logout/everywhere", {})
    assert response.status_code == 302
    assert auth.client.get("/admin/").status_code == 302
    assert phone.client.get("/admin/").status_code == 302
    assert all(row.revoked_at is not None for row in rows(app))


def test_idle_session_ends_after_thirty_minutes(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    shift(app, seen=timedelta(minutes=29))
    assert auth.client.get("/admin/").status_code == 200  # and that visit counts as activity
    [row] = rows(app)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    shift(app, seen=sessions.IDLE + timedelta(seconds=5))
    assert auth.client.get("/admin/").status_code == 302


def test_session_ends_after_twelve_hours_however_active(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    shift(app, created=timedelta(hours=11, minutes=59), seen=timedelta(0))
    assert auth.client.get("/admin/").status_code == 200
    shift(app, created=sessions.ABSOLUTE + timedelta(seconds=5), seen=timedelta(0))
    assert auth.client.get("/admin/").status_code == 302


def test_a_signed_cookie_without_a_session_row_is_refused(app: Flask, auth: AuthActions) -> None:
    user_id = auth.login_as("sro")
    forged = AuthActions(app, app.test_client())
    with forged.client.session_transaction() as sess:  # signed with the right key, even
        sess["_user_id"] = str(user_id)
        sess["sid"] = "made-up-token"
    assert forged.client.get("/admin/").status_code == 302


def test_sign_in_works_with_redis_down(app: Flask, env: dict[str, str]) -> None:
    down = build_app({**env, "TIPLINE_REDIS_URL": "redis://127.0.0.1:9/0"}, TESTING=True)
    auth = AuthActions(down, down.test_client())
    auth.create_role("sro")
    response = auth.sign_in(SRO)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert auth.client.get("/admin/account").status_code == 200
    with down.app_context():
        db.session.remove()
        db.engine.dispose()


def test_students_pages_make_no_staff_session(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/tip/lincoln").status_code == 200
    assert rows(app) == []


def test_purge_forgets_dead_sessions_and_old_address_counts(app: Flask, auth: AuthActions) -> None:
    auth.login_as("sro")
    with app.app_context():
        session = dbsession()
        session.add(
            SigninAddress(key="a" * 64, failures=4, last_failed_at=utcnow(), delay_until=utcnow())
        )
        db.session.commit()
        apply_retention(session, now=utcnow() + timedelta(hours=23))
        db.session.commit()
        assert len(session.scalars(select(StaffSession)).all()) == 1
        assert len(session.scalars(select(SigninAddress)).all()) == 1
        apply_retention(session, now=utcnow() + timedelta(days=1, minutes=1))
        db.session.commit()
        assert session.scalars(select(StaffSession)).all() == []
        assert session.scalars(select(SigninAddress)).all() == []
