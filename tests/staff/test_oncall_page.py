"""On duty (/admin/oncall): now and next at the login's schools; admins of a school and
district staff set cover from the page (CSRF, audited); everyone else is refused."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.admin import AuthActions
from tests.support.alerting import WEDNESDAY_10AM
from tipline.db import utcnow
from tipline.district import cache, cover
from tipline.extensions import dbsession
from tipline.models import AuditEvent, OnCallOverride

CHICAGO = ZoneInfo("America/Chicago")


def local(delta: timedelta) -> str:
    return (utcnow() + delta).astimezone(CHICAGO).strftime("%Y-%m-%dT%H:%M")


def cover_form(school: str = "lincoln", staff: str = "chen", **extra: str) -> dict[str, str]:
    return {
        "school": school,
        "duty": "sro",
        "staff": staff,
        "start": local(timedelta(minutes=-5)),
        "end": local(timedelta(hours=2)),
        **extra,
    }


def overrides(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = dbsession().scalars(select(OnCallOverride)).all()
        return [(o.staff.key, o.school.slug) for o in rows]


@pytest.mark.parametrize(
    ("name", "lincoln", "washington"),
    [
        ("sro", True, False),
        ("counselor", True, False),
        ("admin", True, False),
        ("other_admin", False, True),
        ("district", True, True),
    ],
)
def test_each_login_sees_its_schools(
    auth: AuthActions, name: str, lincoln: bool, washington: bool
) -> None:
    auth.login_as(name)
    page = auth.client.get("/admin/oncall")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert ("Lincoln High School" in html) is lincoln
    assert ("Washington" in html) is washington
    assert '<div class="table-wrap">' in html
    assert "+1555" not in html  # no phone numbers, staff's or anyone's


def test_now_and_next_follow_the_shifts(app: Flask) -> None:
    with app.app_context():
        district = cache.current_district(dbsession())
    board = cover.school_duty(district, "lincoln", WEDNESDAY_10AM, [])
    sro = next(d for d in board.duties if d.duty == "sro")
    assert [p.staff for p in sro.now] == ["ruiz"]
    assert sro.next_at is not None
    assert sro.next_at > WEDNESDAY_10AM
    assert {p.staff for p in sro.next} != {"ruiz"}


@pytest.mark.parametrize(
    ("name", "school", "allowed"),
    [
        ("admin", "lincoln", True),
        ("admin", "washington", False),
        ("other_admin", "lincoln", False),
        ("district", "washington", True),
        ("sro", "lincoln", False),
        ("counselor", "lincoln", False),
    ],
)
def test_who_may_set_cover(
    app: Flask, auth: AuthActions, name: str, school: str, allowed: bool
) -> None:
    user_id = auth.login_as(name)
    staff = "chen"  # works at both schools
    response = auth.post("/admin/oncall/override", cover_form(school, staff))
    assert response.status_code == (302 if allowed else 403)
    assert overrides(app) == ([(staff, school)] if allowed else [])
    if allowed:
        html = auth.client.get("/admin/oncall").get_data(as_text=True)
        assert "Officer Marcus Chen" in html
        assert "override from" in html
        with app.app_context():
            event = (
                dbsession()
                .scalars(select(AuditEvent).where(AuditEvent.action == "oncall.override"))
                .one()
            )
            assert event.actor == f"user:{user_id}"
            assert event.detail["staff"] == staff


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"staff": "ruiz", "school": "lincoln"}, ""),  # control: allowed
        ({"staff": "nobody"}, "unknown staff id"),
        ({"staff": "nguyen"}, "does not work at lincoln"),
        ({"end": local(timedelta(hours=-3))}, "the end must be after the start"),
        ({"start": "tomorrow morning"}, "is not a date and time"),
        ({"duty": "janitor"}, "unknown duty"),
        ({"end": local(timedelta(days=90))}, "longer than 60 days"),
    ],
)
def test_bad_cover_is_refused_with_a_reason(
    app: Flask, auth: AuthActions, change: dict[str, str], message: str
) -> None:
    auth.login_as("admin")
    response = auth.post("/admin/oncall/override", cover_form(**change))
    assert response.status_code == 302
    html = auth.client.get("/admin/oncall").get_data(as_text=True)
    if message:
        assert message in html.replace("&#39;", "'")
        assert overrides(app) == []
    else:
        assert overrides(app) == [("ruiz", "lincoln")]


def test_cover_needs_the_csrf_token(app: Flask, auth: AuthActions) -> None:
    auth.login_as("admin")
    response = auth.client.post("/admin/oncall/override", data=cover_form())
    assert response.status_code in (302, 400)
    assert overrides(app) == []
