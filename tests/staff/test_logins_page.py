"""Staff logins (/admin/logins): admins create and disable the logins of their schools and
reset a second factor; district staff for all; every other cell refused."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.admin import LOGINS, PASSWORD, AuthActions
from tipline.extensions import dbsession
from tipline.models import AuditEvent, User
from tipline.staff.accounts import has_second_factor
from tipline.vault.passwords import verify_secret

NEW = "new.sro@example.org"


def user(app: Flask, email: str) -> User | None:
    with app.app_context():
        found = dbsession().scalars(select(User).where(User.email == email)).first()
        if found is not None:
            dbsession().expunge(found)
        return found


def actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(dbsession().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def everyone(auth: AuthActions) -> dict[str, int]:
    return {name: auth.create_role(name) for name in LOGINS}


@pytest.mark.parametrize("name", ["sro", "counselor"])
def test_other_roles_are_refused(app: Flask, auth: AuthActions, name: str) -> None:
    ids = everyone(auth)
    auth.sign_in(LOGINS[name][0])
    assert auth.client.get("/admin/logins").status_code == 403
    created = auth.post("/admin/logins", {"email": NEW, "role": "sro", "schools": "lincoln"})
    assert created.status_code == 403
    assert user(app, NEW) is None
    assert auth.post(f"/admin/logins/{ids['admin']}/disable", {}).status_code == 403
    assert auth.post(f"/admin/logins/{ids['sro']}/reset-second-factor", {}).status_code == 403


@pytest.mark.parametrize(
    ("name", "sees"),
    [
        ("admin", {"sro", "admin", "counselor"}),
        ("other_admin", {"other_admin"}),
        ("district", set(LOGINS)),
    ],
)
def test_the_list_holds_the_logins_of_the_managers_schools(
    auth: AuthActions, name: str, sees: set[str]
) -> None:
    everyone(auth)
    auth.sign_in(LOGINS[name][0])
    html = auth.client.get("/admin/logins").get_data(as_text=True)
    assert '<div class="table-wrap">' in html
    for other, (email, _, _) in LOGINS.items():
        assert (email in html) is (other in sees), other


def test_an_admin_creates_a_login_that_enrolls_at_first_sign_in(
    app: Flask, auth: AuthActions
) -> None:
    everyone(auth)
    auth.sign_in(LOGINS["admin"][0])
    page = auth.post(
        "/admin/logins",
        {"email": NEW, "role": "sro", "schools": "lincoln", "staff": "ruiz"},
    )
    assert page.status_code == 200
    match = re.search(r'id="first-password">([^<]+)<', page.get_data(as_text=True))
    assert match is not None
    created = user(app, NEW)
    assert created is not None
    assert created.role == "sro"
    assert not has_second_factor(created)
    assert "login.created" in actions(app)
    auth.logout()
    first = auth.login(NEW, match.group(1))
    assert first.headers["Location"] == "/admin/login/enroll"


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"role": "sro", "schools": "washington"}, "only be given your own schools"),
        ({"role": "district"}, "the role must be one of"),
        ({"role": "sro"}, "choose at least one school"),
        ({"role": "sro", "schools": "lincoln", "staff": "nguyen"}, "no such staff entry"),
        ({"role": "janitor", "schools": "lincoln"}, "the role must be one of"),
    ],
)
def test_an_admin_cannot_create_beyond_their_schools(
    app: Flask, auth: AuthActions, form: dict[str, str], reason: str
) -> None:
    everyone(auth)
    auth.sign_in(LOGINS["admin"][0])
    response = auth.post("/admin/logins", {"email": NEW, **form})
    assert response.status_code == 302
    assert user(app, NEW) is None
    html = auth.client.get("/admin/logins").get_data(as_text=True)
    assert reason in html


def test_creating_a_colleagues_email_changes_nothing(app: Flask, auth: AuthActions) -> None:
    """The attack: 'create' a login that exists to set its password. Refused, and the
    colleague's password still works."""
    everyone(auth)
    auth.sign_in(LOGINS["admin"][0])
    victim = LOGINS["sro"][0]
    auth.post("/admin/logins", {"email": victim.upper(), "role": "sro", "schools": "lincoln"})
    assert "exists already" in auth.client.get("/admin/logins").get_data(as_text=True)
    found = user(app, victim)
    assert found is not None
    assert verify_secret(found.password_hash, PASSWORD)
    assert has_second_factor(found)


def test_disabling_a_login_ends_its_sessions_and_sign_ins(app: Flask, auth: AuthActions) -> None:
    ids = everyone(auth)
    sro = AuthActions(app, app.test_client())
    sro.sign_in(LOGINS["sro"][0])
    assert sro.client.get("/admin/").status_code == 200
    auth.sign_in(LOGINS["admin"][0])
    assert auth.post(f"/admin/logins/{ids['sro']}/disable", {}).status_code == 302
    assert sro.client.get("/admin/").status_code == 302  # its session is gone
    assert "login.disabled" in actions(app)
    again = sro.login(LOGINS["sro"][0])
    assert again.headers.get("Location") != "/admin/login/totp"
    auth.post(f"/admin/logins/{ids['sro']}/enable", {})
    found = user(app, LOGINS["sro"][0])
    assert found is not None
    assert found.active
    assert "login.enabled" in actions(app)


@pytest.mark.parametrize("target", ["other_admin", "district"])
def test_an_admin_cannot_touch_logins_beyond_their_schools(
    app: Flask, auth: AuthActions, target: str
) -> None:
    ids = everyone(auth)
    auth.sign_in(LOGINS["admin"][0])
    auth.post(f"/admin/logins/{ids[target]}/disable", {})
    auth.post(f"/admin/logins/{ids[target]}/reset-second-factor", {})
    found = user(app, LOGINS[target][0])
    assert found is not None
    assert found.active
    assert has_second_factor(found)
    assert "no such login at your schools" in auth.client.get("/admin/logins").get_data(
        as_text=True
    )


def test_nobody_disables_themselves(app: Flask, auth: AuthActions) -> None:
    ids = everyone(auth)
    auth.sign_in(LOGINS["district"][0])
    auth.post(f"/admin/logins/{ids['district']}/disable", {})
    found = user(app, LOGINS["district"][0])
    assert found is not None
    assert found.active


def test_district_resets_any_second_factor(app: Flask, auth: AuthActions) -> None:
    ids = everyone(auth)
    auth.sign_in(LOGINS["district"][0])
    assert (
        auth.post(f"/admin/logins/{ids['other_admin']}/reset-second-factor", {}).status_code == 302
    )
    found = user(app, LOGINS["other_admin"][0])
    assert found is not None
    assert not has_second_factor(found)
    assert "totp.reset" in actions(app)


def test_changes_need_the_csrf_token(app: Flask, auth: AuthActions) -> None:
    ids = everyone(auth)
    auth.sign_in(LOGINS["admin"][0])
    response = auth.client.post(f"/admin/logins/{ids['sro']}/disable")
    assert response.status_code in (302, 400)
    created = auth.client.post("/admin/logins", data={"email": NEW, "role": "sro"})
    assert created.status_code in (302, 400)
    found = user(app, LOGINS["sro"][0])
    assert found is not None
    assert found.active
    assert user(app, NEW) is None
