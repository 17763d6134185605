"""Dashboard numbers: counts per school, unacknowledged critical tips, time to first action.

Plain functions over a session and a clock (no Flask). Only labels, counts and times: no tip
text reaches this page.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from tipline.models import Alert, AuditEvent, Incident, IncidentTip, Tip, User
from tipline.staff.access import STATUSES, viewable, visible_schools
from tipline.triage import SEVERITIES

WINDOWS = (7, 30)
UNACKED_SHOWN = 200  # the dashboard lists this many unacknowledged critical tips at most
# What counts as a human touching a case (a view alone does not).
STAFF_ACTIONS = (
    "alert.acked",
    "tip.replied",
    "tip.status",
    "tip.assigned",
    "tip.noted",
    "tip.reclassified",
)


@dataclass
class Counts:
    school: str
    days: int
    total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    by_severity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))


@dataclass(frozen=True)
class Unacked:
    tip_id: str
    code: str
    school: str
    created_at: datetime


@dataclass(frozen=True)
class Board:
    counts: list[Counts]
    unacked_critical: list[Unacked]
    median_first_action: timedelta | None
    acted_on: int
    untouched: int
    now: datetime
    statuses: list[str]


def build(session: Session, user: User, now: datetime) -> Board:
    schools = visible_schools(session, user)
    names = {school.id: school.name for school in schools}
    since = now - timedelta(days=max(WINDOWS))
    window = select(Tip).where(Tip.school_id.in_(names), Tip.created_at >= since)
    tips = session.execute(
        select(Tip.id, Tip.school_id, Tip.status, Tip.severity, Tip.created_at).where(
            Tip.school_id.in_(names),
            Tip.created_at >= since,
            viewable(session, user, window),  # as in the queue: unseen tips are not counted
        )
    ).all()
    counts = {(sid, days): Counts(name, days) for sid, name in names.items() for days in WINDOWS}
    for _tip_id, school_id, status, severity, created_at in tips:
        for days in WINDOWS:
            if created_at >= now - timedelta(days=days):
                row = counts[(school_id, days)]
                row.total += 1
                row.by_status[status] = row.by_status.get(status, 0) + 1
                row.by_severity[severity] = row.by_severity.get(severity, 0) + 1
    first = first_actions(session, [t[0] for t in tips])
    delays = [(first[t[0]] - t[4]).total_seconds() for t in tips if t[0] in first]
    return Board(
        counts=sorted(counts.values(), key=lambda c: (c.school, c.days)),
        # No codes of tips the login may not view (the queue's own filter, in the query).
        unacked_critical=unacked_critical(
            session, names, viewable(session, user, select(Tip).where(Tip.school_id.in_(names)))
        ),
        median_first_action=timedelta(seconds=statistics.median(delays)) if delays else None,
        acted_on=len(delays),
        untouched=len(tips) - len(delays),
        now=now,
        statuses=[*STATUSES, *sorted({t[2] for t in tips} - set(STATUSES))],
    )


def first_actions(session: Session, tip_ids: list[str]) -> dict[str, datetime]:
    """The time of the first staff action on each tip that has one."""
    found: dict[str, datetime] = {}
    for start in range(0, len(tip_ids), 500):  # keep IN lists short for every database
        rows = session.execute(
            select(AuditEvent.tip_id, func.min(AuditEvent.at))
            .where(
                AuditEvent.tip_id.in_(tip_ids[start : start + 500]),
                AuditEvent.action.in_(STAFF_ACTIONS),
            )
            .group_by(AuditEvent.tip_id)
        )
        found.update({tip_id: at for tip_id, at in rows if tip_id is not None})
    return found


def unacked_critical(
    session: Session, names: dict[int, str], seen: ColumnElement[bool] | None = None
) -> list[Unacked]:
    """Critical tips not closed whose alert (their own, or their incident's) nobody acked,
    longest waiting first (at most UNACKED_SHOWN), among those `seen` selects."""
    acked_own = select(Alert.tip_id).where(Alert.status == "acked")
    acked_incident = (
        select(IncidentTip.tip_id)
        .join(Incident, Incident.id == IncidentTip.incident_id)
        .join(Alert, Alert.id == Incident.alert_id)
        .where(Alert.status == "acked")
    )
    rows = session.execute(
        select(Tip.id, Tip.code, Tip.school_id, Tip.created_at)
        .where(
            Tip.school_id.in_(names),
            Tip.severity == "critical",
            Tip.status != "closed",
            Tip.id.not_in(acked_own),
            Tip.id.not_in(acked_incident),
            seen if seen is not None else true(),
        )
        .order_by(Tip.created_at)
        .limit(UNACKED_SHOWN)
    )
    return [Unacked(tip_id, code, names[sid], at) for tip_id, code, sid, at in rows]
