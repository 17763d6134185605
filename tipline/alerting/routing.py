"""Route a stored tip: place it in an incident and, when that pages, open an alert."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tipline.alerting import escalation, incidents
from tipline.alerting import flood as flooding
from tipline.district import cache
from tipline.models import Alert, IncidentTip, School, Tip
from tipline.outbox import messages
from tipline.triage import RuleSet
from tipline.vault import audit
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    code: str
    alert_id: str | None  # an alert opened now
    reason: str
    first_step: escalation.StepRun | None = None  # its first step, run with the routing
    flood: flooding.FloodRun | None = None  # held for the school's flood digest instead


def route_tip(
    session: Session,
    vault: Vault,
    rules: RuleSet,
    tip_id: str,
    now: datetime,
    *,
    public_url: str,
) -> Routed | None:
    """Clear the tip's outbox mark once and route it; None when someone else already did.

    An alert opened here runs its first step in the same transaction (`public_url` goes into
    its links): the tip is routed and its first page queued together, or neither is.

    Idempotent: the mark is cleared by a compare-and-set UPDATE, so of a job, its duplicate
    and the sweeper, exactly one routes. That UPDATE is also this transaction's first write,
    which on SQLite takes the database's write lock; on PostgreSQL the school row is locked.
    Either way tips of one school are placed into incidents one at a time.
    """
    cleared = session.execute(
        update(Tip)
        .where(Tip.id == tip_id, Tip.needs_routing.is_(True))
        .values(needs_routing=False, routed_at=now)
        .execution_options(synchronize_session=False)
    )
    if cleared.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    tip = session.get(Tip, tip_id, populate_existing=True)
    assert tip is not None  # noqa: S101 - the UPDATE just matched it
    session.scalars(select(School.id).where(School.id == tip.school_id).with_for_update()).first()
    placement = incidents.place_tip(session, vault, rules, tip, now)
    incident = placement.incident
    # A tip the spool already paged about while the database was down keeps its escalation:
    # a drain after an outage delivers many tips at once, and holding those for a digest
    # would stop the chain of a critical tip that nobody has acknowledged yet.
    held = None
    if not escalation.paged_offline(session, tip.id):
        held = flooding.hold(
            session,
            vault,
            tip,
            now,
            would_page=placement.page,
            signals=placement.signals,
            public_url=public_url,
        )
    if held is not None:
        member = session.get(IncidentTip, tip.id)
        if member is not None:
            member.paged = False  # the digest reports it, not a page
        audit.record(
            session,
            "system",
            "tip.routed",
            tip.id,
            code=tip.code,
            incident_tips=incident.tip_count,
            paged=False,
            reason=f"flood digest ({placement.reason})",
        )
        session.commit()
        log.info("tip %s at %s is held for the flood digest", tip.code, tip.school.slug)
        return Routed(tip.code, None, "held for the flood digest", flood=held)
    alert = None
    resume = None
    if placement.page:
        previous = (
            session.get(Alert, placement.previous_alert) if placement.previous_alert else None
        )
        if previous is not None and previous.status == "open":
            resume = escalation.position_of(session, previous)
            messages.close_alert(session, previous.id, "superseded", now)
        severity = incident.severity
        category = incident.category if severity != tip.severity else tip.category
        alert = escalation.open_alert(
            session,
            cache.current_district(session),
            tip=tip,
            severity=severity,
            category=category,
            now=now,
            incident_id=incident.id,
            reason=placement.reason,
            replaces=resume,
        )
        session.flush()
        incident.alert_id = alert.id
    audit.record(
        session,
        "system",
        "tip.routed",
        tip.id,
        code=tip.code,
        incident_tips=incident.tip_count,
        paged=placement.page,
        reason=placement.reason,
    )
    if alert is None:
        session.commit()
        log.info(
            "tip %s joined an incident at %s (%d tips); no new page",
            tip.code,
            tip.school.slug,
            incident.tip_count,
        )
        return Routed(tip.code, None, placement.reason)
    log.info(
        "tip %s (%s %s) at %s pages: %s",
        tip.code,
        alert.severity,
        alert.category,
        tip.school.slug,
        placement.reason,
    )
    code, alert_id = tip.code, alert.id  # read before the step's commit expires them
    if resume is not None and resume.last is not None and resume.continued_by(alert):
        # It took over the replaced alert's position: the people paged so far hear of the
        # addition now, and the next step stays due when it was.
        run = escalation.page_update(session, vault, alert, resume.last, now, public_url=public_url)
    else:
        run = escalation.run_step(
            session, vault, alert_id, alert.token, now, public_url=public_url, executed_by="route"
        )
    return Routed(code, alert_id, placement.reason, run)
