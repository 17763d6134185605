"""The queue, a tip's page, attachment downloads and the dashboard: who sees what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.admin import AuthActions, add_attachment, make_tip
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, OutboundMessage, Tip

WEAPON = "a kid said he is bringing a gun to school tomorrow, he showed it in the parking lot"
BULLYING = "some older kids keep pushing my friend in the hallway and calling him names"
VAPING = "people are vaping in the upstairs bathroom every lunch"


def events(app: Flask, tip_id: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(
            dbsession().scalars(
                select(AuditEvent).where(AuditEvent.tip_id == tip_id).order_by(AuditEvent.id)
            )
        )
        for row in rows:
            dbsession().expunge(row)
        return rows


def test_queue_shows_only_tips_of_the_users_schools(app: Flask, auth: AuthActions) -> None:
    mine = make_tip(app, BULLYING, "lincoln")
    theirs = make_tip(app, VAPING, "washington")
    auth.login_as("sro")
    body = auth.client.get("/admin/").get_data(as_text=True)
    assert f"/admin/tips/{mine}" in body
    assert f"/admin/tips/{theirs}" not in body
    assert "Washington" not in body


def test_district_sees_every_school(app: Flask, auth: AuthActions) -> None:
    first = make_tip(app, BULLYING, "lincoln")
    second = make_tip(app, VAPING, "washington")
    auth.login_as("district")
    body = auth.client.get("/admin/").get_data(as_text=True)
    assert f"/admin/tips/{first}" in body
    assert f"/admin/tips/{second}" in body
    only = auth.client.get("/admin/?school=washington").get_data(as_text=True)
    assert f"/admin/tips/{first}" not in only
    assert f"/admin/tips/{second}" in only


def test_queue_lists_most_severe_first_then_newest_without_tip_text(
    app: Flask, auth: AuthActions
) -> None:
    old_bullying = make_tip(app, BULLYING, age=timedelta(hours=3))
    new_vaping = make_tip(app, VAPING)
    weapon = make_tip(app, WEAPON, age=timedelta(days=2))
    auth.login_as("admin")
    body = auth.client.get("/admin/").get_data(as_text=True)
    order = [body.index(f"/admin/tips/{t}") for t in (weapon, new_vaping, old_bullying)]
    rank = ("critical", "high", "normal", "low").index
    sev = {t: rank(_severity(app, t)) for t in (weapon, new_vaping, old_bullying)}
    assert sev[weapon] == 0
    assert order[0] < min(order[1:])
    # The other two: the more severe first; at equal severity the newer one first.
    second_first = sev[new_vaping] <= sev[old_bullying]
    assert (order[1] < order[2]) is second_first
    assert "pushing my friend" not in body
    assert "vaping in the upstairs" not in body
    # Critical, not closed, at a school that sends excerpts: a few words, to act at a glance.
    assert "a kid said he is bringing a gun" in body
    assert "parking lot" not in body  # cut to an excerpt


def _severity(app: Flask, tip_id: str) -> str:
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        return tip.severity


def test_no_excerpt_where_the_school_sends_links_only(app: Flask, auth: AuthActions) -> None:
    make_tip(app, WEAPON, "washington")
    auth.login_as("district")
    assert "bringing a gun" not in auth.client.get("/admin/").get_data(as_text=True)


def test_queue_filters_by_status_and_severity(app: Flask, auth: AuthActions) -> None:
    weapon = make_tip(app, WEAPON)
    vaping = make_tip(app, VAPING)
    with app.app_context():
        tip = dbsession().get(Tip, vaping)
        assert tip is not None
        tip.status = "closed"
        db.session.commit()
    auth.login_as("sro")
    active = auth.client.get("/admin/").get_data(as_text=True)
    assert weapon in active
    assert vaping not in active
    closed = auth.client.get("/admin/?status=closed").get_data(as_text=True)
    # The banner names new critical tips whatever the filters; the rows follow them.
    assert weapon not in closed.partition('class="queue"')[2]
    assert vaping in closed
    critical = auth.client.get("/admin/?status=all&severity=critical").get_data(as_text=True)
    assert weapon in critical
    assert vaping not in critical
    assert auth.client.get("/admin/?status=bogus&page=x").status_code == 200


def test_tip_page_shows_the_case_and_records_the_view(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, WEAPON)
    with app.app_context():
        dbsession().add(
            OutboundMessage(
                channel="sms",
                purpose="alert",
                tip_id=tip_id,
                to_label="ruiz",
                summary="[sms → ruiz +15550000111] CRITICAL weapon",
                status="failed",
                error_code="30003",
            )
        )
        db.session.commit()
    user_id = auth.login_as("sro")
    page = auth.client.get(f"/admin/tips/{tip_id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "showed it in the parking lot" in body  # the whole text, decrypted
    assert "30003" in body
    assert "failed" in body
    assert "ruiz" in body
    assert "+1555" not in body  # no phone number, staff or student, on the page
    assert "tip.created" in body
    viewed = [e for e in events(app, tip_id) if e.action == "tip.viewed"]
    assert [e.actor for e in viewed] == [f"user:{user_id}"]


@pytest.mark.parametrize("who", ["sro", "admin", "counselor", "other_admin"])
def test_tip_of_another_school_is_not_found(app: Flask, auth: AuthActions, who: str) -> None:
    tip_id = make_tip(app, WEAPON, "washington" if who != "other_admin" else "lincoln")
    auth.login_as(who)
    assert auth.client.get(f"/admin/tips/{tip_id}").status_code == 404
    assert auth.client.get("/admin/tips/doesnotexist").status_code == 404
    assert [e.action for e in events(app, tip_id)] == ["tip.created"]


def test_attachment_download_is_an_authenticated_attachment(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, WEAPON)
    att = add_attachment(app, tip_id, b"<html><script>alert(1)</script>", "text/html")
    url = f"/admin/tips/{tip_id}/attachments/{att}"
    anonymous = auth.client.get(url)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/admin/login")
    auth.login_as("sro")
    response = auth.client.get(url)
    assert response.status_code == 200
    assert response.data == b"<html><script>alert(1)</script>"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/octet-stream"  # never served as HTML
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "attachment.downloaded" in [e.action for e in events(app, tip_id)]


def test_attachment_of_another_school_is_not_found(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, WEAPON, "washington")
    att = add_attachment(app, tip_id, b"%PDF-1.4", "application/pdf")
    auth.login_as("sro")
    assert auth.client.get(f"/admin/tips/{tip_id}/attachments/{att}").status_code == 404
    mine = make_tip(app, BULLYING)
    assert auth.client.get(f"/admin/tips/{mine}/attachments/{att}").status_code == 404


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/dashboard", "/admin/tips/x", "/admin/tips/x/attachments/y"]
)
def test_every_page_requires_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    assert response.headers["Cache-Control"] == "no-store"


def test_dashboard_counts_without_tip_text(app: Flask, auth: AuthActions) -> None:
    make_tip(app, WEAPON)
    make_tip(app, BULLYING, age=timedelta(days=10))
    make_tip(app, VAPING, age=timedelta(days=40))
    make_tip(app, VAPING, "washington")
    auth.login_as("sro")
    body = auth.client.get("/admin/dashboard").get_data(as_text=True)
    assert "Lincoln High School" in body
    assert "Washington" not in body
    assert "bringing a gun" not in body
    assert "pushing" not in body
    assert "Critical tips nobody has acknowledged" in body
    assert body.count("/admin/tips/") == 1  # the unacknowledged critical tip
