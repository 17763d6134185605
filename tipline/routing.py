"""Route a stored tip to people. Until alerting lands this only records that routing happened."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline import audit
from tipline.models import Tip

log = logging.getLogger(__name__)


def route_tip(session: Session, tip_id: str, now: datetime) -> bool:
    """Clear the tip's outbox mark once; True when this call did the routing.

    Idempotent: the row lock (PostgreSQL) and the `needs_routing` check make a second run,
    a sweeper re-enqueue or a duplicate job a no-op.
    """
    tip = session.scalars(select(Tip).where(Tip.id == tip_id).with_for_update(of=Tip)).first()
    if tip is None or not tip.needs_routing:
        session.rollback()
        return False
    tip.needs_routing = False
    tip.routed_at = now
    audit.record(session, "system", "tip.routed", tip.id, code=tip.code)
    session.commit()
    log.info("routed tip %s (%s %s) at %s", tip.code, tip.severity, tip.category, tip.school.slug)
    return True
