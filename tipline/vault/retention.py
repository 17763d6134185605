"""Retention: crypto-shred what the district no longer keeps (`tipline purge`, daily)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tipline.db import utcnow
from tipline.models import (
    Attachment,
    DataKey,
    InboundSid,
    Message,
    Note,
    SigninAddress,
    StaffSession,
    Tip,
)
from tipline.vault import audit

CLOSED_TIP_RETENTION = timedelta(days=365)
REPLAY_WINDOW = timedelta(days=30)
STAFF_TRACES = timedelta(days=1)


@dataclass(frozen=True)
class PurgeResult:
    shredded_tips: int
    forgotten_sids: int

    def describe(self) -> str:
        return (
            f"shredded {self.shredded_tips} closed tips; "
            f"forgot {self.forgotten_sids} old message ids"
        )


def apply_retention(
    session: Session, now: datetime | None = None, keep_closed: timedelta = CLOSED_TIP_RETENTION
) -> PurgeResult:
    """Delete the data keys of tips closed longer than `keep_closed`: their text is gone."""
    now = now or utcnow()
    tips = session.scalars(
        select(Tip).where(
            Tip.status == "closed",
            Tip.last_activity_at < now - keep_closed,
            Tip.data_key_id.is_not(None),
        )
    ).all()
    for tip in tips:
        key_ids = {tip.data_key_id}
        key_ids |= set(session.scalars(select(Message.data_key_id).where(Message.tip_id == tip.id)))
        key_ids |= set(
            session.scalars(select(Attachment.data_key_id).where(Attachment.tip_id == tip.id))
        )
        key_ids |= set(session.scalars(select(Note.data_key_id).where(Note.tip_id == tip.id)))
        key_ids.discard(None)
        session.execute(delete(DataKey).where(DataKey.id.in_(key_ids)))
        audit.record(session, "system", "tip.shredded", tip.id, code=tip.code)
    result = session.execute(delete(InboundSid).where(InboundSid.created_at < now - REPLAY_WINDOW))
    # Staff sign-in's leftovers: an address's failures lapse a day after the last one, and a
    # session is dead 12 hours after it began (staff/signin.py, staff/sessions.py).
    session.execute(delete(SigninAddress).where(SigninAddress.last_failed_at < now - STAFF_TRACES))
    session.execute(delete(StaffSession).where(StaffSession.created_at < now - STAFF_TRACES))
    session.expire_all()
    return PurgeResult(len(tips), int(getattr(result, "rowcount", 0) or 0))
