"""What staff may see: permissions, the tip queue, one tip's case file.

Plain functions over a session, the vault and a clock; the admin blueprint only translates HTTP.
Access is role × school × category × action (`district/grants.py`, docs/access.md): a login
sees the tips of its schools (district: all schools) in the categories its role sees there,
some only when the tip's policy names them. A tip it may not view is reported as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, or_, select
from sqlalchemy.orm import Session

from tipline.alerting import acks, named
from tipline.district import grants
from tipline.errors import TiplineError
from tipline.intake import records, sandbox
from tipline.models import (
    CHECKING,
    Alert,
    Attachment,
    AuditEvent,
    IncidentTip,
    Note,
    OutboundMessage,
    School,
    Setting,
    Staff,
    Tip,
    User,
)
from tipline.staff import queuesearch
from tipline.triage import CATEGORIES, SEVERITIES
from tipline.vault import audit
from tipline.vault.keyring import Vault

STATUSES = ("new", "open", "closed")
STATUS_FILTERS = ("active", "new", "open", "closed", "all")  # active = new or open
PAGE_SIZE = 50
EXCERPT_CHARS = 80
_RULES_MEMO = "tipline.access-rules"


class NotFound(TiplineError):
    """No such tip for this login (it may exist where the login does not see)."""


class NotPermitted(TiplineError):
    """The login sees the tip but its role may not do this."""


def actor(user: User) -> str:
    """The audit actor for a staff login: its id, never an email or an IP."""
    return actor_of(user.id)


def actor_of(user_id: int) -> str:
    return f"user:{user_id}"


def sees(user: User, school_id: int) -> bool:
    """Whether this login sees the school's tips: a district login sees every school."""
    return user.role == "district" or any(school.id == school_id for school in user.schools)


def rules(session: Session) -> tuple[grants.AccessRule, ...]:
    """The district's `[[access]]` entries as `tipline init` stored them (once per transaction)."""
    memo = session.info.get(_RULES_MEMO)
    if memo is not None and memo[0] is session.get_transaction():
        found: tuple[grants.AccessRule, ...] = memo[1]
        return found
    setting = session.get(Setting, grants.ACCESS_SETTING)
    found = grants.rules_from_json(setting.value if setting else None)
    session.info[_RULES_MEMO] = (session.get_transaction(), found)
    return found


def cell(session: Session, user: User, tip: Tip) -> grants.Cell:
    """What this login's role may do on tips of this school and category (grants.py)."""
    if not sees(user, tip.school_id):
        return grants.NOTHING
    return grants.cell(rules(session), user.role, tip.school.slug, tip.category)


def paged(session: Session, user: User, tip: Tip, who: named.Person | None = None) -> bool:
    """Whether the tip's policy (or the school's fallback) names this login's role or staff."""
    who = who or named.person(session, user.staff, user.role)
    return named.tip_names(session, tip, acks.alert_for_tip(session, tip), who)


def allowed(session: Session, user: User, tip: Tip, action: str) -> bool:
    """Role × school × category × action: the one permission check."""
    found = cell(session, user, tip)
    if action not in found.actions:
        return False
    return not found.paged_only or paged(session, user, tip)


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
    """The tip if this login may view it and do `action` on it; NotFound / NotPermitted else.

    A tip the login may not view (another school, or a category its role does not see) is
    missing, not forbidden, so tip ids are no existence oracle."""
    tip = session.get(Tip, tip_id) if len(tip_id) <= 32 else None
    if tip is None or not allowed(session, user, tip, "view"):
        raise NotFound("no such tip")
    if not allowed(session, user, tip, action):
        raise NotPermitted(f"a {user.role} login may not {action} this tip")
    return tip


# -- the queue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    status: str = "active"
    severity: str = ""
    school: str = ""
    page: int = 1
    category: str = ""
    mine: bool = False  # assigned to the login asking
    since: date | None = None  # received on or after this day (UTC)
    until: date | None = None  # received on or before this day (UTC)
    incident: str = ""
    q: str = ""  # search in the decrypted text of the tips the other filters select

    @classmethod
    def parse(cls, args: dict[str, str]) -> QueueFilter:
        """Unknown values fall back to the default instead of failing the page."""
        status = args.get("status", "active")
        severity = args.get("severity", "")
        category = args.get("category", "")
        try:
            page = max(1, min(int(args.get("page", "1")), 10_000))
        except ValueError:
            page = 1
        return cls(
            status=status if status in STATUS_FILTERS else "active",
            severity=severity if severity in SEVERITIES else "",
            school=args.get("school", "")[:63],
            page=page,
            category=category if category in CATEGORIES else "",
            mine=args.get("mine", "") in ("1", "on", "true"),
            since=queuesearch.day(args.get("from", "")),
            until=queuesearch.day(args.get("to", "")),
            incident=args.get("incident", "").strip()[:32],
            q=" ".join(args.get("q", "").split())[: queuesearch.MAX_TERM],
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
    incident_id: str | None = None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    page: int
    has_next: bool
    search: queuesearch.SearchInfo | None = None


SEVERITY_RANK = case(
    (Tip.severity == "critical", 0),
    (Tip.severity == "high", 1),
    (Tip.severity == "normal", 2),
    else_=3,
)


def queue(
    session: Session, vault: Vault, user: User, flt: QueueFilter, *, excerpts: bool = True
) -> QueuePage:
    """The tips this login may view, most severe first, then newest; no tip text (see excerpt;
    `excerpts=False` decrypts nothing, for callers that show none)."""
    query = select(Tip)
    if flt.status == "active":
        query = query.where(Tip.status.in_(("new", "open")))
    elif flt.status != "all":
        query = query.where(Tip.status == flt.status)
    if flt.severity:
        query = query.where(Tip.severity == flt.severity)
    if flt.school:
        query = query.join(School, School.id == Tip.school_id).where(School.slug == flt.school)
    query = queuesearch.narrow(
        session,
        user,
        query,
        category=flt.category,
        mine=flt.mine,
        since=flt.since,
        until=flt.until,
        incident=flt.incident,
    )
    query = query.where(_viewable(session, user, query))
    query = query.order_by(SEVERITY_RANK, Tip.created_at.desc(), Tip.id)
    searched = None
    if flt.q:
        query, searched = queuesearch.search(session, vault, query, flt.q)
    tips = list(session.scalars(query.offset((flt.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    incidents = dict(
        session.execute(
            select(IncidentTip.tip_id, IncidentTip.incident_id).where(
                IncidentTip.tip_id.in_([tip.id for tip in tips])
            )
        ).all()
    )
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
            excerpt=queue_excerpt(vault, tip) if excerpts else None,
            incident_id=incidents.get(tip.id),
        )
        for tip in tips[:PAGE_SIZE]
    ]
    return QueuePage(rows, flt.page, len(tips) > PAGE_SIZE, searched)


def viewable_tips(session: Session, user: User, filtered: Select[Any]) -> ColumnElement[bool]:
    """A condition on `Tip` that holds for the tips this login may view among `filtered`."""
    return _viewable(session, user, filtered)


def _viewable(session: Session, user: User, filtered: Select[Any]) -> ColumnElement[bool]:
    """The queue's access filter: per school, the categories the role always sees, and the
    tips of its "paged" categories whose policy names this login (checked one by one, among
    the tips `filtered` selects; weapon and violence tips at one school are few)."""
    found: list[ColumnElement[bool]] = []
    table = rules(session)
    who = named.person(session, user.staff, user.role)
    for school in visible_schools(session, user):
        cells = {c: grants.cell(table, user.role, school.slug, c) for c in CATEGORIES}
        always = [c for c, k in cells.items() if "view" in k.actions and not k.paged_only]
        if always:
            found.append(and_(Tip.school_id == school.id, Tip.category.in_(always)))
        when_paged = [c for c, k in cells.items() if "view" in k.actions and k.paged_only]
        if not when_paged:
            continue
        candidates = session.scalars(
            filtered.where(Tip.school_id == school.id, Tip.category.in_(when_paged))
        )
        ids = [t.id for t in candidates if isinstance(t, Tip) and paged(session, user, t, who)]
        if ids:
            found.append(Tip.id.in_(ids))
    return or_(*found) if found else false()


def viewable(session: Session, user: User, filtered: Select[Any]) -> ColumnElement[bool]:
    """The queue's access filter, for reports over the tips `filtered` selects (the dashboard):
    a tip the login may not view is neither listed nor counted."""
    return _viewable(session, user, filtered)


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

    def attachment_state(self, att: Attachment) -> str:
        """What staff read for an attachment they cannot (yet) download: "being checked"
        until the sandbox is done, "refused: <why>" when it refused the file."""
        if att.status in {"pending", CHECKING}:
            return "being checked"
        if att.status != "rejected":
            return att.status
        reasons = [
            e.detail.get("reason")
            for e in self.events
            if e.action == "attachment.rejected" and e.detail.get("attachment_id") == att.id
        ]
        why = str(reasons[-1]) if reasons and reasons[-1] else ""
        return f"refused: {sandbox.REASONS.get(why, why)}" if why else "refused"


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


def may_own(session: Session, user: User, tip: Tip) -> bool:
    """Whether this login may own the tip's case: active, and may view and assign this tip."""
    return (
        user.active
        and allowed(session, user, tip, "view")
        and allowed(session, user, tip, "assign")
    )


def assignable_users(session: Session, tip: Tip) -> list[User]:
    """Active logins who may view the tip and own a case."""
    users = session.scalars(select(User).where(User.active).order_by(User.email))
    return [u for u in users if may_own(session, u, tip)]


def attachment_for(session: Session, user: User, tip_id: str, attachment_id: str) -> Attachment:
    """A stored attachment of a tip this login may download; NotFound for anything else."""
    try:
        tip = tip_for(session, user, tip_id, "download")
    except NotPermitted:
        raise NotFound("no such attachment") from None
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
