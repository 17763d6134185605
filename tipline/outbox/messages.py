"""The outbox: every outgoing message, queued in the database first, then handed to Redis.

An OutboundMessage (sealed body, console summary) plus a Delivery (when the next attempt is
owed) is added in the same transaction as whatever caused it (an escalation step, an ack, a
reply), so a crash or a Redis outage after the commit loses nothing: the sweeper finds the
owed message. Sending itself is tipline.outbox.sending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from flask import has_app_context
from redis.exceptions import RedisError
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from tipline.db import new_id
from tipline.models import Alert, Delivery, OutboundMessage
from tipline.platform import queueing
from tipline.platform.services import ALERTS_QUEUE, DEFAULT_QUEUE, JobKind, Services, services
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)

SENDABLE = ("pending", "retry", "unknown")
_AFTER_COMMIT = "tipline.enqueue_after_commit"
_HOOKED = "tipline.enqueue_after_commit.hooked"
STUCK = timedelta(seconds=60)  # a "sending" row this old lost its worker in mid-call


def queue_outbound(
    session: Session,
    vault: Vault | None,
    *,
    channel: str,
    purpose: str,
    to_label: str,
    summary: str,
    body: str | None,
    now: datetime,
    tip_id: str | None = None,
    staff_id: int | None = None,
    alert: Alert | None = None,
    round_step: tuple[int, int] | None = None,
    critical: bool = False,
    from_number: str | None = None,
    ack_token_hash: str | None = None,
    fallback_of: str | None = None,
    message_id: str | None = None,
) -> OutboundMessage:
    """Add a message and its Delivery (the caller commits, then enqueues its id).

    A call has no body: its words are made from the alert when Twilio fetches the TwiML.
    """
    msg = OutboundMessage(
        id=new_id(),
        created_at=now,
        channel=channel,
        purpose=purpose,
        tip_id=tip_id,
        staff_id=staff_id,
        to_label=to_label[:80],
        summary=summary[:200],
        data_key=vault.new_data_key() if vault is not None and body is not None else None,
        status="pending",
        attempts=0,
        updated_at=now,
    )
    if body is not None:
        if vault is None:
            raise ValueError("a message with a body needs the vault to seal it")
        vault.put(msg, "body", body)
    session.add(
        Delivery(
            message=msg,
            alert_id=alert.id if alert else None,
            round=round_step[0] if round_step else None,
            step=round_step[1] if round_step else None,
            critical=critical,
            from_number=from_number,
            due_at=now,
            ack_token_hash=ack_token_hash,
            fallback_of=fallback_of,
            message_id=message_id,
        )
    )
    return msg


def mark_skipped(msg: OutboundMessage, why: str, now: datetime) -> None:
    """A message that cannot go out (no phone, no mail server): kept, visible, never retried."""
    msg.status, msg.error_code, msg.updated_at = "skipped", why[:16], now
    log.warning(
        "%s %s to %s (%s) skipped: %s",
        msg.purpose,
        msg.channel,
        msg.to_label,
        msg.summary.split(" ·")[0],
        why,
    )


def send_after_commit(session: Session, ids: Sequence[str]) -> None:
    """Queue these messages' send jobs when the caller commits, if an app is at hand.

    Without one (a script, a test without an app) nothing is lost: their Delivery is due,
    so the sweeper sends them.
    """
    if ids and has_app_context():
        enqueue_after_commit(session, services(), ids)


def enqueue_after_commit(session: Session, svc: Services, ids: Sequence[str]) -> None:
    """Enqueue send jobs once the caller's transaction commits (never before it)."""
    if not ids:
        return
    session.info.setdefault(_AFTER_COMMIT, []).extend(ids)
    if session.info.get(_HOOKED):
        return
    session.info[_HOOKED] = True

    def _send(committed: Session) -> None:
        queued = committed.info.pop(_AFTER_COMMIT, [])
        if queued:
            enqueue_sends(svc, queued)

    def _drop(rolled_back: Session) -> None:
        rolled_back.info.pop(_AFTER_COMMIT, None)

    event.listen(session, "after_commit", _send)
    event.listen(session, "after_rollback", _drop)


def close_alert(
    session: Session, alert_id: str, status: str, now: datetime, **values: object
) -> bool:
    """End an open alert (acked, superseded): its timers' token goes stale and its unsent
    pages are cancelled. A compare-and-set: False when it was no longer open."""
    done = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.status == "open")
        .values(status=status, next_at=None, token=new_id(), **values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    cancel_pending(session, alert_id, now)
    return True


def cancel_pending(session: Session, alert_id: str, now: datetime) -> int:
    """Cancel an alert's pages not yet handed to Twilio (an ack came in)."""
    ids = select(Delivery.outbound_id).where(Delivery.alert_id == alert_id)
    result = session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id.in_(ids),
            OutboundMessage.purpose == "alert",
            OutboundMessage.status.in_(SENDABLE),
        )
        .values(status="canceled", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def owed(
    session: Session, now: datetime, grace: timedelta, limit: int = 200
) -> list[tuple[str, int]]:
    """(id, attempts so far) of messages whose next attempt is overdue by `grace`; sends
    stuck in mid-call are made owed first."""
    stuck = session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.status == "sending", OutboundMessage.updated_at < now - STUCK)
        .values(status="unknown", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if stuck.rowcount:  # type: ignore[attr-defined]
        log.warning("%d sends lost their worker mid-call; checking them", stuck.rowcount)  # type: ignore[attr-defined]
    rows = session.execute(
        select(Delivery.outbound_id, OutboundMessage.attempts)
        .join(OutboundMessage, OutboundMessage.id == Delivery.outbound_id)
        .where(OutboundMessage.status.in_(SENDABLE), Delivery.due_at <= now - grace)
        .order_by(Delivery.due_at)
        .limit(limit)
    ).all()
    return [(str(i), int(n)) for i, n in rows]


def send_job_id(outbound_id: str, attempts: int) -> str:
    """One job id per attempt, so a job already queued for it is recognized, not duplicated."""
    return f"send-{outbound_id}-{attempts}"


def enqueue_sends(
    svc: Services,
    ids: Sequence[str],
    *,
    front: Sequence[str] = (),
    attempts: int = 0,
    behind: bool = False,
) -> list[str]:
    """Queue a send job per message (after commit); returns the ids Redis did not take.

    Those are not lost: their Delivery is due, so the sweeper sends them. `front` ids jump
    the queue (an SMS page goes ahead of routing jobs that arrived meanwhile); when there are
    such pages, the step's other messages (voice calls, e-mail) wait on the default queue, so
    in a burst the next tip's routing and SMS page never queue behind this one's phone calls
    (`behind` says so when the pages went out already, sent by the caller).
    """
    urgent = set(front)
    later = DEFAULT_QUEUE if urgent or behind else ALERTS_QUEUE
    # at_front pushes onto the head: push the urgent ones last-first to keep their order.
    ordered = [i for i in reversed(ids) if i in urgent] + [i for i in ids if i not in urgent]
    for n, outbound_id in enumerate(ordered):
        try:
            if outbound_id in urgent:
                _queue_send(svc, outbound_id, attempts, front=True)
            else:
                _queue_send(svc, outbound_id, attempts, queue=later)
        except (RedisError, OSError) as e:
            log.warning(
                "queue unavailable (%s); %d sends wait for the sweeper",
                type(e).__name__,
                len(ordered) - n,
            )
            return list(ordered[n:])
    return []


def requeue_owed(svc: Services, owed_sends: Sequence[tuple[str, int]]) -> list[str]:
    """Enqueue owed sends that have no live job in Redis (flushed, lost, failed); returns the
    ids Redis did not take (it is down: the caller sends them itself)."""
    try:
        live = queueing.live_jobs(svc, [send_job_id(i, n) for i, n in owed_sends])
    except (RedisError, OSError):
        return [i for i, _ in owed_sends]
    for n, (outbound_id, attempts) in enumerate(owed_sends):
        try:
            if send_job_id(outbound_id, attempts) in live:
                continue
            _queue_send(svc, outbound_id, attempts)
            log.warning("send %s had no job in Redis; queued again", outbound_id)
        except (RedisError, OSError):
            return [i for i, _ in owed_sends[n:]]
    return []


def enqueue_retry(svc: Services, outbound_id: str, at: datetime, attempts: int) -> bool:
    return queueing.attempt(
        svc,
        lambda: _queue_send(svc, outbound_id, attempts, at=at),
        "the retry waits for the sweeper",
    )


def _queue_send(
    svc: Services,
    outbound_id: str,
    attempts: int,
    *,
    at: datetime | None = None,
    front: bool = False,
    queue: str = ALERTS_QUEUE,
) -> None:
    """The send job of one attempt, now or `at` a time; Redis errors propagate."""
    send = svc.job(JobKind.SEND)
    rq_queue, job_id = svc.queue(queue), send_job_id(outbound_id, attempts)
    if at is None:
        rq_queue.enqueue(
            send, outbound_id, job_id=job_id, result_ttl=0, failure_ttl=86400, at_front=front
        )
    else:
        rq_queue.enqueue_at(at, send, outbound_id, job_id=job_id, result_ttl=0, failure_ttl=86400)
