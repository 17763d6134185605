"""rq jobs. Arguments are ids only; each job opens its own app context and is idempotent."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Flask

from tipline.alerting import escalation, fallback, flood, routing
from tipline.db import utcnow
from tipline.extensions import dbsession
from tipline.intake import media
from tipline.outbox import messages, sending
from tipline.outbox.notifier import Notifier
from tipline.platform import queueing
from tipline.platform.services import MEDIA_QUEUE, Services, services
from tipline.staff import breakglass
from workers.context import job_context

if TYPE_CHECKING:
    from datetime import datetime

    from tipline.alerting.escalation import StepRun
    from tipline.alerting.flood import FloodRun

log = logging.getLogger(__name__)

NOTIFIER = "tipline.notifier"
SANDBOX_LIMITS = "TIPLINE_SANDBOX_LIMITS"  # app.config: a sandbox.Limits, for tests
MEDIA_RETRY_SLACK = timedelta(seconds=1)


def notifier(app: Flask) -> Notifier:
    """The app's Notifier (one Twilio client, one HTTP connection pool, per process)."""

    found = app.extensions.get(NOTIFIER)
    if not isinstance(found, Notifier):
        found = app.extensions[NOTIFIER] = Notifier(services(app).settings)
    return found


def route_tip(tip_id: str) -> bool:
    """Route a stored tip and, in the same transaction, run its alert's first step.

    Idempotent: routing clears the tip's mark with a compare-and-set, and the step is guarded
    by the alert's token and the unique (alert, round, step) row.
    """

    with job_context() as app:
        svc = services(app)
        session = dbsession()
        routed = routing.route_tip(
            session,
            svc.vault,
            svc.rules(session),
            tip_id,
            utcnow(),
            public_url=svc.settings.public_url,
        )
        if routed is None:
            return False
        if routed.first_step is not None:
            follow(app, routed.first_step)
        if routed.flood is not None:
            follow_flood(app, routed.flood)
        return True


def flood_digest(flood_id: str, digests: int) -> bool:
    """A flood's next digest (or its end, once the school is quiet). Idempotent: the digest
    count moves on by compare-and-set, so a duplicate, late or early run sends nothing twice."""

    with job_context() as app:
        svc = services(app)
        run = flood.run_digest(
            dbsession(),
            svc.vault,
            flood_id,
            int(digests),
            utcnow(),
            public_url=svc.settings.public_url,
        )
        return follow_flood(app, run)


def follow_flood(app: Flask, run: FloodRun) -> bool:
    """After a flood's notice or digest committed: send it, then schedule the next digest
    (only when this run started the flood or moved it on: a held tip schedules nothing)."""

    svc = services(app)
    for outbound_id in messages.enqueue_sends(svc, run.outbound_ids, front=run.outbound_ids):
        deliver(app, outbound_id)
    if run.flood_id and run.digest_at and (run.started or not run.held):
        flood.enqueue_digest(svc, run.flood_id, run.digests, run.digest_at)
    return bool(run.outbound_ids)


def escalate(alert_id: str, token: str) -> bool:
    """The timer of an alert's next step. Idempotent: a stale token or a step that already
    ran (unique key) makes it a no-op, so a duplicate, late or post-ack run sends nothing."""

    with job_context() as app:
        svc = services(app)
        run = escalation.run_step(
            dbsession(),
            svc.vault,
            alert_id,
            token,
            utcnow(),
            public_url=svc.settings.public_url,
            executed_by="job",
        )
        if run.early and run.next_at and run.token:
            escalation.enqueue_timer(svc, alert_id, run.token, run.next_at)
            return False
        return follow(app, run)


def follow(app: Flask, run: StepRun) -> bool:
    """After a step committed: its SMS pages sent from here at once, then the rest (voice
    calls, e-mail) queued behind every page, then the next timer. With Redis gone those are
    sent from here too and the sweeper runs the timer.

    The pages are not handed to send jobs: in a burst each hand-off cost rq's bookkeeping and
    a wait behind the next tips' routing (bench/alerting.py A). A page that fails here is
    owed, and the sweeper sends it (`messages.owed`)."""

    if not run.executed:
        return False
    svc = services(app)
    for outbound_id in run.urgent:
        page_now(app, outbound_id)
    pages = set(run.urgent)
    rest = [i for i in run.outbound_ids if i not in pages]
    for outbound_id in messages.enqueue_sends(svc, rest, behind=bool(pages)):
        deliver(app, outbound_id)
    if run.next_at and run.token:
        escalation.enqueue_timer(svc, run.alert_id, run.token, run.next_at)
    return True


def page_now(app: Flask, outbound_id: str) -> None:
    """Send one SMS page from the job that made it; an error is logged (ids only) and the
    page is left owed for the sweeper, so the job goes on to the next one."""
    try:
        deliver(app, outbound_id)
    except Exception:  # the sweeper owns a page this could not send
        dbsession().rollback()
        log.warning("page %s not sent by its routing job; the sweeper sends it", outbound_id)


def send(outbound_id: str) -> str:
    """Send one outgoing message. Idempotent: the message is claimed with a compare-and-set
    and an attempt row is committed before Twilio is called (see tipline.outbox.sending)."""
    with job_context() as app:
        return deliver(app, outbound_id)


def deliver(app: Flask, outbound_id: str) -> str:

    svc = services(app)
    outcome = sending.deliver(
        dbsession(),
        svc.vault,
        notifier(app),
        outbound_id,
        utcnow(),
        svc.settings.public_url,
        fall_back=fallback.fall_back,
    )
    if outcome.kind == "retry" and outcome.retry_at is not None:
        messages.enqueue_retry(svc, outbound_id, outcome.retry_at, outcome.attempts)
    if outcome.follow_up and messages.enqueue_sends(
        svc, outcome.follow_up, front=outcome.follow_up
    ):
        log.warning("fallback call for %s waits for the sweeper", outbound_id)
    return outcome.kind


def fetch_media(attachment_id: str) -> str:
    """Download an MMS attachment from Twilio (or take a web upload), clean it in the sandbox
    and seal it. Idempotent: only `pending` (or `checking`) ones. Runs on the media queue.

    After Twilio trouble (5xx, 429, a timeout) the attachment stays pending with a growing
    wait recorded by `media`; this job schedules its own next run for then, so the retry does
    not hang on the sweeper and never runs in a tight loop. A job that runs early is a no-op.
    """

    with job_context() as app:
        svc = services(app)
        limits = app.config.get(SANDBOX_LIMITS)  # tests tighten them; else sandbox.Limits()
        status = media.process(dbsession(), svc, attachment_id, limits=limits)
        when = media.retry_at(svc, attachment_id) if status == "pending" else None
        if when is not None:
            _schedule_media_retry(svc, attachment_id, when)
        return status


def reveal_number(reveal_id: str) -> bool:
    """Break-glass: decrypt an approved request's number for the asker (staff.breakglass)."""

    with job_context() as app:
        session = dbsession()
        done = breakglass.decrypt(session, services(app).vault, reveal_id, utcnow())
        session.commit()
        return done


def _schedule_media_retry(svc: Services, attachment_id: str, when: datetime) -> None:

    when += MEDIA_RETRY_SLACK  # after the wait has passed, or the run would be a no-op
    # One job id per retry time: re-scheduling the same time (a sweeper's run during the
    # wait) replaces it, and a running job never overwrites its own id.
    queueing.attempt(
        svc,
        lambda: svc.queue(MEDIA_QUEUE).enqueue_at(
            when,
            fetch_media,
            attachment_id,
            job_id=f"media-{attachment_id}-{int(when.timestamp())}",
            failure_ttl=86400,
        ),
        f"the media retry of attachment {attachment_id} waits for the sweeper",
    )
