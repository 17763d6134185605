"""Break-glass: two admins and a written reason reveal a student's number, once, audited.

Attacks written as tests: one admin alone (or twice) cannot reveal; a counselor, an SRO or an
admin of another school cannot ask or approve; a late approval is refused; the number is shown
once and its sealed copy is unreadable afterwards; the web process never holds it until the
worker has decrypted it; a school that did not turn break-glass on offers nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.conftest import count, sms_params, twiml_text
from tests.support.admin import AuthActions, forget_last_code, make_tip
from tests.support.media import run_worker
from tests.support.web import dump_tables, stored_anywhere
from tipline.db import utcnow
from tipline.district.cache import lookups
from tipline.district.config import parse_district
from tipline.district.sync import district_from_db, sync_district
from tipline.errors import ConfigError
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, OutboundMessage, Reveal, School, Tip, Tipster
from tipline.platform.services import services
from tipline.vault import retention

STUDENT = "+15557654321"
REASON = "He texted that he took pills an hour ago and stopped answering; EMS needs him now."
SECOND = "james.brooks@example.org"  # the example's second admin at Lincoln


def turn_on(app: Flask, slug: str = "lincoln") -> None:
    with app.app_context():
        db.session.execute(update(School).where(School.slug == slug).values(break_glass=True))
        db.session.commit()


def sms_tip(app: Flask) -> str:
    return make_tip(app, "my friend took a bunch of pills and wont wake up", phone=STUDENT)


def reveals(app: Flask) -> list[Reveal]:
    with app.app_context():
        rows = dbsession().scalars(select(Reveal).order_by(Reveal.requested_at)).all()
        for row in rows:
            dbsession().expunge(row)
        return list(rows)


def actions(app: Flask, tip_id: str) -> list[str]:
    with app.app_context():
        return list(
            dbsession().scalars(
                select(AuditEvent.action).where(AuditEvent.tip_id == tip_id).order_by(AuditEvent.id)
            )
        )


def switch(auth: AuthActions, email: str) -> None:
    auth.logout()
    forget_last_code(auth.app, email)
    response = auth.sign_in(email)
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def two_admins(app: Flask, auth: AuthActions) -> AuthActions:
    turn_on(app)
    auth.create(SECOND, "admin", ["lincoln"], staff="brooks")
    auth.login_as("admin")
    return auth


def ask(auth: AuthActions, tip_id: str, reason: str = REASON) -> int:
    return auth.post(f"/admin/tips/{tip_id}/reveal", {"reason": reason}).status_code


def test_two_admins_reveal_the_number_once_and_everyone_is_told(
    app: Flask, two_admins: AuthActions
) -> None:
    auth = two_admins
    tip_id = sms_tip(app)
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "Ask to reveal the number" in page
    assert ask(auth, tip_id) == 302
    (request,) = reveals(app)
    assert request.status == "pending"
    assert stored_anywhere(dump_tables(app), REASON) is False  # the reason is sealed
    with app.app_context():
        told = (
            dbsession()
            .scalars(select(OutboundMessage.to_label).where(OutboundMessage.purpose == "notice"))
            .all()
        )
    assert sorted(told) == ["brooks", "patel"]  # every admin of Lincoln, nobody else

    # The asker cannot approve their own request.
    auth.post(f"/admin/reveals/{request.id}/approve", {})
    assert reveals(app)[0].status == "pending"

    switch(auth, SECOND)
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert REASON.split(";", maxsplit=1)[0] in page  # the approver reads why
    assert STUDENT not in page
    assert auth.post(f"/admin/reveals/{request.id}/approve", {}).status_code == 302
    assert reveals(app)[0].status == "approved"
    # The second admin cannot see the number: only the asker, and only after the worker.
    shown = auth.post(f"/admin/reveals/{request.id}/show", {})
    assert STUDENT not in shown.get_data(as_text=True)

    run_worker(app)
    assert reveals(app)[0].status == "revealed"

    switch(auth, "anita.patel@example.org")
    first = auth.post(f"/admin/reveals/{request.id}/show", {})
    assert first.status_code == 200
    assert STUDENT in first.get_data(as_text=True)
    assert first.headers["Cache-Control"] == "no-store"
    again = auth.client.post(
        f"/admin/reveals/{request.id}/show",
        data={"csrf_token": auth.token("/admin/")},
        follow_redirects=True,
    )
    assert STUDENT not in again.get_data(as_text=True)
    assert "already shown once" in again.get_data(as_text=True)
    (done,) = reveals(app)
    assert done.status == "shown"
    assert done.number_key_id is None
    assert done._number is None
    assert [a for a in actions(app, tip_id) if "reveal" in a or "number" in a] == [
        "tip.reveal_requested",
        "tip.reveal_approved",
        "tip.reveal_decrypted",
        "tip.number_shown",
    ]
    with app.app_context():
        told = (
            dbsession()
            .scalars(select(OutboundMessage.summary).where(OutboundMessage.purpose == "notice"))
            .all()
        )
    assert sum("approved" in line for line in told) == 2


def test_a_request_nobody_approves_within_an_hour_expires(
    app: Flask, two_admins: AuthActions
) -> None:
    auth = two_admins
    tip_id = sms_tip(app)
    ask(auth, tip_id)
    with app.app_context():
        db.session.execute(update(Reveal).values(requested_at=utcnow() - timedelta(minutes=61)))
        db.session.commit()
    switch(auth, SECOND)
    request = reveals(app)[0]
    auth.post(f"/admin/reveals/{request.id}/approve", {})
    assert reveals(app)[0].status == "expired"
    run_worker(app)
    assert reveals(app)[0].number_key_id is None


@pytest.mark.parametrize("role", ["sro", "counselor", "other_admin"])
def test_other_roles_and_schools_can_neither_ask_nor_approve(
    app: Flask, auth: AuthActions, role: str
) -> None:
    turn_on(app)
    tip_id = sms_tip(app)
    auth.login_as("admin")
    ask(auth, tip_id)
    request = reveals(app)[0]
    auth.logout()
    auth.login_as(role)
    assert "Ask to reveal" not in auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert ask(auth, tip_id) in (403, 404)
    assert auth.post(f"/admin/reveals/{request.id}/approve", {}).status_code in (302, 404)
    assert reveals(app)[0].status == "pending"
    assert len(reveals(app)) == 1


def test_a_school_without_break_glass_offers_nothing(app: Flask, auth: AuthActions) -> None:
    tip_id = sms_tip(app)
    auth.login_as("admin")
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "Break-glass" not in page
    assert ask(auth, tip_id) == 403
    assert reveals(app) == []


def test_a_short_reason_is_refused(app: Flask, two_admins: AuthActions) -> None:
    tip_id = sms_tip(app)
    two_admins.post(f"/admin/tips/{tip_id}/reveal", {"reason": "urgent"})
    assert reveals(app) == []


def test_one_open_request_at_a_time(app: Flask, two_admins: AuthActions) -> None:
    tip_id = sms_tip(app)
    ask(two_admins, tip_id)
    ask(two_admins, tip_id)
    assert len(reveals(app)) == 1


def test_a_web_tip_has_no_number_to_reveal(app: Flask, two_admins: AuthActions) -> None:
    tip_id = make_tip(app, "someone has a knife in the gym")
    assert ask(two_admins, tip_id) == 403


def test_retention_shreds_the_reason_with_the_tip(app: Flask, two_admins: AuthActions) -> None:
    tip_id = sms_tip(app)
    ask(two_admins, tip_id)
    with app.app_context():
        session = dbsession()
        tip = session.get(Tip, tip_id)
        assert tip is not None
        tip.status, tip.closed_at = "closed", tip.created_at - timedelta(days=400)
        session.commit()
        retention.apply_retention(session, tip.created_at + timedelta(days=1))
        session.commit()
    (request,) = reveals(app)
    assert request.data_key_id is None
    assert request._reason is None


def test_help_tells_students_where_break_glass_is_on(app: Flask, client: FlaskClient) -> None:
    quiet = client.post("/sms/inbound", data=sms_params("HELP"))
    assert twiml_text(quiet) == ""  # Twilio's own HELP answer only
    turn_on(app)
    lookups(services(app)).ttl = 0  # the web process sees the change at once
    answer = twiml_text(client.post("/sms/inbound", data=sms_params("help")))
    assert "two school administrators" in answer
    assert "911" in answer
    ayuda = twiml_text(client.post("/sms/inbound", data=sms_params("AYUDA")))
    assert "dos administradores" in ayuda
    assert count(app, Tip) == 0
    assert count(app, Tipster) == 0
    form = client.get("/tip/lincoln").get_data(as_text=True)
    assert 'id="break-glass-note"' in form
    assert 'id="break-glass-note"' not in client.get("/tip/washington").get_data(as_text=True)


def test_the_reveal_page_needs_the_asker_signed_in(app: Flask, two_admins: AuthActions) -> None:
    tip_id = sms_tip(app)
    ask(two_admins, tip_id)
    request = reveals(app)[0]
    two_admins.logout()
    response = two_admins.client.post(f"/admin/reveals/{request.id}/show")
    assert response.status_code in (302, 400, 401)
    assert STUDENT not in response.get_data(as_text=True)


def config_doc(**school: Any) -> dict[str, Any]:
    return {
        "school": [
            {
                "slug": "lincoln",
                "name": "Lincoln High School",
                "timezone": "America/Chicago",
                "sms_number": "+15550000100",
                **school,
            }
        ]
    }


def test_break_glass_is_off_unless_the_config_turns_it_on(app: Flask) -> None:
    (school,) = parse_district(config_doc()).schools
    assert school.break_glass is False
    with pytest.raises(ConfigError, match="break_glass"):
        parse_district(config_doc(break_glass="yes"))
    with app.app_context():
        report = sync_district(dbsession(), parse_district(config_doc(break_glass=True)))
        db.session.commit()
        assert "updated school lincoln" in report.lines()
        row = dbsession().scalars(select(School).where(School.slug == "lincoln")).one()
        assert row.break_glass is True
        (read,) = [s for s in district_from_db(dbsession()).schools if s.slug == "lincoln"]
        assert read.break_glass is True
