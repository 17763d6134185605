"""What staff do to a tip: reply, acknowledge, change status, assign, note, reclassify.

Plain functions over a session, the vault, the acting login and a clock; the caller commits.
Each checks visibility and role itself (through `staffview.tip_for` in the view, and `_require`
here), and writes one audit event that never holds tip, reply or note text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tipline.alerting import acks
from tipline.db import new_id
from tipline.errors import TiplineError
from tipline.intake import records
from tipline.models import Alert, Message, Note, Staff, Tip, User
from tipline.outbox import messages
from tipline.staff.access import NotPermitted, actor, allowed, may_own
from tipline.triage import CATEGORIES, SEVERITIES
from tipline.vault import audit
from tipline.vault.keyring import Vault

DISPOSITIONS = ("resolved", "unfounded", "referred", "duplicate")
# new → open → closed; a closed tip can be reopened, a new one closed at once (a duplicate).
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "closed"}),
    "open": frozenset({"closed"}),
    "closed": frozenset({"open"}),
}
HOLD_ROLES = frozenset({"admin", "district"})  # who may put a tip under legal hold or lift it
MAX_REPLY = 1600  # one SMS body at most (Twilio's limit)
MAX_NOTE = 5000


class CaseworkError(TiplineError):
    """The action cannot be done as asked; the message is safe to show staff."""


def _require(session: Session, user: User, tip: Tip, action: str) -> None:
    if not allowed(session, user, tip, action):
        raise NotPermitted(f"a {user.role} login may not {action} this tip")


def _clean(text: str, limit: int, what: str) -> str:
    text = records.clean_text(text).strip()
    if not text:
        raise CaseworkError(f"the {what} is empty")
    if len(text) > limit:
        raise CaseworkError(f"the {what} is longer than {limit} characters")
    return text


@dataclass(frozen=True)
class StudentReply:
    message: Message
    outbound_id: str | None  # an SMS to send after commit; None for web tips


def send_reply(
    session: Session,
    vault: Vault,
    tip: Tip,
    text: str,
    *,
    now: datetime,
    user: User | None = None,
    staff: Staff | None = None,
) -> StudentReply:
    """Store a sealed staff reply; for an SMS tip also queue the SMS, sent once the caller
    commits. The student's number is not read here: only the send job decrypts it. A web
    tip's reply waits on the follow-up page."""
    if tip.data_key is None:
        raise CaseworkError("this tip was shredded; nobody can reply to it any more")
    body = _clean(text, MAX_REPLY, "reply")
    staff_id = staff.id if staff else (user.staff_id if user else None)
    msg = records.add_message(
        session,
        vault,
        tip,
        direction="out",
        channel=tip.source,
        text=body,
        now=now,
        author_staff_id=staff_id,
        author_user_id=user.id if user else None,
    )
    session.flush()
    actor = f"user:{user.id}" if user else (f"staff:{staff.key}" if staff else "system")
    audit.record(session, actor, "tip.replied", tip.id, message_id=msg.id, channel=tip.source)
    if tip.source != "sms" or tip.tipster_id is None:
        return StudentReply(msg, None)
    out = messages.queue_outbound(
        session,
        vault,
        channel="sms",
        purpose="reply",
        to_label="student",
        summary=f"reply to {tip.code}",
        body=body,
        now=now,
        tip_id=tip.id,
        from_number=tip.school.sms_number,
        message_id=msg.id,
    )
    msg.delivery_status = "pending"
    messages.send_after_commit(session, [out.id])
    return StudentReply(msg, out.id)


def reply(
    session: Session, vault: Vault, user: User, tip: Tip, text: str, now: datetime
) -> StudentReply:
    """Store a sealed staff reply on the tip's channel; for an SMS tip also queue the SMS.

    The student reads it on the follow-up page (web) or gets it by SMS from the worker, the
    only place that decrypts their number. `send_reply` writes the audit event.
    The caller commits, then hands `outbound_id` (if any) to the send queue.
    """
    _require(session, user, tip, "reply")
    return send_reply(session, vault, tip, text, now=now, user=user)


def open_alert(session: Session, tip: Tip) -> Alert | None:
    """The alert paging for this tip (its incident's, if it joined one), while still open."""
    alert = acks.alert_for_tip(session, tip)
    return alert if alert is not None and alert.status == "open" else None


def acknowledge(
    session: Session, vault: Vault, user: User, tip: Tip, now: datetime
) -> acks.AckResult:
    """Acknowledge the tip's open alert from the web, as the login's staff entry.

    Acks belong to staff (the roster pages staff, not logins), so a login without a staff
    link cannot acknowledge. Staff the tip's policy does not name get `seen` (the escalation
    goes on; see `acks.acknowledge`). The caller commits; the notices go out then.
    """
    _require(session, user, tip, "acknowledge")
    if user.staff is None:
        raise CaseworkError("this login is not linked to a staff entry (create-user --staff)")
    alert = open_alert(session, tip)
    if alert is None:
        raise CaseworkError("nothing is paging for this tip")
    result = acks.acknowledge(session, vault, alert.id, user.staff, "web", now)
    if not result.acked and not result.seen:
        raise CaseworkError(result.reply)
    return result


def change_status(
    session: Session, user: User, tip: Tip, status: str, disposition: str, now: datetime
) -> None:
    """Move along new → open → closed; closing needs a disposition, kept in the audit log."""
    _require(session, user, tip, "status")
    if status not in TRANSITIONS.get(tip.status, frozenset()):
        raise CaseworkError(f"a {tip.status} tip cannot become {status}")
    if tip.purged_at is not None:
        raise CaseworkError("this tip was purged by retention; it stays closed")
    detail: dict[str, str] = {"from_status": tip.status, "to_status": status}
    if status == "closed":
        if disposition not in DISPOSITIONS:
            raise CaseworkError(f"closing needs a disposition: {', '.join(DISPOSITIONS)}")
        detail["disposition"] = disposition
    tip.status = status
    tip.closed_at = now if status == "closed" else None  # retention counts from the closing
    audit.record(session, actor(user), "tip.status", tip.id, **detail)


def set_legal_hold(session: Session, user: User, tip: Tip, hold: bool, now: datetime) -> bool:
    """Put a tip under legal hold (retention neither closes nor purges it) or lift the hold.

    Only admin and district logins; audited either way. Returns False when nothing changed.
    A purged tip cannot be held: there is nothing left to keep.
    """
    _require(session, user, tip, "view")
    if user.role not in HOLD_ROLES:
        raise NotPermitted(f"a {user.role} login may not change a legal hold")
    if tip.purged_at is not None:
        raise CaseworkError("this tip was purged by retention; nothing is left to hold")
    if tip.legal_hold == hold:
        return False
    tip.legal_hold = hold
    audit.record(
        session, actor(user), "tip.legal_hold" if hold else "tip.legal_hold_lifted", tip.id
    )
    return True


def assign(session: Session, user: User, tip: Tip, assignee_id: int, now: datetime) -> User:
    """Make a login who sees the tip's school its owner; the audit log is the record of it."""
    _require(session, user, tip, "assign")
    assignee = session.get(User, assignee_id)
    if assignee is None or not may_own(session, assignee, tip):
        raise CaseworkError("that login cannot own tips of this school")
    audit.record(session, actor(user), "tip.assigned", tip.id, to_user=assignee.id)
    return assignee


def add_note(
    session: Session, vault: Vault, user: User, tip: Tip, text: str, now: datetime
) -> Note:
    """An internal note, sealed under its own data key; students never see notes."""
    _require(session, user, tip, "note")
    body = _clean(text, MAX_NOTE, "note")
    note = Note(
        id=new_id(),
        tip_id=tip.id,
        author_user_id=user.id,
        data_key=vault.new_data_key(),
        created_at=now,
    )
    vault.put(note, "body", body)
    session.add(note)
    audit.record(session, actor(user), "tip.noted", tip.id, note_id=note.id)
    return note


def reclassify(
    session: Session, user: User, tip: Tip, severity: str, category: str, now: datetime
) -> bool:
    """Set severity and category by hand; the triage verdict stays sealed with the tip.

    The audit event keeps both sides (`from_*`, `to_*`), so the original automatic verdict and
    every human correction can be read back in order. Returns False when nothing changed.
    """
    _require(session, user, tip, "reclassify")
    if severity not in SEVERITIES or category not in CATEGORIES:
        raise CaseworkError("unknown severity or category")
    if (severity, category) == (tip.severity, tip.category):
        return False
    audit.record(
        session,
        actor(user),
        "tip.reclassified",
        tip.id,
        from_severity=tip.severity,
        to_severity=severity,
        from_category=tip.category,
        to_category=category,
    )
    tip.severity, tip.category = severity, category
    return True
