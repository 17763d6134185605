"""Acknowledging an alert: by SMS (`ACK 4821`), by the confirm page's button, by keypress 1.

An ack is a compare-and-set on the alert's status, so two people acking at once get one
winner and one "already acknowledged by"; it moves the alert's token on, so every timer still
in Redis finds a stale token and does nothing, and it cancels the alert's unsent pages.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.alerting import wording
from tipline.alerting.named import names, person
from tipline.models import (
    Alert,
    Delivery,
    Incident,
    IncidentTip,
    OutboundMessage,
    School,
    Staff,
    Tip,
)
from tipline.outbox import gsm
from tipline.outbox.messages import close_alert, queue_outbound, send_after_commit
from tipline.vault import audit
from tipline.vault.keyring import Vault

HINT = "tipline: reply ACK <code> to acknowledge an alert."  # any other text from staff
LINK_TTL = timedelta(hours=24)  # a confirm link stops working a day after its alert fired
_ACK = re.compile(r"\s*ack[\s:.,#-]*(?:t\s*)?(\d{4,})?[\s.!]*", re.IGNORECASE)


def new_ack_token() -> tuple[str, str]:
    """A confirm-page token (128 random bits) and the hash stored in its place."""
    token = secrets.token_urlsafe(16)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AckCommand:
    digits: str | None  # None: "ACK" alone


def parse_ack(body: str) -> AckCommand | None:
    """`ACK 4821`, `ack t4821`, `Ack T 4821.` → digits; `ACK` → None digits; else None."""
    m = _ACK.fullmatch(body or "")
    return AckCommand(m.group(1)) if m else None


def surname(staff: Staff) -> str:
    return staff.name.split()[-1] if staff.name.strip() else staff.key


@dataclass
class AckResult:
    acked: bool
    alert: Alert
    outbound_ids: list[str] = field(default_factory=list)  # notices and confirmation to send
    reply: str = ""
    seen: bool = False  # recorded as seen: the sender is not named, the chain goes on


def seen_text(alert: Alert) -> str:
    """What an acknowledgement that cannot stop the alert is told (GSM-7 makes the dash "-")."""
    return (
        f"{alert.tip.code} ({alert.school.name}): seen \u2014 escalation continues. "
        "Only the staff its policy names can stop it."
    )


def acknowledge(
    session: Session,
    vault: Vault,
    alert_id: str,
    staff: Staff,
    via: str,
    now: datetime,
) -> AckResult:
    """Acknowledge; tell the others already paged, and confirm by SMS unless `via` is SMS
    (then `reply` is the confirmation, answered on the same conversation). Caller commits;
    the notices and the confirmation are sent once it does, whoever acknowledged how.

    Only staff the alert's policy (or the school's fallback) names may stop it: anyone else's
    acknowledgement of an open alert is recorded as seen and the escalation goes on, so a
    counselor who happens to see a weapon alert cannot silence the SRO's pages."""
    current = session.get(Alert, alert_id, populate_existing=True)
    assert current is not None  # noqa: S101 - the caller found it
    if current.status == "open" and not names(session, current, person(session, staff)):
        audit.record(
            session,
            f"staff:{staff.key}",
            "alert.seen",
            current.tip_id,
            alert=alert_id,
            via=via,
            code=current.tip.code,
        )
        text = seen_text(current)
        reply = gsm.to_gsm7(text) if via == "sms" else text
        return AckResult(False, current, reply=reply, seen=True)
    done = close_alert(
        session, alert_id, "acked", now, acked_at=now, acked_by_staff_id=staff.id, acked_via=via
    )
    alert = session.get(Alert, alert_id, populate_existing=True)
    assert alert is not None  # noqa: S101 - the caller found it
    code = alert.tip.code
    if not done:
        return AckResult(False, alert, reply=already_text(alert))
    audit.record(
        session,
        f"staff:{staff.key}",
        "alert.acked",
        alert.tip_id,
        alert=alert_id,
        via=via,
        code=code,
    )
    result = AckResult(True, alert)
    notice = gsm.to_gsm7(f"{surname(staff)} acknowledged {code} ({alert.school.name}).")
    for other in _paged(session, alert_id):
        if other.id == staff.id or not other.phone:
            continue
        summary = f"{surname(staff)} acknowledged {code}"
        result.outbound_ids.append(
            _text(session, vault, alert, other, "notice", summary, notice, now)
        )
    others = " Others paged were told." if result.outbound_ids else ""
    confirm = gsm.to_gsm7(
        f"Acknowledged: {code} ({wording.label(alert)}, {alert.school.name}) is yours.{others}"
    )
    if via == "sms":
        result.reply = confirm
    elif staff.phone:
        summary = f"you acknowledged {code}"
        result.outbound_ids.insert(
            0, _text(session, vault, alert, staff, "confirm", summary, confirm, now)
        )
    send_after_commit(session, result.outbound_ids)
    return result


def _text(
    session: Session,
    vault: Vault,
    alert: Alert,
    to: Staff,
    purpose: str,
    summary: str,
    body: str,
    now: datetime,
) -> str:
    """Queue an SMS about `alert` to a staff member, from the school's number; its id."""
    msg = queue_outbound(
        session,
        vault,
        channel="sms",
        purpose=purpose,
        to_label=to.key,
        summary=summary,
        body=body,
        now=now,
        tip_id=alert.tip_id,
        staff_id=to.id,
        from_number=alert.school.sms_number,
    )
    return msg.id


def already_text(alert: Alert) -> str:
    code = alert.tip.code
    if alert.status == "acked":
        who = surname(alert.acked_by) if alert.acked_by else "someone"
        return f"{code} was already acknowledged by {who}."
    return f"{code} is no longer paging anyone."


def _paged(session: Session, alert_id: str) -> list[Staff]:
    """Everyone an alert page actually went (or is going) out to."""
    ids = (
        select(OutboundMessage.staff_id)
        .join(Delivery, Delivery.outbound_id == OutboundMessage.id)
        .where(
            Delivery.alert_id == alert_id,
            OutboundMessage.purpose == "alert",
            OutboundMessage.status.not_in(("canceled", "skipped", "pending", "retry")),
        )
    )
    return list(session.scalars(select(Staff).where(Staff.id.in_(ids)).order_by(Staff.id)))


def alert_for_code(session: Session, school: School, digits: str) -> Alert | None:
    """The alert now paging for tip T<digits> at `school` (see `alert_for_tip`)."""
    tip = session.scalars(
        select(Tip).where(Tip.school_id == school.id, Tip.code == f"T{digits}")
    ).first()
    return None if tip is None else alert_for_tip(session, tip)


def alert_for_tip(session: Session, tip: Tip) -> Alert | None:
    """The alert now paging for the tip: its incident's, or its own last."""
    incident = session.scalar(
        select(Incident)
        .join(IncidentTip, IncidentTip.incident_id == Incident.id)
        .where(IncidentTip.tip_id == tip.id)
    )
    if incident is not None and incident.alert_id:
        alert = session.get(Alert, incident.alert_id)
        if alert is not None:
            return alert
    return session.scalars(
        select(Alert).where(Alert.tip_id == tip.id).order_by(Alert.created_at.desc()).limit(1)
    ).first()


def open_alerts_for(session: Session, staff: Staff, school: School) -> list[Alert]:
    """Open alerts at `school` that paged `staff`, newest first."""
    paged = (
        select(Delivery.alert_id)
        .join(OutboundMessage, OutboundMessage.id == Delivery.outbound_id)
        .where(OutboundMessage.staff_id == staff.id, OutboundMessage.purpose == "alert")
    )
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.id.in_(paged), Alert.status == "open", Alert.school_id == school.id)
            .order_by(Alert.created_at.desc())
        )
    )


def alert_for_token(session: Session, token: str, now: datetime) -> tuple[Alert, Staff] | None:
    """The alert and recipient a confirm-page token was sent with, while the link is valid.

    Only while the recipient is still active staff: a link in the phone of someone who has
    left (or whose phone is now someone else's) must not stop an escalation."""
    if not token or len(token) > 64:
        return None
    d = session.scalars(
        select(Delivery).where(Delivery.ack_token_hash == hash_token(token))
    ).first()
    if d is None or d.alert_id is None or d.message.staff_id is None:
        return None
    alert = session.get(Alert, d.alert_id)
    staff = session.get(Staff, d.message.staff_id)
    if alert is None or staff is None or not staff.active or now > alert.created_at + LINK_TTL:
        return None
    return alert, staff


@dataclass
class StaffReply:
    text: str
    outbound_ids: list[str] = field(default_factory=list)


def handle_staff_message(  # noqa: PLR0911 - one reply per case
    session: Session,
    vault: Vault,
    staff: Staff,
    school: School,
    body: str,
    now: datetime,
    via: str = "sms",
) -> StaffReply:
    """A text from a staff phone to `school`'s number: an ACK, or a hint. Caller commits.

    `via="spool"`: the text waited in the spool while the database was down; its answer went
    long ago, so a successful ACK is confirmed by an SMS of its own.
    """
    cmd = parse_ack(body)
    if cmd is None:
        return StaffReply(HINT)
    if cmd.digits is None:
        mine = open_alerts_for(session, staff, school)
        if not mine:
            return StaffReply("You have no open alerts here. Nothing changed.")
        if len(mine) > 1:
            listed = ", ".join(f"{a.tip.code} {wording.label(a)}" for a in mine[:5])
            return StaffReply(
                gsm.cut(
                    f"You have {len(mine)} open alerts: {listed}. Reply ACK and the "
                    "number, e.g. ACK " + mine[0].tip.code_digits + ".",
                    gsm.TWO_SEGMENTS,
                )
            )
        alert: Alert | None = mine[0]
    else:
        alert = alert_for_code(session, school, cmd.digits)
        if alert is None:
            return StaffReply(
                gsm.to_gsm7(
                    f"No alert T{cmd.digits} at {school.name}. Nothing changed. "
                    "Check the number, or reply ACK to list your open alerts."
                )
            )
    assert alert is not None  # noqa: S101 - both branches found one
    if alert.status != "open":
        return StaffReply(already_text(alert))
    if school not in staff.schools and not _was_paged(session, alert.id, staff):
        return StaffReply(f"{alert.tip.code} is not one of your school's alerts. Nothing changed.")
    result = acknowledge(session, vault, alert.id, staff, via, now)
    return StaffReply(result.reply, result.outbound_ids)


def _was_paged(session: Session, alert_id: str, staff: Staff) -> bool:
    return any(s.id == staff.id for s in _paged(session, alert_id))
