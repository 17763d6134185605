"""The audit log: append events in any transaction; the sweeper chains them by hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
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
    return _digest_of(
        prev, event.chain_seq, event.at, event.actor, event.action, event.tip_id, event.detail
    )


def _digest_of(
    prev: str,
    seq: int | None,
    at: datetime,
    actor: str,
    action: str,
    tip_id: str | None,
    detail: dict[str, Any],
) -> str:
    payload = json.dumps(
        [prev, seq, at.isoformat(), actor, action, tip_id, detail],
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
    """A walk of the chain: whole, or the first entry that does not follow from the one before.

    `broken_at` is that entry's place in the chain (`chain_seq`), `broken_id` its row id, and
    `reason` says what is wrong with it, in words for an operator."""

    ok: bool
    checked: int
    broken_at: int | None = None
    broken_id: int | None = None
    reason: str | None = None


VERIFY_BATCH = 2000  # rows fetched per round trip: memory stays flat at any log size


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every sealed event's hash; the first mismatch is where someone edited the log.

    Streams plain rows (no ORM objects, nothing kept in the session), so 100,000 entries walk
    in constant memory."""
    prev, count = GENESIS, 0
    rows = session.execute(
        select(
            AuditEvent.id,
            AuditEvent.chain_seq,
            AuditEvent.prev_hash,
            AuditEvent.hash,
            AuditEvent.at,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.tip_id,
            AuditEvent.detail,
        )
        .where(AuditEvent.chain_seq.is_not(None))
        .order_by(AuditEvent.chain_seq)
        .execution_options(yield_per=VERIFY_BATCH)
    )
    for row_id, seq, prev_hash, stored, at, actor, action, tip_id, detail in rows:
        count += 1
        reason = None
        if seq != count:
            reason = f"comes after entry number {count - 1} but is number {seq}: "
            reason += "entries are missing"
        elif prev_hash != prev:
            reason = "does not follow the entry before it: that one was changed or removed"
        elif stored != _digest_of(prev, seq, at, actor, action, tip_id, detail):
            reason = "was changed after it was written"
        if reason is not None:
            rows.close()
            return ChainCheck(False, count, seq, row_id, reason)
        prev = stored
    return ChainCheck(True, count)


def unsealed_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_seq.is_(None))
        )
        or 0
    )
