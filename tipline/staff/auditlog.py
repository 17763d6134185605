"""The audit page: who reads which part of the log, its filters, pages and CSV export.

An admin reads the entries about tips of their schools that they may view (role × school ×
category, as in the queue) and the entries of logins of their schools that name no tip (sign-in,
sign-out, second-factor resets); district staff read everything. Reading the log is itself an
audit event. The export holds the log as stored: ids, never emails or names.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import Session

from tipline.models import AuditEvent, School, Tip, User, user_schools
from tipline.staff import access
from tipline.vault import audit

READER_ROLES = ("admin", "district")
PAGE_SIZE = 50
EXPORT_BATCH = 1000
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "school",
    "tip_id",
    "tip_code",
    "detail",
    "chain_seq",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def may_read(user: User) -> bool:
    return user.role in READER_ROLES


@dataclass(frozen=True)
class AuditFilter:
    school: str = ""
    actor: str = ""  # as stored (user:7, staff:ruiz, system) or a login's email
    action: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    page: int = 1

    @classmethod
    def parse(cls, args: dict[str, str]) -> tuple[AuditFilter, list[str]]:
        """The filter and the problems with what was asked (a bad date is ignored, and said)."""
        problems: list[str] = []

        def day(name: str, label: str) -> date | None:
            raw = args.get(name, "").strip()
            if not raw:
                return None
            try:
                return date.fromisoformat(raw[:10])
            except ValueError:
                problems.append(f"{label}: {raw[:20]!r} is not a date like 2026-03-09")
                return None

        try:
            page = max(1, min(int(args.get("page", "1")), 100_000))
        except ValueError:
            page = 1
        return (
            cls(
                school=args.get("school", "").strip()[:63],
                actor=args.get("actor", "").strip()[:254],
                action=args.get("action", "").strip()[:64],
                since=day("from", "From"),
                until=day("to", "To"),
                page=page,
            ),
            problems,
        )

    def query_args(self, page: int | None = None) -> dict[str, str]:
        found = {
            "school": self.school,
            "actor": self.actor,
            "action": self.action,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
        }
        if page is not None and page > 1:
            found["page"] = str(page)
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    actor_label: str
    action: str
    school: str | None
    tip_id: str | None
    tip_code: str | None
    detail: dict[str, Any]
    chain_seq: int | None


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    page: int
    has_next: bool
    actions: list[str]


def _stored_actor(session: Session, raw: str) -> str:
    """An email becomes its login's actor id; anything else is taken as stored."""
    if "@" not in raw:
        return raw
    found = session.scalar(select(User.id).where(User.email == raw.lower()))
    return access.actor_of(found) if found is not None else "user:none"


def _scope(session: Session, user: User) -> ColumnElement[bool]:
    """The entries this reader may read (the caller joins Tip on the entry's tip)."""
    if user.role == "district":
        return true()
    school_ids = [school.id for school in user.schools]
    if not school_ids:
        return false()
    logins = session.scalars(
        select(user_schools.c.user_id).where(user_schools.c.school_id.in_(school_ids)).distinct()
    )
    actors = [access.actor_of(login) for login in logins]
    viewable = access.viewable_tips(session, user, select(Tip))
    return or_(
        and_(AuditEvent.tip_id.is_not(None), viewable),
        and_(AuditEvent.tip_id.is_(None), AuditEvent.actor.in_(actors)),
    )


def _filtered(session: Session, user: User, flt: AuditFilter) -> Select[AuditEvent, str, str]:
    query = (
        select(AuditEvent, Tip.code, School.slug)
        .outerjoin(Tip, Tip.id == AuditEvent.tip_id)
        .outerjoin(School, School.id == Tip.school_id)
        .where(_scope(session, user))
    )
    if flt.school:
        school_id = session.scalar(select(School.id).where(School.slug == flt.school))
        logins = session.scalars(
            select(user_schools.c.user_id).where(user_schools.c.school_id == school_id)
        )
        query = query.where(
            or_(
                Tip.school_id == school_id,
                and_(
                    AuditEvent.tip_id.is_(None),
                    AuditEvent.actor.in_([access.actor_of(u) for u in logins]),
                ),
            )
        )
    if flt.actor:
        query = query.where(AuditEvent.actor == _stored_actor(session, flt.actor))
    if flt.action:
        query = query.where(AuditEvent.action == flt.action)
    if flt.since:
        query = query.where(AuditEvent.at >= datetime.combine(flt.since, time(), UTC))
    if flt.until:
        end = datetime.combine(flt.until + timedelta(days=1), time(), UTC)
        query = query.where(AuditEvent.at < end)
    return query


def _record_reading(session: Session, user: User, flt: AuditFilter, action: str) -> None:
    """Reading the log is an event of its own, with the filter as ids (never an email)."""
    asked: dict[str, Any] = dict(flt.query_args(flt.page))
    if flt.actor:
        asked["actor"] = _stored_actor(session, flt.actor)
    audit.record(session, access.actor(user), action, None, filter=asked)


def read(session: Session, user: User, flt: AuditFilter) -> AuditPage:
    """One page of the log for this reader, newest first; the reading is audited (the caller
    has checked `may_read` and commits)."""
    _record_reading(session, user, flt, "audit.viewed")
    query = _filtered(session, user, flt).order_by(AuditEvent.id.desc())
    found = session.execute(query.offset((flt.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    names = access.ActorNames(session)
    rows = [
        AuditRow(
            id=event.id,
            at=event.at,
            actor=event.actor,
            actor_label=names.label(event.actor),
            action=event.action,
            school=slug,
            tip_id=event.tip_id,
            tip_code=code,
            detail=dict(event.detail or {}),
            chain_seq=event.chain_seq,
        )
        for event, code, slug in found[:PAGE_SIZE]
    ]
    actions = list(session.scalars(select(AuditEvent.action).distinct().order_by("action")))
    return AuditPage(rows, flt.page, len(found) > PAGE_SIZE, actions)


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a quote first."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_values(event: AuditEvent, code: str | None, slug: str | None) -> list[Any]:
    return [
        event.id,
        event.at.isoformat(),
        event.actor,
        event.action,
        slug,
        event.tip_id,
        code,
        json.dumps(event.detail or {}, sort_keys=True, default=str),
        event.chain_seq,
        event.hash,
    ]


def export(session: Session, user: User, flt: AuditFilter) -> Iterator[str]:
    """The filtered log as CSV lines, oldest first, as stored (ids only). The export is audited
    before the first line: the caller commits, then streams."""
    _record_reading(session, user, flt, "audit.exported")
    query = (
        _filtered(session, user, flt)
        .order_by(AuditEvent.id)
        .execution_options(yield_per=EXPORT_BATCH)
    )

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        try:
            for event, code, slug in session.execute(query):
                writer.writerow([csv_cell(v) for v in _csv_values(event, code, slug)])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                session.expunge(event)
        finally:
            # The read holds a cursor and a transaction (a server-side cursor on PostgreSQL):
            # end both whether the download finished or the browser went away.
            session.rollback()

    return lines()
