"""What staff may see: permissions, the tip queue, one tip's case file.

Plain functions over a session, the vault and a clock; the admin blueprint only translates HTTP.
Visibility is by school: a login sees the tips of its schools (district: all schools). A tip
outside them is reported as missing, not forbidden, so tip ids are no existence oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from tipline.alerting import acks
from tipline.errors import TiplineError
from tipline.intake import records
from tipline.models import (
    Alert,
    Attachment,
    AuditEvent,
    Note,
    OutboundMessage,
    School,
    Staff,
    Tip,
    User,
)
from tipline.triage import SEVERITIES
from tipline.vault import audit
from tipline.vault.keyring import Vault

STATUSES = ("new", "open", "closed")
STATUS_FILTERS = ("active", "new", "open", "closed", "all")  # active = new or open
PAGE_SIZE = 50
EXCERPT_CHARS = 80

ACTIONS = ("view", "reply", "note", "acknowledge", "status", "assign", "reclassify")
# One table for who may do what (at the schools they see). Counselors handle cases and talk to
# students, but the severity and category that drive paging and the ownership of a case stay
# with the school's safety staff (sro, admin) and the district.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "district": frozenset(ACTIONS),
    "admin": frozenset(ACTIONS),
    "sro": frozenset(ACTIONS),
    "counselor": frozenset({"view", "reply", "note", "acknowledge", "status"}),
}


class NotFound(TiplineError):
    """No such tip for this login (it may exist at a school the login does not see)."""


class NotPermitted(TiplineError):
    """The login sees the tip but its role may not do this."""


def actor(user: User) -> str:
    """The audit actor for a staff login: its id, never an email or an IP."""
    return f"user:{user.id}"


def can(user: User, action: str) -> bool:
    return action in ROLE_ACTIONS.get(user.role, frozenset())


def sees(user: User, school_id: int) -> bool:
    """Whether this login sees the school's tips: a district login sees every school."""
    return user.role == "district" or any(school.id == school_id for school in user.schools)


def visible_school_ids(session: Session, user: User) -> list[int]:
    if user.role == "district":
        return list(session.scalars(select(School.id).order_by(School.name)))
    return [school.id for school in user.schools]


def visible_schools(session: Session, user: User) -> list[School]:
    query = select(School).order_by(School.name)
    if user.role != "district":
        query = query.where(School.id.in_([school.id for school in user.schools]))
    return list(session.scalars(query))


def tip_for(session: Session, user: User, tip_id: str, action: str = "view") -> Tip:
    """The tip if this login sees it and may do `action` on it; NotFound / NotPermitted else."""
    tip = session.get(Tip, tip_id) if len(tip_id) <= 32 else None
    if tip is None or not sees(user, tip.school_id):
        raise NotFound("no such tip")
    if not can(user, action):
        raise NotPermitted(f"a {user.role} login may not {action} a tip")
    return tip


# -- the queue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    status: str = "active"
    severity: str = ""
    school: str = ""
    page: int = 1

    @classmethod
    def parse(cls, args: dict[str, str]) -> QueueFilter:
        """Unknown values fall back to the default instead of failing the page."""
        status = args.get("status", "active")
        severity = args.get("severity", "")
        try:
            page = max(1, min(int(args.get("page", "1")), 10_000))
        except ValueError:
            page = 1
        return cls(
            status=status if status in STATUS_FILTERS else "active",
            severity=severity if severity in SEVERITIES else "",
            school=args.get("school", "")[:63],
            page=page,
        )


@dataclass(frozen=True)
class QueueRow:
    id: str
    code: str
    school: str
    severity: str
    category: str
    status: str
    created_at: datetime
    message_count: int
    excerpt: str | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    page: int
    has_next: bool


SEVERITY_RANK = case(
    (Tip.severity == "critical", 0),
    (Tip.severity == "high", 1),
    (Tip.severity == "normal", 2),
    else_=3,
)


def queue(session: Session, vault: Vault, user: User, flt: QueueFilter) -> QueuePage:
    """The tips this login sees, most severe first, then newest; no tip text (see excerpt)."""
    query = select(Tip).where(Tip.school_id.in_(visible_school_ids(session, user)))
    if flt.status == "active":
        query = query.where(Tip.status.in_(("new", "open")))
    elif flt.status != "all":
        query = query.where(Tip.status == flt.status)
    if flt.severity:
        query = query.where(Tip.severity == flt.severity)
    if flt.school:
        query = query.join(School, School.id == Tip.school_id).where(School.slug == flt.school)
    query = query.order_by(SEVERITY_RANK, Tip.created_at.desc(), Tip.id)
    tips = list(session.scalars(query.offset((flt.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    rows = [
        QueueRow(
            id=tip.id,
            code=tip.code,
            school=tip.school.name,
            severity=tip.severity,
            category=tip.category,
            status=tip.status,
            created_at=tip.created_at,
            message_count=tip.message_count,
            excerpt=queue_excerpt(vault, tip),
        )
        for tip in tips[:PAGE_SIZE]
    ]
    return QueuePage(rows, flt.page, len(tips) > PAGE_SIZE)


def queue_excerpt(vault: Vault, tip: Tip) -> str | None:
    """A few words of a critical, unclosed tip; nothing for any other.

    The queue is the screen most often open in a front office, so it shows no tip text
    (shoulder-surfing). A life-safety tip is the exception: whoever glances at the queue must
    be able to act within seconds, and the same excerpt already went out in the on-duty SMS —
    hence only for schools whose `alert_text` is "excerpt"; a school that chose "link" keeps
    tip text off every glanceable surface. A shredded tip shows nothing.
    """
    if tip.severity != "critical" or tip.status == "closed" or tip.school.alert_text != "excerpt":
        return None
    if tip.data_key is None:
        return None
    text = " ".join(records.tip_text(vault, tip).split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


# -- one tip ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class NoteView:
    at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class CaseFile:
    tip: Tip
    conversation: list[records.ConversationEntry]
    reasons: list[str]
    attachments: list[Attachment]
    outbound: list[OutboundMessage]
    events: list[EventView]
    notes: list[NoteView]
    assignee: str | None
    shredded: bool
    alert: Alert | None  # the alert paging (or last paged) for this tip, if any

    @property
    def alert_open(self) -> bool:
        return self.alert is not None and self.alert.status == "open"


def case_file(session: Session, vault: Vault, tip: Tip) -> CaseFile:
    """Everything staff see on a tip's page, decrypted; never the student's number."""
    shredded = tip.data_key is None
    names = ActorNames(session)
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.tip_id == tip.id).order_by(AuditEvent.id)
    ).all()
    events = [EventView(e.at, names.label(e.actor), e.action, dict(e.detail or {})) for e in audit]
    notes = [
        NoteView(
            note.created_at,
            names.user(note.author_user_id),
            (vault.get_text(note, "body") or "") if note.data_key else "(shredded)",
        )
        for note in session.scalars(
            select(Note).where(Note.tip_id == tip.id).order_by(Note.created_at, Note.id)
        )
    ]
    assignee_id = _assignee_id(audit)
    return CaseFile(
        tip=tip,
        conversation=[] if shredded else records.conversation(session, vault, tip),
        reasons=[] if shredded else list(records.tip_triage(vault, tip).get("reasons", [])),
        attachments=list(
            session.scalars(
                select(Attachment)
                .where(Attachment.tip_id == tip.id)
                .order_by(Attachment.created_at, Attachment.id)
            )
        ),
        outbound=list(
            session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.tip_id == tip.id)
                .order_by(OutboundMessage.created_at, OutboundMessage.id)
            )
        ),
        events=events,
        notes=notes,
        assignee=None if assignee_id is None else names.user(assignee_id),
        shredded=shredded,
        alert=acks.alert_for_tip(session, tip),
    )


def _assignee_id(audit: Sequence[AuditEvent]) -> int | None:
    """The assignment lives in the audit log (oldest first): the latest `tip.assigned` wins."""
    event = next((e for e in reversed(audit) if e.action == "tip.assigned"), None)
    if event is None:
        return None
    value = (event.detail or {}).get("to_user")
    return value if isinstance(value, int) else None


def may_own(user: User, tip: Tip) -> bool:
    """Whether this login may own the tip's case: active, sees its school, may assign."""
    return user.active and can(user, "assign") and sees(user, tip.school_id)


def assignable_users(session: Session, tip: Tip) -> list[User]:
    """Active logins who see the tip's school and may own a case."""
    users = session.scalars(select(User).where(User.active).order_by(User.email))
    return [u for u in users if may_own(u, tip)]


def attachment_for(session: Session, user: User, tip_id: str, attachment_id: str) -> Attachment:
    """A stored attachment of a tip this login sees; NotFound for anything else."""
    tip = tip_for(session, user, tip_id)
    att = session.get(Attachment, attachment_id) if len(attachment_id) <= 32 else None
    if att is None or att.tip_id != tip.id or att.status != "stored" or att.data_key is None:
        raise NotFound("no such attachment")
    return att


def open_case(session: Session, vault: Vault, user: User, tip: Tip) -> CaseFile:
    """The tip's case file, decrypted for this login; the viewing is audited (ids only).
    The caller has checked `tip_for` and commits."""
    audit.record(session, actor(user), "tip.viewed", tip.id)
    return case_file(session, vault, tip)


def download(
    session: Session, vault: Vault, user: User, tip_id: str, attachment_id: str
) -> tuple[Attachment, bytes]:
    """An attachment this login sees, decrypted, and the download audited; the caller commits.
    NotFound for anything else."""
    att = attachment_for(session, user, tip_id, attachment_id)
    content = vault.get_bytes(att, "content") or b""
    audit.record(session, actor(user), "attachment.downloaded", att.tip_id, attachment_id=att.id)
    return att, content


class ActorNames:
    """Audit actors as staff read them: `user:7` → its email, `staff:ruiz` → the name."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._users: dict[int, str] = {}

    def user(self, user_id: int | None) -> str:
        if user_id is None:
            return "(deleted login)"
        if user_id not in self._users:
            email = self.session.scalar(select(User.email).where(User.id == user_id))
            self._users[user_id] = email or "(deleted login)"
        return self._users[user_id]

    def label(self, actor: str) -> str:
        kind, _, ref = actor.partition(":")
        if kind == "user" and ref.isdigit():
            return self.user(int(ref))
        if kind == "staff" and ref:
            name = self.session.scalar(select(Staff.name).where(Staff.key == ref))
            return name or actor
        return actor
