"""Sending one outbound message: claim it, write the attempt, call Twilio, record the result.

`deliver` is what a send job (and, with Redis gone, the sweeper) runs:

1. claim the message with a compare-and-set on (status, attempts): of two jobs that run at
   once, one sends and the other does nothing;
2. write a DeliveryAttempt and commit it *before* calling Twilio;
3. call; record the SID (or the failure) and commit.

A crash or a timeout between 2 and 3 leaves an attempt without an outcome and the message
`unknown`; the next attempt asks Twilio first whether the message exists (see
tipline.outbox.notifier) and adopts its SID rather than sending again. 429s, 5xx and refused
connections are retried with exponential backoff and jitter; final errors (21610: opted out)
are recorded and never retried, and a critical SMS page that fails falls back to a call.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from tipline.models import (
    Alert,
    Delivery,
    DeliveryAttempt,
    Message,
    OutboundMessage,
    School,
    Staff,
    Tip,
    Tipster,
)
from tipline.outbox import forget
from tipline.outbox.delivery import FINAL, RANK
from tipline.outbox.messages import SENDABLE
from tipline.outbox.notifier import Ambiguous, Final, Notifier, SendError, Transient
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_BASE = 1.0  # seconds before the 2nd attempt; doubles, with jitter, up to the cap
BACKOFF_CAP = 60.0
SLACK = timedelta(seconds=1)  # rq schedules in whole seconds: a retry may start that early
ALERT_VALIDITY = 600  # seconds: a page stuck in a carrier queue fails instead of arriving late


# What to send instead when a message fails for good (alerting's: a failed page calls the same
# person); the new outbound id, or None. Given by the caller, so sending knows no alerting.
FallBack = Callable[[Session, OutboundMessage, Delivery, datetime], str | None]


@dataclass
class Outcome:
    """What one `deliver` call did, and what the job should do next."""

    kind: str  # sent | console | retry | failed | skipped | canceled | noop | early
    retry_at: datetime | None = None
    attempts: int = 0  # made so far, when a retry is owed
    follow_up: list[str] = field(default_factory=list)  # new outbound ids to enqueue


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempt + 1`: exponential, capped, with jitter (50-100 %)."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * float(2 ** max(0, attempt - 1)))
    # Jitter spreads the retries of many messages after a Twilio outage.
    jitter = (rng or random.Random()).uniform(0.5, 1.0)  # noqa: S311 - not security relevant
    return delay * jitter


@dataclass(frozen=True)
class _Send:
    """What one attempt needs, read in one query before the claim (no ORM reloads after)."""

    id: str
    channel: str
    purpose: str
    to_label: str
    summary: str
    from_number: str
    message_id: str | None
    address: str | None
    body: str
    quotes_tip: bool

    def console_line(self) -> str:
        who = "student" if self.to_label == "student" else f"{self.to_label} {self.address}"
        return f"[{self.channel} → {who}] {self.summary}"


def _student_phone(session: Session, vault: Vault, tip_id: str | None) -> str | None:
    """The student's phone, decrypted here in the worker only; it leaves this process only
    in the request to Twilio, and is never logged or stored in the clear."""
    tip = session.get(Tip, tip_id) if tip_id else None
    tipster = session.get(Tipster, tip.tipster_id) if tip and tip.tipster_id else None
    if tipster is None or tipster._phone is None:
        return None
    return vault.get_text(tipster, "phone")


def deliver(  # noqa: PLR0911 - one path per outcome, in the order they are decided
    session: Session,
    vault: Vault,
    notifier: Notifier,
    outbound_id: str,
    now: datetime,
    public_url: str,
    fall_back: FallBack,
) -> Outcome:
    """Send one outbound message at most once per attempt; idempotent for any caller.

    `fall_back` runs when the message fails for good (see FallBack)."""
    row = session.execute(
        select(Delivery, Alert.status, Staff.phone, Staff.email, School.alert_text)
        .join(OutboundMessage, OutboundMessage.id == Delivery.outbound_id)
        .outerjoin(Alert, Alert.id == Delivery.alert_id)
        .outerjoin(Staff, Staff.id == OutboundMessage.staff_id)
        .outerjoin(Tip, Tip.id == OutboundMessage.tip_id)
        .outerjoin(School, School.id == Tip.school_id)
        .where(Delivery.outbound_id == outbound_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row[0].message.status not in SENDABLE:
        session.rollback()
        return Outcome("noop")
    d, alert_status, phone, email, alert_text = row
    msg = d.message
    if d.due_at > now + SLACK:
        session.rollback()
        return Outcome("early", retry_at=d.due_at)
    if d.alert_id and msg.purpose == "alert" and alert_status != "open":
        msg.status, msg.updated_at = "canceled", now
        session.commit()
        return Outcome("canceled")
    prior, number = msg.status, msg.attempts + 1
    claimed = session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id == msg.id,
            OutboundMessage.status == prior,
            OutboundMessage.attempts == msg.attempts,
        )
        .values(status="sending", attempts=number, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return Outcome("noop")
    session.execute(
        insert(DeliveryAttempt).values(outbound_id=msg.id, number=number, started_at=now)
    )
    job = _Send(
        id=msg.id,
        channel=msg.channel,
        purpose=msg.purpose,
        to_label=msg.to_label,
        summary=msg.summary,
        from_number=d.from_number or "",
        message_id=d.message_id,
        address=(
            _student_phone(session, vault, msg.tip_id)
            if msg.to_label == "student"
            else email
            if msg.channel == "email"
            else phone
        ),
        body=vault.get_text(msg, "body") or "",
        # Only a "link" school's alert leaves the tip text out (alerting.wording); anything
        # else may quote it, so it goes only over TLS (Notifier.email).
        quotes_tip=not (msg.purpose == "alert" and alert_text == "link"),
    )
    session.commit()  # the attempt row exists before Twilio is called

    if job.address is None:
        return _skip(
            session, job, number, "no email" if job.channel == "email" else "no phone", now
        )
    if job.channel == "email" and not notifier.email_enabled and not notifier.console:
        log.warning("email is not configured (TIPLINE_SMTP_URL): %s gets no email", job.to_label)
        return _skip(session, job, number, "no smtp", now)
    if notifier.console and (job.channel != "email" or not notifier.email_enabled):
        notifier.print_line(job.console_line())
        _record(session, job, number, None, "console", now)
        return Outcome("console")
    if prior == "unknown" and job.channel != "email":
        found = _earlier_send(session, notifier, job)
        if found is not None:
            log.info(
                "%s to %s: an earlier attempt went through (%s); not resending",
                job.channel,
                job.to_label,
                found,
            )
            _record(session, job, number, found, "queued", now)
            return Outcome("sent")
    try:
        sid, status = _send(notifier, job, public_url)
    except SendError as e:
        return _failed(session, job, number, e, now, fall_back)
    _record(session, job, number, sid, status, now)
    log.info(
        "%s %s sent to %s: %s (%s)",
        job.purpose,
        job.channel,
        job.to_label,
        job.summary.split(" ·")[0],
        sid,
    )
    return Outcome("sent")


def _send(notifier: Notifier, job: _Send, public_url: str) -> tuple[str | None, str]:
    assert job.address is not None  # noqa: S101 - checked by the caller
    if job.channel == "sms":
        result = notifier.sms(
            to=job.address,
            from_=job.from_number,
            body=job.body,
            status_callback=f"{public_url}/sms/status",
            validity=ALERT_VALIDITY if job.purpose == "alert" else None,
        )
    elif job.channel == "voice":
        result = notifier.call(
            to=job.address,
            from_=job.from_number,
            url=f"{public_url}/voice/alert/{job.id}",
            status_callback=f"{public_url}/voice/status/{job.id}",
        )
    else:
        result = notifier.email(
            to=job.address,
            subject=job.summary.split(" ·")[0],
            body=job.body,
            quotes_tip=job.quotes_tip,
        )
    return result.sid, result.status


def _earlier_send(session: Session, notifier: Notifier, job: _Send) -> str | None:
    """After an attempt whose outcome nobody saw: the SID Twilio gave it, if it exists.

    A candidate whose SID another message of ours already holds is someone else's.
    """
    assert job.address is not None  # noqa: S101 - checked by the caller
    since = min(
        session.scalars(
            select(DeliveryAttempt.started_at).where(DeliveryAttempt.outbound_id == job.id)
        )
    )
    if job.channel == "sms":
        found = notifier.find_sms(to=job.address, from_=job.from_number, body=job.body, since=since)
    else:
        found = notifier.find_call(to=job.address, from_=job.from_number, since=since)
    if not found:
        return None
    taken = set(
        session.scalars(
            select(OutboundMessage.provider_sid).where(OutboundMessage.provider_sid.in_(found))
        )
    )
    return next((sid for sid in found if sid not in taken), None)


def _finish(
    session: Session,
    job: _Send,
    number: int,
    outcome: str,
    now: datetime,
    e: SendError | None = None,
) -> None:
    session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.outbound_id == job.id, DeliveryAttempt.number == number)
        .values(
            finished_at=now,
            outcome=outcome,
            http_status=e.http_status if e else None,
            error_code=e.code if e else None,
        )
        .execution_options(synchronize_session=False)
    )


def _set(session: Session, job: _Send, **values: object) -> None:
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == job.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _skip(session: Session, job: _Send, number: int, why: str, now: datetime) -> Outcome:
    _set(session, job, status="skipped", error_code=why[:16], updated_at=now)
    _finish(session, job, number, "skipped", now)
    session.commit()
    log.warning("%s %s to %s skipped: %s", job.purpose, job.channel, job.to_label, why)
    return Outcome("skipped")


def _record(
    session: Session, job: _Send, number: int, sid: str | None, status: str, now: datetime
) -> None:
    _set(session, job, provider_sid=sid, status=status, sent_at=now, updated_at=now)
    _finish(session, job, number, "sent", now)
    if RANK.get(status, 0) >= FINAL:  # final in Twilio's answer already: no callback follows
        forget.outbound(session, job.id, job.channel, sid, now)
    if job.message_id:
        session.execute(
            update(Message)
            .where(Message.id == job.message_id)
            .values(delivery_status=status)
            .execution_options(synchronize_session=False)
        )
    session.commit()


def _failed(
    session: Session, job: _Send, number: int, e: SendError, now: datetime, fall_back: FallBack
) -> Outcome:
    if isinstance(e, Transient | Ambiguous) and number < MAX_ATTEMPTS:
        due = now + timedelta(seconds=backoff(number))
        ambiguous = isinstance(e, Ambiguous)
        _set(
            session,
            job,
            status="unknown" if ambiguous else "retry",
            error_code=e.code,
            updated_at=now,
        )
        session.execute(
            update(Delivery)
            .where(Delivery.outbound_id == job.id)
            .values(due_at=due)
            .execution_options(synchronize_session=False)
        )
        _finish(session, job, number, "ambiguous" if ambiguous else "transient", now, e)
        session.commit()
        log.warning(
            "%s %s to %s: %s; attempt %d again in %.1fs",
            job.purpose,
            job.channel,
            job.to_label,
            e,
            number + 1,
            (due - now).total_seconds(),
        )
        return Outcome("retry", retry_at=due, attempts=number)
    _set(session, job, status="failed", error_code=e.code, updated_at=now)
    _finish(session, job, number, "final" if isinstance(e, Final) else "gave_up", now, e)
    log.warning("%s %s to %s failed for good: %s", job.purpose, job.channel, job.to_label, e)
    d = session.get(Delivery, job.id, populate_existing=True)
    follow = fall_back(session, d.message, d, now) if d is not None else None
    session.commit()
    return Outcome("failed", follow_up=[follow] if follow else [])
