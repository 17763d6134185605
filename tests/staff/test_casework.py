"""Casework from the admin view: replies, status, notes, reclassifying (who may: test_access)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from tests.support.admin import LOGINS, AuthActions, get_tip, make_alert, make_tip
from tipline.extensions import db, dbsession
from tipline.intake import records
from tipline.models import Alert, AuditEvent, Message, Note, OutboundMessage, Tip
from tipline.platform.services import services

FIGHT = "there is going to be a fight after school behind the gym on friday"


def audit_actions(app: Flask, tip_id: str) -> list[str]:
    with app.app_context():
        return list(
            dbsession().scalars(
                select(AuditEvent.action).where(AuditEvent.tip_id == tip_id).order_by(AuditEvent.id)
            )
        )


def audit_detail(app: Flask, tip_id: str, action: str) -> dict[str, object]:
    with app.app_context():
        event = (
            dbsession()
            .scalars(
                select(AuditEvent).where(AuditEvent.tip_id == tip_id, AuditEvent.action == action)
            )
            .one()
        )
        return dict(event.detail)


def refused(auth: AuthActions, resp: TestResponse, tip_id: str, why: str) -> None:
    """The action reached the view (not a 404, 403 or CSRF failure) and was refused, saying why."""
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/admin/tips/{tip_id}")
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    errors = re.findall(r'<p class="flash flash--error"[^>]*>([^<]*)</p>', page)
    assert any(why in html.unescape(e) for e in errors), errors


def test_reply_is_sealed_and_reaches_the_follow_up_conversation(
    app: Flask, auth: AuthActions
) -> None:
    tip_id = make_tip(app, FIGHT)
    with app.app_context():  # a category counselors see without being paged (test_access)
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        tip.category = "bullying"
        db.session.commit()
    user_id = auth.login_as("counselor")
    reply = "Thanks for telling us. A counselor will check in with the students today."
    response = auth.post(f"/admin/tips/{tip_id}/reply", {"reply": reply})
    assert response.status_code == 302
    with app.app_context():
        session = dbsession()
        tip = session.get(Tip, tip_id)
        assert tip is not None
        last = records.conversation(session, services(app).vault, tip)[-1]
        assert (last.direction, last.text, last.channel) == ("out", reply, "web")
        msg = session.scalars(select(Message).where(Message.tip_id == tip_id)).one()
        assert msg.author_user_id == user_id
        raw = session.execute(text("SELECT body FROM message WHERE id = :i"), {"i": msg.id})
        assert b"counselor will check" not in bytes(raw.scalar_one())
    detail = audit_detail(app, tip_id, "tip.replied")
    assert reply not in str(detail)
    assert reply in auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)


def test_reply_to_an_sms_tip_queues_an_sms_without_showing_the_number(
    app: Flask, auth: AuthActions
) -> None:
    tip_id = make_tip(app, FIGHT, phone="+15557654321")
    auth.login_as("sro")
    auth.post(f"/admin/tips/{tip_id}/reply", {"reply": "Thank you. Is anyone hurt now?"})
    with app.app_context():
        out = (
            dbsession()
            .scalars(select(OutboundMessage).where(OutboundMessage.tip_id == tip_id))
            .one()
        )
        assert (out.purpose, out.channel, out.to_label) == ("reply", "sms", "student")
        assert "+1555" not in out.summary
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "Thank you. Is anyone hurt now?" in page
    assert "student" in page
    assert "7654321" not in page


def test_acknowledge_stops_the_paging(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    alert_id = make_alert(app, tip_id)
    auth.login_as("sro")
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert f"/admin/tips/{tip_id}/acknowledge" in page
    assert auth.post(f"/admin/tips/{tip_id}/acknowledge", {}).status_code == 302
    with app.app_context():
        alert = dbsession().get(Alert, alert_id)
        assert alert is not None
        assert (alert.status, alert.acked_via) == ("acked", "web")
        assert alert.acked_by is not None
        assert alert.acked_by.key == "ruiz"
    after = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "acknowledged by Officer Dana Ruiz (web)" in after
    assert f"/admin/tips/{tip_id}/acknowledge" not in after  # nothing left to acknowledge
    again = auth.post(f"/admin/tips/{tip_id}/acknowledge", {})
    assert again.status_code == 302
    assert audit_actions(app, tip_id).count("alert.acked") == 1


def test_login_without_staff_link_cannot_acknowledge(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    make_alert(app, tip_id)
    auth.create("deputy@example.org", "admin", ["lincoln"])
    auth.sign_in("deputy@example.org")
    assert "/acknowledge" not in auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    refused(auth, auth.post(f"/admin/tips/{tip_id}/acknowledge", {}), tip_id, "not linked")
    assert "alert.acked" not in audit_actions(app, tip_id)


def test_empty_reply_is_refused(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    auth.login_as("sro")
    resp = auth.post(f"/admin/tips/{tip_id}/reply", {"reply": "   "})
    refused(auth, resp, tip_id, "This field is required.")
    assert "tip.replied" not in audit_actions(app, tip_id)


def test_closing_requires_a_disposition(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    auth.login_as("admin")
    refused = auth.post(f"/admin/tips/{tip_id}/status", {"status": "closed", "disposition": ""})
    assert refused.status_code == 302
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert "closing needs a disposition" in page
    assert get_tip(app, tip_id).status == "new"
    auth.post(f"/admin/tips/{tip_id}/status", {"status": "closed", "disposition": "referred"})
    assert get_tip(app, tip_id).status == "closed"
    detail = audit_detail(app, tip_id, "tip.status")
    assert detail == {"from_status": "new", "to_status": "closed", "disposition": "referred"}


@pytest.mark.parametrize(
    ("start", "target", "ok"),
    [
        ("new", "open", True),
        ("open", "closed", True),
        ("closed", "open", True),
        ("open", "open", False),
        ("closed", "closed", False),
    ],
)
def test_status_moves_along_new_open_closed(
    app: Flask, auth: AuthActions, start: str, target: str, ok: bool
) -> None:
    tip_id = make_tip(app, FIGHT)
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        tip.status = start
        db.session.commit()
    auth.login_as("sro")
    auth.post(f"/admin/tips/{tip_id}/status", {"status": target, "disposition": "resolved"})
    assert get_tip(app, tip_id).status == (target if ok else start)


def test_note_is_sealed_and_staff_only(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    auth.login_as("sro")
    note = "Spoke with Coach Miller; extra supervision Friday."
    assert auth.post(f"/admin/tips/{tip_id}/notes", {"note": note}).status_code == 302
    with app.app_context():
        session = dbsession()
        row = session.scalars(select(Note).where(Note.tip_id == tip_id)).one()
        raw = session.execute(text("SELECT body FROM note WHERE id = :i"), {"i": row.id})
        assert b"Coach Miller" not in bytes(raw.scalar_one())
        assert services(app).vault.get_text(row, "body") == note
        assert row.data_key_id is not None
        assert row.data_key_id != session.get(Tip, tip_id).data_key_id  # type: ignore[union-attr]
        tip = session.get(Tip, tip_id)
        assert tip is not None
        assert note not in [e.text for e in records.conversation(session, services(app).vault, tip)]
    assert note in auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert note not in str(audit_detail(app, tip_id, "tip.noted"))


def test_reclassify_keeps_both_verdicts(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    before = get_tip(app, tip_id)
    auth.login_as("sro")
    auth.post(f"/admin/tips/{tip_id}/reclassify", {"severity": "critical", "category": "weapon"})
    after = get_tip(app, tip_id)
    assert (after.severity, after.category) == ("critical", "weapon")
    assert audit_detail(app, tip_id, "tip.reclassified") == {
        "from_severity": before.severity,
        "to_severity": "critical",
        "from_category": before.category,
        "to_category": "weapon",
    }
    # The automatic verdict stays with the tip and on its page.
    created = audit_detail(app, tip_id, "tip.created")
    assert (created["severity"], created["category"]) == (before.severity, before.category)
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        reasons = records.tip_triage(services(app).vault, tip)["reasons"]
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert all(str(reason).split('"')[0] in page for reason in reasons)


def test_assign_only_to_logins_of_the_school(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    other = auth.create_role("other_admin")
    colleague = auth.create_role("admin")
    auth.login_as("sro")
    resp = auth.post(f"/admin/tips/{tip_id}/assign", {"user_id": str(other)})
    refused(auth, resp, tip_id, "Not a valid choice.")
    assert "tip.assigned" not in audit_actions(app, tip_id)
    auth.post(f"/admin/tips/{tip_id}/assign", {"user_id": str(colleague)})
    assert audit_detail(app, tip_id, "tip.assigned") == {"to_user": colleague}
    page = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
    assert f"<dd>{LOGINS['admin'][0]}</dd>" in page


@pytest.mark.parametrize(
    "path", ["reply", "notes", "status", "assign", "reclassify", "acknowledge"]
)
def test_action_without_csrf_token_is_rejected(app: Flask, auth: AuthActions, path: str) -> None:
    tip_id = make_tip(app, FIGHT)
    make_alert(app, tip_id)
    auth.login_as("sro")
    response = auth.client.post(f"/admin/tips/{tip_id}/{path}", data={"reply": "x", "note": "x"})
    assert response.status_code == 400
    assert audit_actions(app, tip_id) == ["tip.created"]


def test_view_reply_and_status_leave_an_audit_trail(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT)
    user_id = auth.login_as("sro")
    auth.client.get(f"/admin/tips/{tip_id}")
    auth.post(f"/admin/tips/{tip_id}/reply", {"reply": "We are on it."})
    auth.post(f"/admin/tips/{tip_id}/status", {"status": "open", "disposition": ""})
    with app.app_context():
        events = list(
            dbsession().scalars(
                select(AuditEvent).where(AuditEvent.tip_id == tip_id).order_by(AuditEvent.id)
            )
        )
        staff = [(e.actor, e.action) for e in events if e.actor != "student"]
    assert staff == [
        (f"user:{user_id}", "tip.viewed"),
        (f"user:{user_id}", "tip.replied"),
        (f"user:{user_id}", "tip.status"),
    ]


def test_dashboard_measures_time_to_first_staff_action(app: Flask, auth: AuthActions) -> None:
    tip_id = make_tip(app, FIGHT, age=timedelta(minutes=30))
    make_tip(app, FIGHT)
    auth.login_as("sro")
    auth.client.get(f"/admin/tips/{tip_id}")  # a view alone is not an action
    before = auth.client.get("/admin/dashboard").get_data(as_text=True)
    assert "no data" in before
    auth.post(f"/admin/tips/{tip_id}/notes", {"note": "on it"})
    board = auth.client.get("/admin/dashboard").get_data(as_text=True)
    assert re.search(r"Median: <strong>(29\.\d|30\.\d) minutes", board)
    assert "over 1 tips; 1 without any staff action yet" in board
