"""A lease in the database so one background loop runs at a time across workers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tipline.models import WorkerLease


def acquire(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease `name` for `holder`; commits. True when held.

    The conditional UPDATE is atomic on both databases, so two workers never both win.
    """
    result = session.execute(
        update(WorkerLease)
        .where(WorkerLease.name == name)
        .where(or_(WorkerLease.holder == holder, WorkerLease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        session.commit()
        return True
    session.rollback()
    if session.get(WorkerLease, name) is not None:
        return False
    try:
        session.add(WorkerLease(name=name, holder=holder, expires_at=now + ttl, heartbeat_at=now))
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def release(session: Session, name: str, holder: str) -> None:
    session.execute(
        update(WorkerLease)
        .where(WorkerLease.name == name, WorkerLease.holder == holder)
        .values(expires_at=WorkerLease.heartbeat_at)
        .execution_options(synchronize_session=False)
    )
    session.commit()
