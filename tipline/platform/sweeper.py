"""The sweeper: the database is the source of truth, Redis only a fast path.

It runs inside every `tipline worker` (not as an rq job, since a Redis flush or a dead
scheduler would take it down with the jobs it is meant to recover), one at a time across
workers by a lease, and re-enqueues whatever the database says is still owed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tipline.models import CHECKING, FORGOTTEN_AT_TWILIO, Attachment, WorkerLease
from tipline.platform import lease, queueing
from tipline.vault import audit

log = logging.getLogger(__name__)

LEASE_NAME = "sweeper"
INTERVAL = 2.0  # seconds between passes
LEASE_TTL = timedelta(seconds=15)
GRACE = timedelta(seconds=5)  # leave fresh work to the normal enqueue path
HEARTBEAT_FRESH = timedelta(seconds=30)  # a sweeper heard from this recently is alive


@dataclass
class SweepResult:
    held: bool = False
    tips: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    sealed: int = 0
    extra: dict[str, int] = field(default_factory=dict)


Hook = Callable[[Session, datetime], int]


def sweep_once(
    session: Session,
    holder: str,
    now: datetime,
    enqueue_tip: Callable[[str, str], bool],
    enqueue_media: Callable[[str], bool],
    hooks: dict[str, Hook] | None = None,
) -> SweepResult:
    """One pass: take the lease (heartbeat), re-enqueue owed work, seal the audit chain."""
    result = SweepResult()
    if not lease.acquire(session, LEASE_NAME, holder, now, LEASE_TTL):
        return result
    result.held = True
    for tip_id, code in queueing.unrouted(session, quiet_since=now - GRACE):
        if enqueue_tip(tip_id, code):
            result.tips.append(code)
    # Downloads and web uploads' checks still owed (their job lost with Redis), and deletes
    # at Twilio that failed (the media URL is kept until Twilio has forgotten the media): the
    # same job does each.
    pending_media = session.scalars(
        select(Attachment.id)
        .where(
            or_(
                Attachment.status.in_(("pending", CHECKING)),
                and_(Attachment.status.in_(FORGOTTEN_AT_TWILIO), Attachment._source.is_not(None)),
            ),
            Attachment.created_at < now - GRACE,
        )
        .limit(100)
    ).all()
    for att_id in pending_media:
        if enqueue_media(att_id):
            result.media.append(att_id)
    result.sealed = audit.seal_pending(session)
    session.commit()
    for name, hook in (hooks or {}).items():
        result.extra[name] = hook(session, now)
        session.commit()
    if result.tips:
        log.warning(
            "sweeper re-enqueued %d unrouted tips: %s",
            len(result.tips),
            ", ".join(result.tips[:20]),
        )
    return result


def heartbeat_fresh(session: Session, now: datetime) -> bool:
    """Whether some worker's sweeper took its lease within HEARTBEAT_FRESH (for `/healthz`)."""
    beat = session.scalar(select(WorkerLease.heartbeat_at).where(WorkerLease.name == LEASE_NAME))
    return beat is not None and now - beat < HEARTBEAT_FRESH
