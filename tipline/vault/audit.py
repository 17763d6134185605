"""The audit log: append events in any transaction; the sweeper chains them by hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipline.db import utcnow
from tipline.models import AuditEvent

GENESIS = "0" * 64


def record(
    session: Session, actor: str, action: str, tip_id: str | None = None, **detail: Any
) -> AuditEvent:
    """Append an event. `detail` must never hold tip text or a student's number."""
    event = AuditEvent(actor=actor, action=action, tip_id=tip_id, detail=detail, at=utcnow())
    session.add(event)
    return event


def _digest(prev: str, event: AuditEvent) -> str:
    payload = json.dumps(
        [
            prev,
            event.chain_seq,
            event.at.isoformat(),
            event.actor,
            event.action,
            event.tip_id,
            event.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def seal_pending(session: Session, limit: int = 500) -> int:
    """Chain unsealed events onto the log's head; run by one sweeper at a time (lease)."""
    pending = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain_seq.is_(None))
        .order_by(AuditEvent.id)
        .limit(limit)
    ).all()
    if not pending:
        return 0
    head = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain_seq.is_not(None))
        .order_by(AuditEvent.chain_seq.desc())
        .limit(1)
    ).first()
    seq = head.chain_seq if head and head.chain_seq is not None else 0
    prev = head.hash if head and head.hash else GENESIS
    for event in pending:
        seq += 1
        event.chain_seq, event.prev_hash = seq, prev
        event.hash = prev = _digest(prev, event)
    session.flush()
    return len(pending)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    broken_at: int | None = None


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every sealed event's hash; the first mismatch is where someone edited the log."""
    prev, count = GENESIS, 0
    for event in session.scalars(
        select(AuditEvent).where(AuditEvent.chain_seq.is_not(None)).order_by(AuditEvent.chain_seq)
    ):
        count += 1
        if (
            event.prev_hash != prev
            or event.hash != _digest(prev, event)
            or event.chain_seq != count
        ):
            return ChainCheck(False, count, event.chain_seq)
        prev = event.hash
    return ChainCheck(True, count)


def unsealed_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_seq.is_(None))
        )
        or 0
    )
