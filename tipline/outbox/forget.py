"""What tipline still has to delete at Twilio: the bookkeeping, no network.

Intake (the webhook path) and delivery status record here what Twilio holds; the worker's
`tipline.outbox.erase` asks Twilio to delete it and reports back. This module imports no
Twilio client, so the webhook path that records an inbound text never loads one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from tipline.db import new_id
from tipline.models import Attachment, DataKey, OutboundMessage, TwilioForget
from tipline.vault.crypto import CryptoError
from tipline.vault.keyring import Vault

# An inbound text is asked about once Twilio is surely done with the webhook that announced it
# (it waits 15 s for the answer); its media must be fetched first, see `due`.
INBOUND_FIRST_TRY = timedelta(seconds=30)
# A delete Twilio refuses (not final yet, or Twilio in trouble) is asked again after a growing
# wait: 1 min, 2 min, 4 min ... 6 h, for a week; then the row goes with one warning.
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=7)
# A message still `sent` a day on lost its last status callback; Twilio is asked all the same.
LOST_CALLBACK = timedelta(days=1)
_IN_FLIGHT = ("accepted", "scheduled", "queued", "sending", "sent")


@dataclass(frozen=True)
class Due:
    """A message Twilio may be asked to delete now; `sid` None when it can no longer be read."""

    id: str
    sid: str | None
    created_at: datetime
    attempts: int


def inbound(
    session: Session,
    vault: Vault,
    sid: str,
    now: datetime,
    tip_id: str | None = None,
    first_try: datetime | None = None,
) -> None:
    """Record a message by its sealed SID for deletion; the caller commits.

    An inbound text (first tried after INBOUND_FIRST_TRY), or a TwiML reply that is final
    (`first_try` now). `tip_id` when a text carried media: it waits until the tip has none
    pending.
    """
    row = TwilioForget(
        id=new_id(),
        tip_id=tip_id,
        data_key=vault.new_data_key(),
        created_at=now,
        not_before=first_try or now + INBOUND_FIRST_TRY,
        attempts=0,
    )
    vault.put(row, "sid", sid)
    session.add(row)


def outbound(
    session: Session, outbound_id: str, channel: str, sid: str | None, now: datetime
) -> None:
    """Record a sent SMS that reached a final state for deletion (once); the caller commits."""
    if channel != "sms" or not sid:
        return  # calls keep only staff numbers; e-mail never reached Twilio
    known = session.scalar(select(TwilioForget.id).where(TwilioForget.outbound_id == outbound_id))
    if known is None:
        session.add(
            TwilioForget(
                id=new_id(), outbound_id=outbound_id, created_at=now, not_before=now, attempts=0
            )
        )


def lost_callbacks(session: Session, now: datetime, limit: int = 50) -> int:
    """Record sent SMS whose final status never came back (LOST_CALLBACK on); the caller commits.

    Twilio then says whether they are final. Only those sent within GIVE_UP_AFTER before that:
    one given up is out of the window by then, so it is not recorded again and again.
    """
    recorded = exists().where(TwilioForget.outbound_id == OutboundMessage.id)
    found = session.execute(
        select(OutboundMessage.id, OutboundMessage.provider_sid)
        .where(
            OutboundMessage.status.in_(_IN_FLIGHT),
            OutboundMessage.channel == "sms",
            OutboundMessage.provider_sid.is_not(None),
            OutboundMessage.sent_at < now - LOST_CALLBACK,
            OutboundMessage.sent_at >= now - LOST_CALLBACK - GIVE_UP_AFTER,
            ~recorded,
        )
        .limit(limit)
    ).all()
    for outbound_id, sid in found:
        outbound(session, outbound_id, "sms", sid, now)
    return len(found)


def due(session: Session, vault: Vault, now: datetime, limit: int) -> list[Due]:
    """Messages whose turn has come, oldest turn first; none whose tip still awaits media."""
    media_pending = (
        select(Attachment.id)
        .where(Attachment.tip_id == TwilioForget.tip_id, Attachment.status == "pending")
        .exists()
    )
    rows = session.execute(
        select(TwilioForget, OutboundMessage.provider_sid)
        .outerjoin(OutboundMessage, OutboundMessage.id == TwilioForget.outbound_id)
        .where(
            TwilioForget.not_before <= now,
            or_(TwilioForget.tip_id.is_(None), ~media_pending),
        )
        .order_by(TwilioForget.not_before)
        .limit(limit)
    ).all()
    found = []
    for row, provider_sid in rows:
        sid = provider_sid
        if row.outbound_id is None:
            try:
                sid = vault.get_text(row, "sid")
            except CryptoError:
                sid = None
        found.append(Due(row.id, sid, row.created_at, row.attempts))
    session.rollback()  # no transaction stays open while Twilio is asked
    return found


def done(session: Session, forget_id: str) -> None:
    """Twilio has forgotten the message (or can never be asked): drop the row and its key."""
    key_id = session.scalar(select(TwilioForget.data_key_id).where(TwilioForget.id == forget_id))
    session.execute(delete(TwilioForget).where(TwilioForget.id == forget_id))
    if key_id is not None:
        session.execute(delete(DataKey).where(DataKey.id == key_id))
    session.commit()


def later(session: Session, item: Due, now: datetime) -> timedelta | None:
    """Ask again after a growing wait (returned); None when the week is over and it went."""
    if now - item.created_at > GIVE_UP_AFTER:
        done(session, item.id)
        return None
    wait: timedelta = min(RETRY_FIRST * 2 ** min(item.attempts, 16), RETRY_MAX)
    session.execute(
        update(TwilioForget)
        .where(TwilioForget.id == item.id)
        .values(attempts=TwilioForget.attempts + 1, not_before=now + wait)
    )
    session.commit()
    return wait


def postpone_due(session: Session, now: datetime, wait: timedelta) -> None:
    """Twilio is in trouble: every message due now waits too, without counting an attempt."""
    session.execute(
        update(TwilioForget).where(TwilioForget.not_before <= now).values(not_before=now + wait)
    )
    session.commit()
