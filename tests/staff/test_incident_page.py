"""An incident's page: its tips by the viewer's grants, who was paged, one acknowledgement for
all (only staff the policy names stop it), moving tips in and out (CSRF, audited)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.admin import AuthActions
from tests.support.alerting import GUN, RUIZ, STUDENT, WEDNESDAY_10AM, add_tip, route
from tipline.extensions import dbsession
from tipline.models import Alert, AuditEvent, Incident, IncidentTip, Tip

SECOND = "Jake has a gun in his backpack, he showed it in the parking lot"
VAPES = "someone is selling vapes in the B hall"


def incident_with_two_tips(app: Flask) -> tuple[str, str, str]:
    """Two weapon tips about one event at Lincoln, routed: one incident paging the SRO."""
    first = add_tip(app, GUN, WEDNESDAY_10AM)
    route(app, first, WEDNESDAY_10AM)
    second = add_tip(app, SECOND, WEDNESDAY_10AM)
    route(app, second, WEDNESDAY_10AM)
    with app.app_context():
        links = dbsession().scalars(select(IncidentTip)).all()
        assert {link.tip_id for link in links} == {first, second}
        assert len({link.incident_id for link in links}) == 1
        return links[0].incident_id, first, second


def code(app: Flask, tip_id: str) -> str:
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        return tip.code


def actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(dbsession().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("sro", 200),
        ("admin", 200),
        ("district", 200),
        ("counselor", 404),  # weapon tips, and the life-safety chain does not name counselors
        ("other_admin", 404),  # another school
    ],
)
def test_who_sees_an_incident(app: Flask, auth: AuthActions, name: str, status: int) -> None:
    incident_id, first, second = incident_with_two_tips(app)
    auth.login_as(name)
    page = auth.client.get(f"/admin/incidents/{incident_id}")
    assert page.status_code == status
    if status == 200:
        html = page.get_data(as_text=True)
        assert code(app, first) in html
        assert code(app, second) in html
        assert "Officer Dana Ruiz" in html  # who was paged
        assert '<div class="table-wrap">' in html
        for secret in (STUDENT, RUIZ, "backpack"):
            assert secret not in html
        assert "incident.viewed" in actions(app)


def test_a_missing_incident_is_404(auth: AuthActions) -> None:
    auth.login_as("district")
    assert auth.client.get("/admin/incidents/nope").status_code == 404
    assert auth.client.get("/admin/incidents/" + "x" * 300).status_code == 404


def test_the_tip_page_links_to_its_incident(app: Flask, auth: AuthActions) -> None:
    incident_id, first, _ = incident_with_two_tips(app)
    auth.login_as("sro")
    html = auth.client.get(f"/admin/tips/{first}").get_data(as_text=True)
    assert f"/admin/incidents/{incident_id}" in html


def test_one_acknowledgement_stops_the_incident_for_all_its_tips(
    app: Flask, auth: AuthActions
) -> None:
    incident_id, first, second = incident_with_two_tips(app)
    auth.login_as("sro")
    page = auth.client.get(f"/admin/incidents/{incident_id}").get_data(as_text=True)
    assert "Acknowledge for all its tips" in page
    response = auth.post(f"/admin/incidents/{incident_id}/acknowledge", {})
    assert response.status_code == 302
    with app.app_context():
        incident = dbsession().get(Incident, incident_id)
        assert incident is not None
        alert = dbsession().get(Alert, incident.alert_id)
        assert alert is not None
        assert alert.status == "acked"
    for tip_id in (first, second):
        html = auth.client.get(f"/admin/tips/{tip_id}").get_data(as_text=True)
        assert "acknowledged by Officer Dana Ruiz" in html
    assert "alert.acked" in actions(app)


def test_staff_the_policy_does_not_name_only_mark_it_seen(app: Flask, auth: AuthActions) -> None:
    """District staff see the incident; a chain (and fallback) naming only the SRO does not
    name them: seen, and the escalation goes on."""
    incident_id, _, _ = incident_with_two_tips(app)
    with app.app_context():
        alert = dbsession().scalars(select(Alert)).one()
        alert.policy = {"name": "sro-only", "steps": [{"notify": ["staff:ruiz"], "wait": 120}]}
        alert.school.fallback = ["staff:ruiz"]
        dbsession().commit()
    auth.login_as("district")
    auth.post(f"/admin/incidents/{incident_id}/acknowledge", {})
    with app.app_context():
        alert = dbsession().scalars(select(Alert)).one()
        assert alert.status == "open"
    assert "alert.seen" in actions(app)
    assert "alert.acked" not in actions(app)


def test_acknowledging_needs_the_csrf_token(app: Flask, auth: AuthActions) -> None:
    incident_id, _, _ = incident_with_two_tips(app)
    auth.login_as("sro")
    response = auth.client.post(f"/admin/incidents/{incident_id}/acknowledge", data={})
    assert response.status_code in (302, 400)
    with app.app_context():
        assert dbsession().scalars(select(Alert)).one().status == "open"


def test_staff_move_a_tip_in_and_out(app: Flask, auth: AuthActions) -> None:
    incident_id, _, _ = incident_with_two_tips(app)
    other = add_tip(app, VAPES, WEDNESDAY_10AM)
    auth.login_as("sro")
    response = auth.post(f"/admin/incidents/{incident_id}/tips", {"code": code(app, other)})
    assert response.status_code == 302
    with app.app_context():
        link = dbsession().get(IncidentTip, other)
        assert link is not None
        assert link.incident_id == incident_id
        incident = dbsession().get(Incident, incident_id)
        assert incident is not None
        assert incident.tip_count == 3
    assert "incident.tip_added" in actions(app)

    response = auth.post(f"/admin/incidents/{incident_id}/tips/{other}/remove", {})
    assert response.status_code == 302
    with app.app_context():
        assert dbsession().get(IncidentTip, other) is None
        incident = dbsession().get(Incident, incident_id)
        assert incident is not None
        assert incident.tip_count == 2
    assert "incident.tip_removed" in actions(app)


def test_a_tip_of_another_school_cannot_be_moved_in(app: Flask, auth: AuthActions) -> None:
    incident_id, _, _ = incident_with_two_tips(app)
    elsewhere = add_tip(app, VAPES, WEDNESDAY_10AM, school="washington")
    auth.login_as("district")
    response = auth.post(f"/admin/incidents/{incident_id}/tips", {"code": code(app, elsewhere)})
    assert response.status_code == 302
    with app.app_context():
        assert dbsession().get(IncidentTip, elsewhere) is None
    page = auth.client.get(f"/admin/incidents/{incident_id}").get_data(as_text=True)
    assert "at this incident&#39;s school" in page


def test_moving_without_the_right_or_the_token_is_refused(app: Flask, auth: AuthActions) -> None:
    incident_id, first, _ = incident_with_two_tips(app)
    other = add_tip(app, VAPES, WEDNESDAY_10AM)
    auth.login_as("other_admin")  # another school: the incident is missing
    assert auth.post(f"/admin/incidents/{incident_id}/tips/{first}/remove", {}).status_code == 404
    assert (
        auth.post(f"/admin/incidents/{incident_id}/tips", {"code": code(app, other)}).status_code
        == 404
    )
    auth.logout()
    auth.login_as("sro")
    no_token = auth.client.post(f"/admin/incidents/{incident_id}/tips/{first}/remove")
    assert no_token.status_code in (302, 400)
    with app.app_context():
        assert dbsession().get(IncidentTip, first) is not None
        assert dbsession().get(IncidentTip, other) is None


def test_a_viewer_sees_only_the_tips_its_grants_allow(app: Flask, auth: AuthActions) -> None:
    """A counselor sees a drugs tip moved into a weapon incident, and not the weapon tips."""
    incident_id, first, _ = incident_with_two_tips(app)
    other = add_tip(app, VAPES, WEDNESDAY_10AM)
    auth.login_as("sro")
    auth.post(f"/admin/incidents/{incident_id}/tips", {"code": code(app, other)})
    auth.logout()
    auth.login_as("counselor")
    page = auth.client.get(f"/admin/incidents/{incident_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert code(app, other) in html
    assert code(app, first) not in html
    assert "2 more you may not view" in html
    assert "Move into this incident" not in html  # counselors do not reclassify
    assert auth.post(f"/admin/incidents/{incident_id}/tips/{other}/remove", {}).status_code == 403
