"""The queue's filters: category, assigned to me, date range, incident, and search in the
decrypted text of the tips they select (at most SEARCH_CAP decrypted; the page says so)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.admin import AuthActions, make_tip
from tests.support.alerting import GUN, WEDNESDAY_10AM, add_tip, route
from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.intake import records
from tipline.models import AuditEvent, IncidentTip, Tip
from tipline.platform.services import services
from tipline.staff import queuesearch

BULLYING = "some older kids keep pushing my friend in the hallway and calling him names"
VAPING = "people are vaping in the upstairs bathroom every lunch"


def listed(auth: AuthActions, query: str) -> str:
    response = auth.client.get("/admin/?status=all&" + query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_category_filter(app: Flask, auth: AuthActions) -> None:
    bullying, vaping = make_tip(app, BULLYING), make_tip(app, VAPING)
    auth.login_as("sro")
    body = listed(auth, "category=drugs")
    assert f"/admin/tips/{vaping}" in body
    assert f"/admin/tips/{bullying}" not in body
    assert listed(auth, "category=nonsense").count("/admin/tips/") == 2  # ignored, not a 500


def test_assigned_to_me(app: Flask, auth: AuthActions) -> None:
    bullying, vaping = make_tip(app, BULLYING), make_tip(app, VAPING)
    user_id = auth.login_as("sro")
    assert auth.post(f"/admin/tips/{vaping}/assign", {"user_id": str(user_id)}).status_code == 302
    body = listed(auth, "mine=1")
    assert f"/admin/tips/{vaping}" in body
    assert f"/admin/tips/{bullying}" not in body


def test_date_range(app: Flask, auth: AuthActions) -> None:
    old = make_tip(app, BULLYING, age=timedelta(days=20))
    new = make_tip(app, VAPING)
    auth.login_as("sro")
    today = utcnow().date()
    recent = listed(auth, f"from={(today - timedelta(days=2)).isoformat()}")
    assert f"/admin/tips/{new}" in recent
    assert f"/admin/tips/{old}" not in recent
    before = listed(auth, f"to={(today - timedelta(days=10)).isoformat()}")
    assert f"/admin/tips/{old}" in before
    assert f"/admin/tips/{new}" not in before
    assert listed(auth, "from=not-a-date").count("/admin/tips/") == 2


def test_incident_filter_and_link(app: Flask, auth: AuthActions) -> None:
    gun = add_tip(app, GUN, WEDNESDAY_10AM)
    route(app, gun, WEDNESDAY_10AM)
    alone = make_tip(app, VAPING)
    with app.app_context():
        incident_id = dbsession().scalars(select(IncidentTip.incident_id)).one()
    auth.login_as("sro")
    everything = listed(auth, "")
    assert f"/admin/incidents/{incident_id}" in everything  # the queue links the incident
    body = listed(auth, f"incident={incident_id}")
    assert f"/admin/tips/{gun}" in body
    assert f"/admin/tips/{alone}" not in body


def test_search_finds_words_in_the_first_text_and_follow_ups(app: Flask, auth: AuthActions) -> None:
    bullying, vaping = make_tip(app, BULLYING), make_tip(app, VAPING)
    with app.app_context():
        tip = dbsession().get(Tip, bullying)
        assert tip is not None
        records.add_message(
            dbsession(),
            services(app).vault,
            tip,
            direction="in",
            channel="web",
            text="it happens near the Gym Lockers",
            now=utcnow(),
        )
        dbsession().commit()
    auth.login_as("sro")
    body = listed(auth, "q=UPSTAIRS+bathroom")
    assert f"/admin/tips/{vaping}" in body
    assert f"/admin/tips/{bullying}" not in body
    assert "Searched the text of 2 tips" in body
    follow_up = listed(auth, "q=gym+lockers")
    assert f"/admin/tips/{bullying}" in follow_up
    assert f"/admin/tips/{vaping}" not in follow_up


def test_search_reaches_only_tips_the_login_may_view(app: Flask, auth: AuthActions) -> None:
    """A counselor's search never tells whether a weapon tip (not paging them) says a word."""
    weapon = make_tip(app, "he has a gun in his locker and said he will bring it tomorrow")
    with app.app_context():
        tip = dbsession().get(Tip, weapon)
        assert tip is not None
        assert tip.category == "weapon"
    make_tip(app, VAPING, "washington")
    auth.login_as("counselor")
    body = listed(auth, "q=locker")
    assert f"/admin/tips/{weapon}" not in body
    assert "Searched the text of 0 tips" in body
    auth.logout()
    auth.login_as("sro")
    assert "Searched the text of 1 tip;" in listed(auth, "q=vaping")  # lincoln's only


def test_search_decrypts_at_most_the_cap_and_says_so(
    app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queuesearch, "SEARCH_CAP", 2)
    oldest = make_tip(app, VAPING, age=timedelta(days=3))
    for _ in range(2):
        make_tip(app, BULLYING)
    auth.login_as("sro")
    body = listed(auth, "q=vaping")
    assert "Searched the text of 2 tips: the filters select more than" in body
    assert f"/admin/tips/{oldest}" not in body  # beyond the cap: not searched
    narrowed = listed(auth, "q=vaping&category=drugs")
    assert f"/admin/tips/{oldest}" in narrowed


def test_the_search_term_is_kept_nowhere(app: Flask, auth: AuthActions) -> None:
    make_tip(app, VAPING)
    auth.login_as("sro")
    listed(auth, "q=zanzibar")
    with app.app_context():
        details = [str(d) for d in dbsession().scalars(select(AuditEvent.detail))]
    assert not [d for d in details if "zanzibar" in d]


def test_the_live_poll_keeps_the_filters(app: Flask, auth: AuthActions) -> None:
    bullying, vaping = make_tip(app, BULLYING), make_tip(app, VAPING)
    auth.login_as("sro")
    page = listed(auth, "category=drugs&q=vaping")
    assert "category=drugs" in page
    assert "q=vaping" in page
    live = auth.client.get("/admin/queue/live?status=all&category=drugs&q=vaping")
    body = live.get_data(as_text=True)
    assert f"/admin/tips/{vaping}" in body
    assert f"/admin/tips/{bullying}" not in body
    other = auth.client.get("/admin/queue/live?status=all&category=bullying")
    assert other.headers["ETag"] != live.headers["ETag"]
