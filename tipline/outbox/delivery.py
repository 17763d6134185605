"""Delivery state of outgoing messages, from Twilio's status callbacks."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.models import Delivery, Message, OutboundMessage
from tipline.outbox import forget
from tipline.vault.keyring import Vault

# Callbacks can arrive out of order (a late `sent` after `delivered`), so a status only ever
# moves to a higher rank. Final states share a rank: the first one Twilio reports stands.
RANK = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
    "read": 6,
    # calls: https://www.twilio.com/docs/voice/api/call-resource#call-status-values
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "completed": 5,
    "busy": 5,
    "no-answer": 5,
}
FINAL = 5  # the rank of final states: Twilio may then be asked to delete the message
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
_ERROR_CODE = re.compile(r"^\d{1,16}$")


def record_status(
    session: Session,
    sid: str,
    status: str,
    error_code: str | None,
    now: datetime,
    vault: Vault | None = None,
) -> OutboundMessage | None:
    """Move the message with this provider SID forward to `status`; the caller commits.

    Returns the message when its status changed, None when the SID is unknown, the status is
    not one of Twilio's, or it would move backwards; so a hook on the result (fallback to
    another channel on failure) runs once per real transition.

    An unknown SID is a reply tipline gave in TwiML (its `action` is this callback): once it
    is final, and given the `vault` to seal its SID, it is recorded for deletion at Twilio.
    """
    status = status.strip().lower()
    if status not in RANK or not _SID.match(sid):
        return None
    msg = session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.provider_sid == sid)
        .with_for_update(of=OutboundMessage)  # concurrent callbacks for one SID serialize here
    ).first()
    if msg is None:
        if vault is not None and RANK[status] == FINAL:
            forget.inbound(session, vault, sid, now, first_try=now)
        return None
    return advance(session, msg, status, error_code, now)


def advance(
    session: Session, msg: OutboundMessage, status: str, error_code: str | None, now: datetime
) -> OutboundMessage | None:
    """Move `msg` forward to `status` (never back, never past a final state); a reply's
    Message follows it. The message when it moved, else None; the caller commits.

    A message that becomes final is recorded for deletion at Twilio (`forget`).
    """
    status = status.strip().lower()
    before = RANK.get(msg.status, 0)
    if status not in RANK or RANK[status] <= before:
        return None
    if RANK[status] >= FINAL > before:
        forget.outbound(session, msg.id, msg.channel, msg.provider_sid, now)
    msg.status = status
    if error_code and _ERROR_CODE.match(error_code.strip()):
        msg.error_code = error_code.strip()
    msg.updated_at = now
    d = session.get(Delivery, msg.id)
    if d is not None and d.message_id:
        reply = session.get(Message, d.message_id)
        if reply is not None:
            reply.delivery_status = msg.status
    return msg
