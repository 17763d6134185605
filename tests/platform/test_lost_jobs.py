"""A job whose worker died mid-run (SIGKILL, OOM) stays "started" in rq until its timeout runs
out, minutes on. The sweeper must not wait that long to send a page again."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from tipline.db import utcnow
from tipline.platform import queueing
from tipline.platform.services import ALERTS_QUEUE, JobKind, services


def started_job(app: Flask, beat_age: timedelta) -> str:
    """A send job as a worker leaves it when it takes the job: started, with a heartbeat."""
    svc = services(app)
    job = svc.queue(ALERTS_QUEUE).enqueue(
        svc.job(JobKind.SEND), "no-such-message", job_id="send-no-such-message-0"
    )
    job.set_status("started")
    job.heartbeat(utcnow() - beat_age, ttl=600)
    return str(job.id)


def test_a_running_job_with_a_fresh_heartbeat_is_live(app: Flask) -> None:
    job_id = started_job(app, timedelta(seconds=5))
    assert queueing.job_is_live(services(app), job_id)


def test_a_running_job_whose_worker_died_is_lost(app: Flask) -> None:
    job_id = started_job(app, queueing.STARTED_STALE + timedelta(seconds=1))
    assert not queueing.job_is_live(services(app), job_id)


def test_a_queued_job_is_live_however_old(app: Flask) -> None:
    svc = services(app)
    job = svc.queue(ALERTS_QUEUE).enqueue(svc.job(JobKind.SEND), "x", job_id="send-x-0")
    assert queueing.job_is_live(svc, str(job.id), now=utcnow() + timedelta(hours=1))
