"""Flood mode: a web flood of prank tips is stored whole and reaches staff as a few digests,
a real threat in the middle of it is named within a minute, and thirty distinct texts at one a
second stay below the flood level."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select

from tests.conftest import count, post_signed, sms_params
from tests.support.alerting import GARCIA, LINCOLN, RUIZ, WEDNESDAY_10AM, route, sender_for
from tests.support.fakes import FakeTwilio
from tests.support.web import post_tip
from tipline.alerting import flood
from tipline.extensions import db, dbsession
from tipline.models import Flood, FloodTip, Tip
from tipline.platform.services import services

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
                real_code = db.session.scalars(
                    select(Tip.code).where(Tip.source == "sms")
                ).one()
            assert real_code in codes
            real_at = at
        if engaged_at is None and floods(twilio_app):
            engaged_at = n + 1
        run_digests(twilio_app, at)
        sender.send_owed(at)
    assert engaged_at is not None
    assert engaged_at <= 8  # a web flood engages flood mode within its first 8 posts
    named_at = None
    for second in range(61, 240):
        at = T0 + timedelta(seconds=second)
        run_digests(twilio_app, at)
        sender.send_owed(at)
        if named_at is None and any(real_code in body for body in sms_to(fake_twilio, RUIZ)):
            named_at = at
    # Nothing dropped: every post and the real text are stored and in the queue.
    assert count(twilio_app, Tip) == 301
    assert count(twilio_app, FloodTip) == 301 - (engaged_at - 1)
    # The real threat is named by its code in a digest within 60 s, ahead of the pranks.
    assert named_at is not None
    assert named_at - real_at <= timedelta(seconds=60)
    [digest] = [b for b in sms_to(fake_twilio, RUIZ) if real_code in b]
    assert digest.startswith(f"{301 - (engaged_at - 1)} new tips at Lincoln High School")
    assert f"critical: {real_code} (now, hurt), " in digest
    assert " and " in digest  # more named tips than a digest lists are counted
    assert "http://tipline.test/admin/" in digest
    # Each recipient got a few SMS: the pages before the flood level was reached (the
    # on-duty SRO only), the start notice, one digest and the end notice.
    for phone, pages in ((RUIZ, engaged_at - 1), (GARCIA, 0), (PATEL, 0), (BROOKS, 0)):
        got = sms_to(fake_twilio, phone)
        flood_sms = [b for b in got if "Flood mode" in b or "new tips at" in b]
        assert len(flood_sms) == 3, (phone, got)
        assert len(got) <= pages + 3
    [ended] = floods(twilio_app)
    assert ended.ended_by == "quiet"
    assert ended.tips == 301 - (engaged_at - 1)
    assert any("ended (quiet for 2 min)" in b for b in sms_to(fake_twilio, RUIZ))
