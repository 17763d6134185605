"""Legal hold: admin and district logins set and lift it on the tip's page, audited."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from tests.support.admin import AuthActions, get_tip, make_tip
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, Tip


def test_an_admin_sets_and_lifts_a_legal_hold_on_the_tip_page(
    app: Flask, auth: AuthActions
) -> None:
    tip_id = make_tip(app, "the coach touched my friend")
    auth.login_as("admin")
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "Put under legal hold" in page
    assert auth.post(f"/admin/tips/{tip_id}/hold", {"hold": "1"}).status_code == 302
    assert get_tip(app, tip_id).legal_hold
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "under legal hold" in page
    assert "Lift legal hold" in page
    auth.logout()
    auth.login_as("sro")
    assert auth.post(f"/admin/tips/{tip_id}/hold", {"hold": "0"}).status_code == 403
    assert get_tip(app, tip_id).legal_hold
    with app.app_context():
        events = dbsession().scalars(
            select(AuditEvent.action).where(AuditEvent.tip_id == tip_id).order_by(AuditEvent.id)
        )
        assert "tip.legal_hold" in list(events)


def test_closing_stamps_the_time_retention_counts_from(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, "someone wrote on the wall", age=timedelta(days=30))
    auth.login_as("sro")
    auth.post(f"/admin/tips/{tip_id}/status", {"status": "closed", "disposition": "resolved"})
    closed_at = get_tip(app, tip_id).closed_at
    assert closed_at is not None
    assert utcnow() - closed_at < timedelta(minutes=1)
    auth.post(f"/admin/tips/{tip_id}/status", {"status": "open", "disposition": ""})
    assert get_tip(app, tip_id).closed_at is None


def test_a_purged_tip_can_be_neither_reopened_nor_held(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, "someone wrote on the wall")
    with app.app_context():
        db.session.execute(
            update(Tip)
            .where(Tip.id == tip_id)
            .values(status="closed", closed_at=utcnow(), purged_at=utcnow())
        )
        db.session.commit()
    auth.login_as("admin")
    auth.post(f"/admin/tips/{tip_id}/status", {"status": "open", "disposition": ""})
    assert get_tip(app, tip_id).status == "closed"
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "purged by retention" in page
    assert "Put under legal hold" not in page
    auth.post(f"/admin/tips/{tip_id}/hold", {"hold": "1"})
    assert not get_tip(app, tip_id).legal_hold
