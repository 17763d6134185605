"""Break-glass: revealing the phone number behind an SMS tip, for an emergency.

Off unless the school's `break_glass = true`. One admin asks, with a written reason (sealed
like a note); a second admin of the school approves within an hour; the worker decrypts the
number (the web process never opens a student's number) and seals it under a key of its own;
the asker sees it once, and that key is deleted as the page is drawn. Every step is on the
tip's timeline and in the audit log (ids only), and every admin of the school is told by SMS,
or by e-mail when they have no phone.

Plain functions over a session, the vault and a clock; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.db import new_id
from tipline.errors import TiplineError
from tipline.models import Reveal, Staff, Tip, User
from tipline.outbox import messages
from tipline.staff.access import actor, sees
from tipline.vault import audit
from tipline.vault.keyring import Vault

WINDOW = timedelta(hours=1)  # a request nobody approved within this expires
MIN_REASON = 20  # characters: a reason, not "urgent"
MAX_REASON = 2000
ROLES = frozenset({"admin", "district"})  # who may ask and approve
OPEN = ("pending", "approved", "revealed")


class BreakGlassError(TiplineError):
    """The request cannot be made or approved as asked; the message is safe to show staff."""


@dataclass(frozen=True)
class RevealView:
    """What the tip page shows of a request: never the reason's text to anyone but admins."""

    reveal: Reveal
    requester: str
    approver: str | None
    may_approve: bool
    may_view: bool


def available(user: User, tip: Tip) -> bool:
    """Whether this login could ask to reveal the number behind this tip at all."""
    return (
        tip.school.break_glass
        and user.role in ROLES
        and sees(user, tip.school_id)
        and tip.source == "sms"
        and tip.tipster_id is not None
        and tip.purged_at is None
    )


def expire(reveal: Reveal, now: datetime) -> bool:
    """Mark a request expired once its window has passed unapproved; True when it is."""
    if reveal.status == "pending" and now - reveal.requested_at > WINDOW:
        reveal.status = "expired"
        audit.record(
            session_of(reveal), "system", "tip.reveal_expired", reveal.tip_id, reveal_id=reveal.id
        )
    return reveal.status == "expired"


def session_of(reveal: Reveal) -> Session:
    session = Session.object_session(reveal)
    if session is None:  # pragma: no cover - a detached row is a programming error
        raise RuntimeError("reveal is not attached to a session")
    return session


def request(
    session: Session, vault: Vault, user: User, tip: Tip, reason: str, now: datetime, base_url: str
) -> Reveal:
    """Ask to reveal the number; tells every admin of the school, who must approve in time."""
    if not available(user, tip):
        raise BreakGlassError("revealing a number is not available for this tip")
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise BreakGlassError(f"write a reason of at least {MIN_REASON} characters")
    if len(reason) > MAX_REASON:
        raise BreakGlassError(f"the reason is longer than {MAX_REASON} characters")
    for earlier in _requests(session, tip.id):
        expire(earlier, now)
        if earlier.status in OPEN:
            raise BreakGlassError("a request for this tip is already open")
    reveal = Reveal(
        id=new_id(),
        tip_id=tip.id,
        requested_by=user.id,
        status="pending",
        data_key=vault.new_data_key(),
        requested_at=now,
    )
    vault.put(reveal, "reason", reason)
    session.add(reveal)
    audit.record(session, actor(user), "tip.reveal_requested", tip.id, reveal_id=reveal.id)
    _tell_admins(
        session,
        vault,
        tip,
        f"Break-glass at {tip.school.name}: a request to reveal the number behind {tip.code}. "
        f"A second admin must approve within 1 hour: {base_url}/admin/tips/{tip.id}",
        f"break-glass requested {tip.code}",
        now,
    )
    return reveal


def approve(
    session: Session, vault: Vault, user: User, reveal: Reveal, now: datetime, base_url: str
) -> Reveal:
    """A second admin approves; the caller commits and then queues the worker's decryption."""
    tip = session.get(Tip, reveal.tip_id)
    if tip is None or not available(user, tip):
        raise BreakGlassError("you may not approve this request")
    if expire(reveal, now):
        raise BreakGlassError("this request expired: nobody approved it within an hour")
    if reveal.status != "pending":
        raise BreakGlassError("this request is no longer waiting for approval")
    if reveal.requested_by == user.id:
        raise BreakGlassError("a second admin must approve: not the one who asked")
    reveal.status, reveal.approved_by, reveal.approved_at = "approved", user.id, now
    audit.record(session, actor(user), "tip.reveal_approved", tip.id, reveal_id=reveal.id)
    _tell_admins(
        session,
        vault,
        tip,
        f"Break-glass at {tip.school.name}: revealing the number behind {tip.code} was "
        f"approved by a second admin. {base_url}/admin/tips/{tip.id}",
        f"break-glass approved {tip.code}",
        now,
    )
    return reveal


def decrypt(session: Session, vault: Vault, reveal_id: str, now: datetime) -> bool:
    """The worker's part: seal the number for the asker under a key of its own. Idempotent."""
    reveal = session.scalars(
        select(Reveal).where(Reveal.id == reveal_id).with_for_update(of=Reveal)
    ).first()
    if reveal is None or reveal.status != "approved":
        return False
    tip = session.get(Tip, reveal.tip_id)
    tipster = tip.tipster if tip is not None else None
    number = vault.get_text(tipster, "phone") if tipster and tipster.data_key else None
    if number is None:
        reveal.status = "expired"  # nothing left to reveal: retention forgot the number
        audit.record(
            session, "system", "tip.reveal_unavailable", reveal.tip_id, reveal_id=reveal.id
        )
        return False
    key = vault.new_data_key()
    session.add(key)
    reveal.number_key = key
    reveal._number = vault.seal_for("reveal", "number", reveal.id, key, number.encode())
    reveal.status, reveal.revealed_at = "revealed", now
    audit.record(session, "system", "tip.reveal_decrypted", reveal.tip_id, reveal_id=reveal.id)
    return True


def show_once(session: Session, vault: Vault, user: User, reveal: Reveal, now: datetime) -> str:
    """The number, for the one who asked, once: its key is deleted as it is read."""
    if reveal.requested_by != user.id:
        raise BreakGlassError("only the admin who asked may see the number")
    if reveal.status == "shown":
        raise BreakGlassError("the number was already shown once; ask again if you must")
    if reveal.status != "revealed" or reveal.number_key is None or reveal._number is None:
        raise BreakGlassError("the number is not ready yet")
    number = vault.open_for(
        "reveal", "number", reveal.id, reveal.number_key, reveal._number
    ).decode()
    key = reveal.number_key
    reveal.number_key, reveal._number = None, None
    session.delete(key)
    reveal.status, reveal.shown_at = "shown", now
    audit.record(session, actor(user), "tip.number_shown", reveal.tip_id, reveal_id=reveal.id)
    return number


def reason(vault: Vault, reveal: Reveal) -> str | None:
    return vault.get_text(reveal, "reason") if reveal.data_key else None


def views(session: Session, user: User, tip: Tip, now: datetime) -> list[RevealView]:
    """The tip's requests as the tip page shows them (expired ones marked as such)."""
    names = {u.id: u.email for u in session.scalars(select(User).where(User.role.in_(ROLES)))}
    found = []
    for reveal in _requests(session, tip.id):
        expire(reveal, now)
        found.append(
            RevealView(
                reveal=reveal,
                requester=names.get(reveal.requested_by or -1, "a former login"),
                approver=names.get(reveal.approved_by) if reveal.approved_by else None,
                may_approve=reveal.status == "pending"
                and reveal.requested_by != user.id
                and available(user, tip),
                may_view=reveal.status == "revealed" and reveal.requested_by == user.id,
            )
        )
    return found


def _requests(session: Session, tip_id: str) -> Sequence[Reveal]:
    return session.scalars(
        select(Reveal).where(Reveal.tip_id == tip_id).order_by(Reveal.requested_at)
    ).all()


def _tell_admins(
    session: Session, vault: Vault, tip: Tip, body: str, line: str, now: datetime
) -> None:
    """SMS every active admin of the school (e-mail when they have no phone); no tip text."""
    admins = session.scalars(
        select(Staff).where(Staff.active, Staff.role == "admin").order_by(Staff.id)
    ).all()
    ids = []
    for member in admins:
        if not any(school.id == tip.school_id for school in member.schools):
            continue
        channel = "sms" if member.phone else "email" if member.email else None
        if channel is None:
            continue
        msg = messages.queue_outbound(
            session,
            vault,
            channel=channel,
            purpose="notice",
            to_label=member.key,
            summary=line,
            body=body,
            now=now,
            tip_id=tip.id,
            staff_id=member.id,
            from_number=tip.school.sms_number,
        )
        ids.append(msg.id)
    messages.send_after_commit(session, ids)
