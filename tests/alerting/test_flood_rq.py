"""Flood mode through the real form, Redis, rq's worker and scheduler; and with Redis gone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from tests.conftest import count
from tests.support.fakes import FakeTwilio
from tests.support.web import post_tip
from tipline.alerting import flood
from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import Flood, FloodTip, OutboundMessage, School, Tip
from tipline.platform.services import ALERTS_QUEUE, QUEUE_NAMES, services
from workers import jobs
from workers.allowlist import JobWorker
from workers.runner import alerts_pass, dispatch_pending

RUIZ = "+15550000111"
CHEN = "+15550000112"  # on duty for Lincoln out of school hours (the tests run in real time)


@pytest.fixture
def rq_app(twilio_app: Flask) -> Iterator[Flask]:
    yield twilio_app
    notifier = twilio_app.extensions.get(jobs.NOTIFIER)
    if notifier is not None:
        notifier.close()


def work(app: Flask) -> None:
    svc = services(app)
    with app.app_context():
        dispatch_pending(svc)
        worker = JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis)
        worker.work(burst=True, with_scheduler=True)


def prank(n: int) -> str:
    return f"Student{n} is bringing a knife to portable {n} tomorrow and says hes going to use it"


def the_flood(app: Flask) -> Flood:
    with app.app_context():
        found = db.session.scalars(select(Flood)).one()
        db.session.expunge_all()
        return found


def wide_window(app: Flask) -> None:
    """Lincoln's flood window and digest at their widest (10 minutes), as its config could."""
    with app.app_context():
        db.session.execute(
            update(School)
            .where(School.slug == "lincoln")
            .values(flood={"window_s": 600, "digest_s": 600})
        )
        db.session.commit()


def make_due(app: Flask, flood_id: str) -> None:
    """Move the digest's time back, as if its minute had passed a few seconds ago."""
    with app.app_context():
        db.session.execute(
            update(Flood)
            .where(Flood.id == flood_id)
            .values(next_digest_at=utcnow() - timedelta(seconds=5))
        )
        db.session.commit()


def test_web_flood_schedules_its_digest_as_a_json_job_that_sends_once(
    rq_app: Flask, fake_twilio: FakeTwilio
) -> None:
    wide_window(rq_app)  # real time here: a slow, shared machine must not miss the rate
    for n in range(8):
        assert post_tip(rq_app.test_client(), prank(n)).status_code == 200
        work(rq_app)
    started = the_flood(rq_app)
    assert started.reason == "6 tips from new web sessions in 600s"
    svc = services(rq_app)
    scheduled = ScheduledJobRegistry(ALERTS_QUEUE, connection=svc.redis).get_job_ids()
    assert f"flood-{started.id}-0" in scheduled
    [sro] = {m.form["To"] for m in fake_twilio.messages() if m.form["To"] in (RUIZ, CHEN)}
    to_sro = [m.form["Body"] for m in fake_twilio.messages() if m.form["To"] == sro]
    assert len(to_sro) == 6  # five pages, then the start notice
    assert to_sro[-1].startswith("Flood mode at Lincoln High School: 6 tips from new web")

    make_due(rq_app, started.id)
    assert flood.enqueue_digest(svc, started.id, 0, utcnow())
    assert flood.enqueue_digest(svc, started.id, 0, utcnow())  # a duplicate: sends nothing
    work(rq_app)
    digests = [
        m.form["Body"]
        for m in fake_twilio.messages()
        if m.form["To"] == sro and "new tips at" in m.form["Body"]
    ]
    assert len(digests) == 1
    assert digests[0].startswith("8 new tips at Lincoln High School in the last minute, 8 critical")
    assert the_flood(rq_app).digests == 1
    assert (
        f"flood-{started.id}-1"
        in ScheduledJobRegistry(ALERTS_QUEUE, connection=svc.redis).get_job_ids()
    )


def test_with_redis_gone_tips_are_stored_flood_mode_starts_and_the_sweeper_sends_digests(
    app: Flask, dead_redis_app: Flask
) -> None:
    client = dead_redis_app.test_client()
    for n in range(7):
        assert post_tip(client, prank(n)).status_code == 200  # Redis down: every tip stored
    assert count(app, Tip) == 7
    # They arrived 20 s ago, half a second apart; the sweeper routes them now, late.
    arrived = utcnow() - timedelta(seconds=20)
    with app.app_context():
        ids = list(db.session.scalars(select(Tip.id).order_by(Tip.created_at)))
        for n, tip_id in enumerate(ids):
            at = arrived + timedelta(seconds=n * 0.5)
            db.session.execute(
                update(Tip).where(Tip.id == tip_id).values(created_at=at, last_activity_at=at)
            )
        db.session.commit()
    with dead_redis_app.app_context():
        alerts_pass(db.session(), utcnow())
    with app.app_context():
        assert list(db.session.scalars(select(Tip.id).where(Tip.needs_routing))) == []
    started = the_flood(app)  # counted by arrival: a flood, though routed late
    assert count(app, FloodTip) == 7  # the five before the level, then the sixth and seventh
    make_due(app, started.id)
    with dead_redis_app.app_context():
        alerts_pass(db.session(), utcnow())
    assert the_flood(app).digests == 1
    with app.app_context():
        sent = db.session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.purpose == "notice", OutboundMessage.summary.like("flood digest%")
            )
        ).all()
        assert sent
        assert all(m.status != "queued" for m in sent)  # sent by the sweeper itself
