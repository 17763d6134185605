"""The same escalation through the real webhook, real Redis, rq's worker and scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from rq.registry import ScheduledJobRegistry

from tests.conftest import post_signed, sms_params, twiml_text
from tests.support.alerting import (
    CHEN,
    GUN,
    LINCOLN,
    RUIZ,
    steps,
    the_alert,
    use_config,
)
from tests.support.fakes import FakeTwilio
from tests.support.policies import policy, step
from tipline.db import utcnow
from tipline.platform.services import ALERTS_QUEUE, DEFAULT_QUEUE, QUEUE_NAMES, services
from workers import jobs
from workers.allowlist import JobWorker
from workers.runner import dispatch_marked, dispatch_pending

SHORT = policy(
    "short",
    step("on-duty:sro", channels=("sms", "voice"), wait="2s"),
    step("role:district", wait="2s"),
    repeat=0,
)


@pytest.fixture
def rq_app(twilio_app: Flask) -> Iterator[Flask]:
    yield twilio_app
    notifier = twilio_app.extensions.get(jobs.NOTIFIER)
    if notifier is not None:
        notifier.close()


def work(app: Flask) -> None:
    svc = services(app)
    with app.app_context():
        dispatch_pending(svc)  # as `tipline worker` does: the hand-offs become routing jobs
        dispatch_marked(app)  # and the first texts PostgreSQL notified
        worker = JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis)
        worker.work(burst=True, with_scheduler=True)


def text(app: Flask, body: str, from_: str) -> str:
    resp = post_signed(app.test_client(), "/sms/inbound", sms_params(body, from_=from_, to=LINCOLN))
    assert resp.status_code == 200
    return twiml_text(resp)


def wait_until_due(app: Flask) -> None:
    """Sleep until the open alert's next step is due; its timer must be scheduled in rq."""
    assert ScheduledJobRegistry(ALERTS_QUEUE, connection=services(app).redis).get_job_ids()
    due = the_alert(app).next_at
    assert due is not None
    time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.1)


def test_webhook_to_page_then_next_step_at_its_wait_then_ack_stops_it(
    rq_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(rq_app, tmp_path, SHORT)
    text(rq_app, GUN, "+15551230001")
    work(rq_app)
    [sms] = fake_twilio.messages()
    [call] = fake_twilio.calls()
    sro = sms.form["To"]
    assert sro in (RUIZ, CHEN)
    assert call.form["To"] == sro
    assert [s[:2] for s in steps(rq_app)] == [(0, 0)]

    wait_until_due(rq_app)
    work(rq_app)
    assert [s[:2] for s in steps(rq_app)] == [(0, 0), (0, 1)]
    assert [m.form["To"] for m in fake_twilio.messages()][1:] == ["+15550000141"]  # okafor

    code = the_alert(rq_app).tip.code
    reply = text(rq_app, f"ACK {code[1:]}", sro)
    assert reply.startswith(f"Acknowledged: {code}")
    work(rq_app)  # the notice to okafor, who was paged
    assert (
        fake_twilio.messages()[-1]
        .form["Body"]
        .endswith("acknowledged " + code + " (Lincoln High School).")
    )
    assert the_alert(rq_app).status == "acked"


def test_jobs_that_run_twice_send_once(
    rq_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(rq_app, tmp_path, SHORT)
    text(rq_app, GUN, "+15551230001")
    alert_tip = None
    svc = services(rq_app)
    work(rq_app)
    alert = the_alert(rq_app)
    alert_tip = alert.tip_id
    q = svc.queue(ALERTS_QUEUE)
    q.enqueue(jobs.route_tip, alert_tip)  # a duplicate routing job
    wait_until_due(rq_app)
    fresh = the_alert(rq_app)
    q.enqueue(jobs.escalate, fresh.id, fresh.token)  # the timer, twice more
    q.enqueue(jobs.escalate, fresh.id, fresh.token)
    work(rq_app)
    assert [s[:2] for s in steps(rq_app)] == [(0, 0), (0, 1)]
    assert len(fake_twilio.messages()) == 2
    assert len(fake_twilio.calls()) == 1


def test_the_sms_page_leaves_with_its_routing_job_and_the_call_waits_behind_pages(
    rq_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    """In a burst, a page handed to a send job waited behind the next tips' routing; the
    routing job sends it itself, and the voice call queues behind every page."""
    use_config(rq_app, tmp_path, SHORT)
    text(rq_app, GUN, "+15551230001")
    svc = services(rq_app)
    with rq_app.app_context():
        dispatch_pending(svc)
        dispatch_marked(rq_app)
        alerts = svc.queue(ALERTS_QUEUE)
        [route_id] = alerts.get_job_ids()
        JobWorker([alerts], connection=svc.redis).work(burst=True, max_jobs=1)
        [sms] = fake_twilio.messages()  # sent by the routing job: no send job was queued
        assert sms.form["To"] in (RUIZ, CHEN)
        assert fake_twilio.calls() == []
        assert alerts.get_job_ids() == []
        [call_job] = svc.queue(DEFAULT_QUEUE).get_job_ids()
        assert call_job.startswith("send-")
        assert route_id.startswith("route-")


def test_a_page_its_routing_job_could_not_send_is_retried(
    rq_app: Flask, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    use_config(rq_app, tmp_path, SHORT)
    fake_twilio.failures = [500]  # Twilio's answer to the routing job's page
    text(rq_app, GUN, "+15551230001")
    work(rq_app)
    deadline = time.monotonic() + 60
    while len(fake_twilio.messages()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        work(rq_app)  # rq's scheduler queues the retry once it is due
    first, second = fake_twilio.messages()[:2]
    assert first.form["To"] == second.form["To"]
    assert first.form["To"] in (RUIZ, CHEN)
