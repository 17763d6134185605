"""Twilio's delivery reports, and what alerting does about a failed page: a call, at once.

The web views for `/sms/status` and `/voice/status/<id>` call `record_status` and
`record_call_status`; both move the message forward through `outbox.delivery.advance`, the one
place that ranks statuses, so a late or repeated callback never moves a message backwards.
The caller commits; a fallback call is enqueued right after that commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.alerting import wording
from tipline.models import Alert, Delivery, OutboundMessage
from tipline.outbox import delivery, messages
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)

PAGE_FAILED = ("failed", "undelivered")  # an SMS page that reached nobody


def record_status(
    session: Session,
    sid: str,
    status: str,
    error_code: str | None,
    now: datetime,
    vault: Vault | None = None,
) -> OutboundMessage | None:
    """An SMS status callback: the message with this SID moves on (see `delivery`), and a
    failed critical page calls the same person at once. The message when it moved, else None.
    With the `vault`, a final TwiML reply is recorded for deletion at Twilio."""
    msg = delivery.record_status(session, sid, status, error_code, now, vault)
    if msg is not None:
        after_status(session, msg, now)
    return msg


def record_call_status(
    session: Session, outbound_id: str, status: str, now: datetime
) -> OutboundMessage | None:
    """A call status callback (no-answer, busy, completed...) for the call `outbound_id`."""
    msg = session.get(OutboundMessage, outbound_id)
    if msg is None or msg.channel != "voice":
        return None
    return delivery.advance(session, msg, status, None, now)


def after_status(session: Session, msg: OutboundMessage, now: datetime) -> list[str]:
    """A failed critical SMS page falls back to a call at once; the call's id, if any."""
    d = session.get(Delivery, msg.id)
    if d is None or msg.status not in PAGE_FAILED:
        return []
    follow = fall_back(session, msg, d, now)
    if follow is None:
        return []
    messages.send_after_commit(session, [follow])
    return [follow]


def fall_back(session: Session, msg: OutboundMessage, d: Delivery, now: datetime) -> str | None:
    """A failed SMS page to a critical recipient is followed at once by a call; its id or None.

    Skipped when the alert is no longer open, or the same step already calls that person.
    """
    if msg.channel != "sms" or msg.purpose != "alert" or not d.critical or not d.alert_id:
        return None
    alert = session.get(Alert, d.alert_id)
    if alert is None or alert.status != "open":
        return None
    calls = session.scalar(
        select(OutboundMessage.id)
        .join(Delivery, Delivery.outbound_id == OutboundMessage.id)
        .where(
            Delivery.alert_id == d.alert_id,
            Delivery.round == d.round,
            Delivery.step == d.step,
            OutboundMessage.staff_id == msg.staff_id,
            OutboundMessage.channel == "voice",
        )
        .limit(1)
    )
    if calls is not None or session.scalar(select(Delivery).where(Delivery.fallback_of == msg.id)):
        return None
    call = messages.queue_outbound(
        session,
        None,
        channel="voice",
        purpose="alert",
        to_label=msg.to_label,
        summary=wording.voice_summary(alert),
        body=None,
        now=now,
        tip_id=msg.tip_id,
        staff_id=msg.staff_id,
        alert=alert,
        round_step=(d.round or 0, d.step or 0),
        critical=True,
        from_number=d.from_number,
        fallback_of=msg.id,
    )
    log.warning("alert SMS to %s %s; calling instead", msg.to_label, msg.status)
    return call.id
