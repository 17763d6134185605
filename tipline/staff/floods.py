"""Floods on the dashboard, and an admin ending one (see tipline.alerting.flood).

Only counts, times and who ended a flood: no tip text reaches this page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tipline.alerting import flood
from tipline.models import Flood, User
from tipline.staff.access import NotFound, NotPermitted, actor, sees, visible_school_ids
from tipline.vault.keyring import Vault

HISTORY = timedelta(days=30)
MAY_END = frozenset({"admin", "district"})


@dataclass(frozen=True)
class FloodRow:
    id: str
    school: str
    started_at: datetime
    reason: str
    tips: int
    critical: int
    digests: int
    ended_at: datetime | None
    ended_by: str | None
    can_end: bool


def recent(session: Session, user: User, now: datetime) -> list[FloodRow]:
    """Open floods at the login's schools, then those that ended in the last 30 days."""
    rows = session.scalars(
        select(Flood)
        .where(
            Flood.school_id.in_(visible_school_ids(session, user)),
            or_(Flood.ended_at.is_(None), Flood.ended_at >= now - HISTORY),
        )
        .order_by(Flood.ended_at.is_not(None), Flood.started_at.desc())
    ).all()
    return [
        FloodRow(
            f.id,
            f.school.name,
            f.started_at,
            f.reason,
            f.tips,
            f.critical,
            f.digests,
            f.ended_at,
            _who(f.ended_by),
            f.ended_at is None and user.role in MAY_END,
        )
        for f in rows
    ]


def active(session: Session, user: User, now: datetime) -> list[FloodRow]:
    """The floods at the login's schools that are going on now (for the queue's notice)."""
    return [row for row in recent(session, user, now) if row.ended_at is None]


def _who(ended_by: str | None) -> str | None:
    if ended_by == "quiet":
        return "quiet period"
    return ended_by


def end(
    session: Session, vault: Vault, user: User, flood_id: str, now: datetime, *, public_url: str
) -> flood.FloodRun | None:
    """End a flood as this login (an admin or district login of its school); None when it had
    already ended. Raises NotFound for a flood the login does not see, NotPermitted for a
    role that may not end one. Commits; the caller sends the notice."""
    found = session.get(Flood, flood_id)
    if found is None or not sees(user, found.school_id):
        raise NotFound("no such flood")
    if user.role not in MAY_END:
        raise NotPermitted(f"a {user.role} login may not end flood mode")
    return flood.end_flood(session, vault, flood_id, now, by=actor(user), public_url=public_url)
