"""The queue's narrower filters (category, assigned to me, dates, incident) and its search in
the decrypted text of the tips those filters select, decrypting at most SEARCH_CAP of them.

Search decrypts in this process and keeps nothing: the term is never stored, logged or put in
the audit log (it may name a student), and the text never leaves this function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tipline.intake import records
from tipline.models import AuditEvent, IncidentTip, Message, Tip, User
from tipline.vault.keyring import Vault

SEARCH_CAP = 300  # tips decrypted per search at most: newest (most severe first) of the filter
MAX_TERM = 100


@dataclass(frozen=True)
class SearchInfo:
    term: str
    decrypted: int
    capped: bool  # the filters select more tips than SEARCH_CAP: older ones were not searched
    matched: int


def day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()[:10]) if raw.strip() else None
    except ValueError:
        return None


def assigned_to(session: Session, user: User) -> list[str]:
    """Tips whose latest assignment (kept in the audit log) names this login."""
    latest: dict[str, Any] = {}
    for tip_id, detail in session.execute(
        select(AuditEvent.tip_id, AuditEvent.detail)
        .where(AuditEvent.action == "tip.assigned", AuditEvent.tip_id.is_not(None))
        .order_by(AuditEvent.id)
    ):
        latest[str(tip_id)] = (detail or {}).get("to_user")
    return [tip_id for tip_id, to_user in latest.items() if to_user == user.id]


def narrow(
    session: Session,
    user: User,
    query: Select[Any],
    *,
    category: str,
    mine: bool,
    since: date | None,
    until: date | None,
    incident: str,
) -> Select[Any]:
    if category:
        query = query.where(Tip.category == category)
    if mine:
        query = query.where(Tip.id.in_(assigned_to(session, user)))
    if since:
        query = query.where(Tip.created_at >= datetime.combine(since, time(), UTC))
    if until:
        query = query.where(
            Tip.created_at < datetime.combine(until + timedelta(days=1), time(), UTC)
        )
    if incident:
        query = query.where(
            Tip.id.in_(select(IncidentTip.tip_id).where(IncidentTip.incident_id == incident))
        )
    return query


def _texts(session: Session, vault: Vault, tips: list[Tip]) -> dict[str, str]:
    """Each tip's first text and the student's follow-ups, decrypted (shredded tips: none)."""
    found = {tip.id: records.tip_text(vault, tip) for tip in tips if tip.data_key is not None}
    for msg in session.scalars(
        select(Message).where(Message.tip_id.in_(list(found)), Message.direction == "in")
    ):
        if msg.data_key is not None:
            found[msg.tip_id] += "\n" + (vault.get_text(msg, "body") or "")
    return found


def search(
    session: Session, vault: Vault, ordered: Select[Any], term: str
) -> tuple[Select[Any], SearchInfo]:
    """`ordered` narrowed to the tips whose text holds `term` (case-insensitive), searching
    the first SEARCH_CAP tips it selects."""
    needle = " ".join(term.split()).casefold()
    candidates = list(session.scalars(ordered.limit(SEARCH_CAP + 1)))
    capped = len(candidates) > SEARCH_CAP
    texts = _texts(session, vault, candidates[:SEARCH_CAP])
    hits = [tip_id for tip_id, text in texts.items() if needle in " ".join(text.split()).casefold()]
    info = SearchInfo(term, len(texts), capped, len(hits))
    return ordered.where(Tip.id.in_(hits)), info
