"""Flood mode: a web flood of prank tips is stored whole and reaches staff as a few digests,
a real threat in the middle of it is named within a minute, and thirty distinct texts at one a
second stay below the flood level."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.conftest import REPO, count, post_signed, sms_params
from tests.support.admin import AuthActions
from tests.support.alerting import (
    GARCIA,
    LINCOLN,
    RUIZ,
    WEDNESDAY_10AM,
    add_tip,
    outbound,
    route,
    run_due,
    sender_for,
)
from tests.support.fakes import FakeTwilio
from tests.support.web import post_tip
from tipline.alerting import flood
from tipline.district.config import load_district
from tipline.district.sync import sync_district
from tipline.extensions import db, dbsession
from tipline.models import AuditEvent, Flood, FloodTip, OutboundMessage, Tip
from tipline.platform.services import services
from tipline.web.admin import views as admin_views

T0 = WEDNESDAY_10AM
PATEL, BROOKS = "+15550000121", "+15550000122"
NAMES = [
    "Devon", "Jaylen", "Marcus", "Aiden", "Sophia", "Liam", "Noah", "Emma", "Olivia", "Ava",
    "Mia", "Ethan", "Mason", "Logan", "Lucas", "Elijah", "Isaiah", "Jayden", "Carter", "Dylan",
]  # fmt: skip
WEAPONS = ["knife", "gun", "machete", "pistol", "rifle"]
PLACES = ["the band room", "portable 4", "B hall", "the gym", "the library", "the bus loop"]
REAL = "Devon just pulled a knife on a kid in the band room, hes bleeding, come now"


def prank(n: int) -> str:
    name, weapon = NAMES[n % len(NAMES)], WEAPONS[n % len(WEAPONS)]
    place = PLACES[n % len(PLACES)]
    return f"{name} is bringing a {weapon} to {place} tomorrow and says hes going to use it {n:06x}"


def route_waiting(app: Flask, at: datetime) -> list[str]:
    """Route every tip waiting for it, as the routing job would at `at`; their codes."""
    with app.app_context():
        ids = list(db.session.scalars(select(Tip.id).where(Tip.needs_routing)))
    codes = []
    for tip_id in ids:
        routed = route(app, tip_id, at)
        assert routed is not None
        codes.append(routed.code)
    return codes


def run_digests(app: Flask, at: datetime) -> int:
    """Run every flood digest due at `at`, as the digest job (or the sweeper) would."""
    sent = 0
    with app.app_context():
        session = dbsession()
        svc = services(app)
        for flood_id, digests in flood.due(session, at, timedelta(0)):
            run = flood.run_digest(
                session, svc.vault, flood_id, digests, at, public_url=svc.settings.public_url
            )
            sent += len(run.outbound_ids)
    return sent


def floods(app: Flask) -> list[Flood]:
    with app.app_context():
        found = list(db.session.scalars(select(Flood).order_by(Flood.started_at)))
        db.session.expunge_all()
        return found


def sms_to(fake: FakeTwilio, phone: str) -> list[str]:
    return [m.form["Body"] for m in fake.messages() if m.form["To"] == phone]


def test_a_web_flood_of_300_posts_is_stored_whole_and_reaches_staff_as_a_few_digests(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    sender = sender_for(twilio_app)
    engaged_at = None
    real_code, real_at = "", T0
    for n in range(300):  # 300 posts in a minute, each from a new browser session
        at = T0 + timedelta(seconds=n * 0.2)
        resp = post_tip(twilio_app.test_client(), prank(n))
        assert resp.status_code == 200
        if n == 150:  # a real threat by SMS, halfway through
            post_signed(
                twilio_app.test_client(),
                "/sms/inbound",
                sms_params(REAL, from_="+15553009999", to=LINCOLN),
            )
        codes = route_waiting(twilio_app, at)
        if n == 150:
            with twilio_app.app_context():
                real_code = db.session.scalars(select(Tip.code).where(Tip.source == "sms")).one()
            assert real_code in codes
            real_at = at
        if engaged_at is None and floods(twilio_app):
            engaged_at = n + 1
        run_digests(twilio_app, at)
        sender.send_owed(at)
    assert engaged_at is not None
    assert engaged_at <= 8  # a web flood engages flood mode within its first 8 posts
    assert engaged_at == 6  # the default: 6 tips from new web sessions within 10 s
    named_at = None
    for second in range(61, 420):  # past every step's wait
        at = T0 + timedelta(seconds=second)
        run_digests(twilio_app, at)
        run_due(twilio_app, at)  # escalation steps, as their timers would run them
        sender.send_owed(at)
        if named_at is None and any(real_code in body for body in sms_to(fake_twilio, RUIZ)):
            named_at = at
    # Nothing dropped: every post and the real text are stored and in the queue.
    assert count(twilio_app, Tip) == 301
    # The flood holds the tips after its level was reached and takes over the ones before.
    assert count(twilio_app, FloodTip) == 301
    # The real threat is named by its code in a digest within 60 s, ahead of the pranks.
    assert named_at is not None
    assert named_at - real_at <= timedelta(seconds=60)
    [digest] = [b for b in sms_to(fake_twilio, RUIZ) if real_code in b]
    assert digest.startswith("301 new tips at Lincoln High School")
    assert f"critical: {real_code} (now, hurt), " in digest
    assert "in the last minute, 301 critical: " in digest  # every critical tip counted
    listed, more = digest.split(" more. Queue: ")[0].rsplit(" and ", 1)
    assert len(re.findall(r"\bT\d{4,}\b", listed)) == 20  # at most 20 codes a digest
    assert int(more) > 0  # the rest of the named tips are counted
    assert "http://tipline.test/admin/" in digest
    # Each recipient got a few SMS: the pages before the flood level was reached (the
    # on-duty SRO only), the start notice, one digest and the end notice.
    for phone, pages in ((RUIZ, engaged_at - 1), (GARCIA, 0), (PATEL, 0), (BROOKS, 0)):
        got = sms_to(fake_twilio, phone)
        flood_sms = [b for b in got if "Flood mode" in b or "new tips at" in b]
        assert len(flood_sms) == 3, (phone, got)
        assert len(got) == pages + 3 <= 8
    [ended] = floods(twilio_app)
    assert ended.ended_by == "quiet"
    assert ended.tips == 301
    [end] = [b for b in sms_to(fake_twilio, RUIZ) if "ended (quiet for 2 min)" in b]
    # The pre-flood alerts it stopped escalate no more, but their codes are named once more.
    assert len(re.findall(r"\bT\d{4,}\b", end.split("Still not acknowledged:")[1])) == 5


def flood_by_sms(app: Flask, tips: int = 20, first: int = 0) -> list[str]:
    """`tips` distinct SMS tips routed 0.1 s apart: 20 reach the school's any-channel rate."""
    ids = [add_tip(app, prank(n), T0, phone=f"+1555400{n:04d}") for n in range(first, first + tips)]
    return [
        routed.code
        for n, tip_id in enumerate(ids)
        if (routed := route(app, tip_id, T0 + timedelta(seconds=(first + n) * 0.1))) is not None
    ]


def test_20_new_tips_of_any_channel_within_10_s_start_flood_mode(app: Flask) -> None:
    flood_by_sms(app, 19)
    assert floods(app) == []
    flood_by_sms(app, 1, first=19)
    [started] = floods(app)
    assert started.ended_at is None
    assert started.reason == "20 new tips in 10s"
    starts = [m.to_label for m in outbound(app, purpose="notice")]
    assert sorted(starts) == ["brooks", "garcia", "patel", "ruiz"]  # first step and admins


def test_a_school_s_own_flood_level_from_the_config(app: Flask, tmp_path: Path) -> None:
    example = (REPO / "config" / "example.toml").read_text()
    custom = example.replace(
        'places = ["the pit"', 'flood = { tips = 40, window = "20s" }\nplaces = ["the pit"', 1
    )
    assert custom != example
    path = tmp_path / "district.toml"
    path.write_text(custom)
    with app.app_context():
        sync_district(dbsession(), load_district(path))
        db.session.commit()
    flood_by_sms(app, 30)
    assert floods(app) == []  # 30 tips in 3 s: under this school's level of 40


def test_an_admin_ends_flood_mode_from_the_dashboard(
    app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The admin ends it on the test's clock, 2.5 s in: the end notice goes to whoever is on
    # duty then, and on the wall clock that depends on the hour the suite runs.
    monkeypatch.setattr(admin_views, "utcnow", lambda: T0 + timedelta(seconds=2.5))
    flood_by_sms(app)
    [started] = floods(app)
    auth.login_as("counselor")
    page = auth.client.get("/admin/dashboard").get_data(as_text=True)
    assert "in flood mode now" in page
    assert "End flood mode" not in page  # a counselor may not end it
    assert auth.post(f"/admin/floods/{started.id}/end", {}).status_code == 403
    auth.logout()
    auth.login_as("other_admin")  # another school's admin does not see it
    assert auth.post(f"/admin/floods/{started.id}/end", {}).status_code == 404
    auth.logout()

    admin_id = auth.login_as("admin")
    page = auth.client.get("/admin/dashboard").get_data(as_text=True)
    assert "End flood mode" in page
    queue = auth.client.get("/admin/").get_data(as_text=True)
    assert "Lincoln High School is in flood mode" in queue
    assert f"/admin/floods/{started.id}/end" in queue
    forged = auth.client.post(f"/admin/floods/{started.id}/end", data={})
    assert forged.status_code == 400  # no CSRF token
    assert floods(app)[0].ended_at is None
    resp = auth.post(f"/admin/floods/{started.id}/end", {})
    assert resp.status_code == 302
    [ended] = floods(app)
    assert ended.ended_at is not None
    assert ended.ended_by == f"user:{admin_id}"
    with app.app_context():
        [event] = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "flood.ended")
        ).all()
        assert event.actor == f"user:{admin_id}"
    bodies = [b for b in notice_bodies(app) if "ended by an admin" in b]
    assert len(bodies) == 4  # the start notice's people hear it ended
    assert all(b.startswith("20 new tips at Lincoln High School") for b in bodies), bodies
    page = auth.client.get("/admin/dashboard").get_data(as_text=True)
    assert "in flood mode now" not in page
    assert "is in flood mode" not in auth.client.get("/admin/").get_data(as_text=True)
    assert f"user:{admin_id}" in page  # the past flood, and who ended it
    assert auth.post(f"/admin/floods/{started.id}/end", {}).status_code == 302  # twice: no-op
    # Tips page one by one again (tips before the end no longer count toward a flood).
    tip_id = add_tip(app, REAL, T0 + timedelta(seconds=3), phone="+15554009999")
    routed = route(app, tip_id, T0 + timedelta(seconds=3))
    assert routed is not None
    assert routed.alert_id is not None


def test_the_flood_gauge_counts_active_and_ended_floods(app: Flask) -> None:
    flood_by_sms(app)
    body = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    text = body.get_data(as_text=True)
    assert 'tipline_floods{state="active"} 1.0' in text
    assert 'tipline_floods{state="ended"} 0.0' in text


def notice_bodies(app: Flask) -> list[str]:
    with app.app_context():
        vault = services(app).vault
        rows = db.session.scalars(
            select(OutboundMessage).where(OutboundMessage.purpose == "notice")
        ).all()
        return [vault.get_text(m, "body") or "" for m in rows]
