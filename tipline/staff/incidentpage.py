"""An incident's page: its tips (those the login may view), who was paged and when, one
acknowledgement for all, and staff moving a tip into or out of it.

An incident is shown to a login that may view at least one of its tips; to anyone else it is
missing, like a tip (no existence oracle). Moving a tip needs `reclassify` on it (what a tip is
about, like its severity and category, stays with the school's safety staff and the district):
it changes which incident's page and acknowledgement cover the tip, never who is paged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tipline.alerting import acks
from tipline.errors import TiplineError
from tipline.models import (
    Alert,
    Delivery,
    Incident,
    IncidentTip,
    OutboundMessage,
    School,
    Staff,
    Tip,
    User,
)
from tipline.staff import casework
from tipline.staff.access import NotFound, NotPermitted, actor, allowed
from tipline.vault import audit
from tipline.vault.keyring import Vault

MOVE_ACTION = "reclassify"


class IncidentError(TiplineError):
    """A move that cannot be made (another school's tip, a tip already there)."""


@dataclass(frozen=True)
class IncidentTipRow:
    id: str
    code: str
    severity: str
    category: str
    status: str
    created_at: datetime
    added_at: datetime
    movable: bool


@dataclass(frozen=True)
class PageRow:
    at: datetime
    staff: str
    channel: str
    status: str
    round: int | None
    step: int | None


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    school: str
    tips: list[IncidentTipRow]
    hidden: int  # tips of the incident this login may not view
    alert: Alert | None
    pages: list[PageRow]
    may_acknowledge: bool
    may_move: bool


def _tips(session: Session, incident_id: str) -> list[tuple[Tip, IncidentTip]]:
    return [
        (tip, link)
        for tip, link in session.execute(
            select(Tip, IncidentTip)
            .join(IncidentTip, IncidentTip.tip_id == Tip.id)
            .where(IncidentTip.incident_id == incident_id)
            .order_by(Tip.created_at, Tip.id)
        )
    ]


def incident_for(session: Session, user: User, incident_id: str) -> Incident:
    """The incident if this login may view one of its tips; NotFound otherwise."""
    incident = session.get(Incident, incident_id) if len(incident_id) <= 32 else None
    if incident is None:
        raise NotFound("no such incident")
    if not any(allowed(session, user, tip, "view") for tip, _ in _tips(session, incident.id)):
        raise NotFound("no such incident")
    return incident


def incident_id_of(session: Session, tip: Tip) -> str | None:
    """The incident the tip is part of, for a link from its page."""
    return session.scalar(select(IncidentTip.incident_id).where(IncidentTip.tip_id == tip.id))


def _alert(session: Session, incident: Incident) -> Alert | None:
    if incident.alert_id:
        found = session.get(Alert, incident.alert_id)
        if found is not None:
            return found
    return session.scalars(
        select(Alert)
        .where(Alert.incident_id == incident.id)
        .order_by(Alert.created_at.desc())
        .limit(1)
    ).first()


def _pages(session: Session, incident: Incident) -> list[PageRow]:
    """Every alert page of the incident's alerts: to whom (the roster name), how, when."""
    alert_ids = select(Alert.id).where(
        or_(Alert.incident_id == incident.id, Alert.id == (incident.alert_id or ""))
    )
    found = session.execute(
        select(OutboundMessage, Delivery, Staff.name)
        .join(Delivery, Delivery.outbound_id == OutboundMessage.id)
        .outerjoin(Staff, Staff.id == OutboundMessage.staff_id)
        .where(Delivery.alert_id.in_(alert_ids), OutboundMessage.purpose == "alert")
        .order_by(OutboundMessage.created_at, OutboundMessage.id)
    )
    return [
        PageRow(
            at=msg.sent_at or msg.created_at,
            staff=name or msg.to_label,
            channel=msg.channel,
            status=msg.status,
            round=delivery.round,
            step=delivery.step,
        )
        for msg, delivery, name in found
    ]


def view(session: Session, user: User, incident: Incident) -> IncidentView:
    """The page's content for this login; viewing is audited (ids only). The caller commits."""
    rows: list[IncidentTipRow] = []
    hidden = 0
    may_ack = False
    for tip, link in _tips(session, incident.id):
        if not allowed(session, user, tip, "view"):
            hidden += 1
            continue
        may_ack = may_ack or allowed(session, user, tip, "acknowledge")
        rows.append(
            IncidentTipRow(
                id=tip.id,
                code=tip.code,
                severity=tip.severity,
                category=tip.category,
                status=tip.status,
                created_at=tip.created_at,
                added_at=link.added_at,
                movable=allowed(session, user, tip, MOVE_ACTION),
            )
        )
    alert = _alert(session, incident)
    audit.record(session, actor(user), "incident.viewed", None, incident=incident.id)
    school = session.get(School, incident.school_id)
    return IncidentView(
        incident=incident,
        school=school.name if school else "",
        tips=rows,
        hidden=hidden,
        alert=alert,
        pages=_pages(session, incident),
        may_acknowledge=(
            may_ack and user.staff is not None and alert is not None and alert.status == "open"
        ),
        may_move=any(r.movable for r in rows),
    )


def acknowledge(
    session: Session, vault: Vault, user: User, incident: Incident, now: datetime
) -> acks.AckResult:
    """Acknowledge the incident's alert once for all its tips, from a tip of it this login may
    acknowledge. Staff the alert's policy does not name get `seen` and the escalation goes on
    (`acks.acknowledge`). The caller commits."""
    alert = _alert(session, incident)
    if alert is None or alert.status != "open":
        raise casework.CaseworkError("nothing is paging for this incident")
    tips = [tip for tip, _ in _tips(session, incident.id)]
    # The alert's own tip first: its policy is the one the acknowledgement is judged by.
    tips.sort(key=lambda t: t.id != alert.tip_id)
    for tip in tips:
        if allowed(session, user, tip, "acknowledge"):
            return casework.acknowledge(session, vault, user, tip, now)
    raise NotPermitted(f"a {user.role} login may not acknowledge this incident")


def _moved(session: Session, incident: Incident, delta: int, now: datetime) -> None:
    incident.tip_count = max(0, incident.tip_count + delta)
    if delta > 0:
        incident.last_tip_at = max(incident.last_tip_at, now)
    session.flush()


def add_tip(session: Session, user: User, incident: Incident, code: str, now: datetime) -> Tip:
    """Move the tip with this code (at the incident's school) into the incident, out of any
    other it was in. Audited on the tip. The caller commits."""
    code = code.strip().upper()
    if not code.startswith("T"):
        code = "T" + code
    tip = session.scalars(
        select(Tip).where(Tip.school_id == incident.school_id, Tip.code == code[:16])
    ).first()
    if tip is None or not allowed(session, user, tip, "view"):
        raise IncidentError(f"no tip {code[:16]} at this incident's school")
    if not allowed(session, user, tip, MOVE_ACTION):
        raise NotPermitted(f"a {user.role} login may not move this tip")
    link = session.get(IncidentTip, tip.id)
    if link is not None and link.incident_id == incident.id:
        raise IncidentError(f"{tip.code} is already in this incident")
    came_from = None
    if link is not None:
        came_from = link.incident_id
        previous = session.get(Incident, link.incident_id)
        session.delete(link)
        session.flush()
        if previous is not None:
            _moved(session, previous, -1, now)
    session.add(IncidentTip(tip_id=tip.id, incident_id=incident.id, added_at=now, paged=False))
    _moved(session, incident, +1, now)
    audit.record(
        session,
        actor(user),
        "incident.tip_added",
        tip.id,
        incident=incident.id,
        from_incident=came_from,
    )
    return tip


def remove_tip(session: Session, user: User, incident: Incident, tip_id: str, now: datetime) -> Tip:
    """Take a tip out of the incident: it stands alone again (nobody is paged for it anew).
    Audited on the tip. The caller commits."""
    link = session.get(IncidentTip, tip_id) if len(tip_id) <= 32 else None
    tip = session.get(Tip, tip_id) if link is not None else None
    if link is None or tip is None or link.incident_id != incident.id:
        raise NotFound("no such tip in this incident")
    if not allowed(session, user, tip, "view"):
        raise NotFound("no such tip in this incident")
    if not allowed(session, user, tip, MOVE_ACTION):
        raise NotPermitted(f"a {user.role} login may not move this tip")
    session.delete(link)
    session.flush()
    _moved(session, incident, -1, now)
    audit.record(session, actor(user), "incident.tip_removed", tip.id, incident=incident.id)
    return tip
