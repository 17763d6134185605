"""Escalation: run each step of an alert exactly once, on time, whatever happens to Redis.

The pattern is Grafana OnCall's, made to hold on SQLite too. An alert row carries its policy
as it was when it fired, the next (round, step), its deadline and a token. Whoever runs a step
(the timer job, the sweeper, the routing job) must, in one transaction:

1. read the alert under a row lock (PostgreSQL; SQLite ignores FOR UPDATE) and find it open,
   due, and carrying the caller's token;
2. move it on with a compare-and-set UPDATE on (id, token, status, round, step), giving it a
   new token and deadline: of two callers only one updates a row;
3. insert the AlertStep (alert, round, step): a unique key, so even a caller that somehow got
   past 2 cannot commit a second execution;
4. add the step's messages to the outbox, and commit. Only then are send jobs and the next
   timer enqueued; if that never happens, the sweeper finds the overdue deadline or the owed
   messages in the database.

A timer that fires twice, late, or after an ack therefore sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from tipline.alerting.acks import new_ack_token
from tipline.alerting.wording import (
    email_text,
    reopened_note,
    sms_text,
    summary,
    tip_count,
    voice_summary,
)
from tipline.db import new_id
from tipline.district.cache import current_district, overrides_at
from tipline.district.config import CHANNELS, DistrictConfig, StepConfig
from tipline.district.oncall import match_policy, recipients_for_step
from tipline.district.sync import policy_steps
from tipline.errors import UnknownSchool
from tipline.models import Alert, AlertStep, AuditEvent, OutboundMessage, Staff, Tip
from tipline.outbox import forget
from tipline.outbox.messages import mark_skipped, queue_outbound
from tipline.platform import queueing
from tipline.platform.services import ALERTS_QUEUE, JobKind, Services
from tipline.vault import audit
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)

FALLBACK_WAIT = 300
PAGED_OFFLINE = "tip.paged_offline"  # audit action: the spool paged these staff already
# rq schedules in whole seconds (it truncates), so a timer may fire up to 1 s before its
# deadline; that early it still runs its step rather than waiting for another round trip.
SLACK = timedelta(seconds=1)


@dataclass
class StepRun:
    """What `run_step` did; the caller enqueues `outbound_ids` and the timer for `next_at`."""

    alert_id: str
    executed: bool = False
    outbound_ids: list[str] = field(default_factory=list)
    urgent: list[str] = field(default_factory=list)  # the SMS pages: sent ahead of the queue
    next_at: datetime | None = None
    token: str | None = None
    early: bool = False


@dataclass(frozen=True)
class Position:
    """Where a replaced alert's escalation stood: the next (round, step) and when, and the
    step it ran last (its people are the ones paged about the incident now)."""

    policy: str
    round: int
    step: int
    next_at: datetime | None
    last: tuple[int, int] | None

    def continued_by(self, alert: Alert) -> bool:
        """Whether `alert` (its replacement) keeps this position: same policy, a step ran."""
        return self.last is not None and self.policy == alert.policy.get("name")


def position_of(session: Session, alert: Alert) -> Position:
    last = session.execute(
        select(AlertStep.round, AlertStep.step)
        .where(AlertStep.alert_id == alert.id)
        .order_by(AlertStep.round.desc(), AlertStep.step.desc())
        .limit(1)
    ).first()
    return Position(
        str(alert.policy.get("name")),
        alert.round,
        alert.step,
        alert.next_at,
        (int(last[0]), int(last[1])) if last else None,
    )


# -- alerts ------------------------------------------------------------------------------------


def open_alert(
    session: Session,
    district: DistrictConfig,
    *,
    tip: Tip,
    severity: str,
    category: str,
    now: datetime,
    incident_id: str | None = None,
    reason: str = "new tip",
    replaces: Position | None = None,
) -> Alert:
    """Add an alert due now, with a snapshot of the first matching policy (or the fallback).

    An alert that `replaces` one of the same policy takes over its position and deadline, so
    a stream of additions to an incident cannot hold escalation at its first step; under
    another policy (the incident became more severe) it is a new escalation from step 0.
    """
    school = tip.school
    policy = match_policy(district, school.slug, severity, category)
    if policy is None:
        log.warning(
            "no policy matches %s %s at %s (tip %s): paging the school's fallback %s",
            severity,
            category,
            school.slug,
            tip.code,
            ", ".join(school.fallback),
        )
        channels = ["sms", "voice"] if severity == "critical" else ["sms"]
        snapshot: dict[str, Any] = {
            "name": "(fallback)",
            "repeat": 0,
            "steps": [
                {"notify": list(school.fallback), "channels": channels, "wait": FALLBACK_WAIT}
            ],
        }
    else:
        snapshot = {"name": policy.name, "repeat": policy.repeat, "steps": policy_steps(policy)}
    alert = Alert(
        id=new_id(),
        school_id=school.id,
        tip_id=tip.id,
        incident_id=incident_id,
        severity=severity,
        category=category,
        policy=snapshot,
        status="open",
        round=0,
        step=0,
        next_at=now,
        token=new_id(),
        reason=reason[:120],
        created_at=now,
    )
    if replaces is not None and replaces.continued_by(alert):
        alert.round, alert.step, alert.next_at = replaces.round, replaces.step, replaces.next_at
    session.add(alert)
    return alert


def page_update(
    session: Session,
    vault: Vault,
    alert: Alert,
    at: tuple[int, int],
    now: datetime,
    *,
    public_url: str,
) -> StepRun:
    """Page the people of step `at` (the replaced alert's last) about the new alert, now,
    without moving its position or deadline; the caller then enqueues the sends and the timer.

    Runs in the routing transaction that opened the alert, so it cannot run twice: the
    routing is idempotent and (alert, round, step) is unique.
    """
    row = AlertStep(
        alert_id=alert.id,
        round=at[0],
        step=at[1],
        due_at=now,
        executed_at=now,
        executed_by="update",
        recipients=[],
    )
    session.add(row)
    session.flush()
    ids, names, fallback = _page(session, vault, alert, at, now, public_url)
    row.recipients, row.used_fallback = names, fallback
    audit.record(
        session,
        "system",
        "alert.step",
        alert.tip_id,
        alert=alert.id,
        round=at[0],
        step=at[1],
        recipients=names,
        late_s=0.0,
    )
    session.commit()
    log.info(
        "alert %s %s round %d step %d paged %s again (an update; the next step stays due %s)",
        alert.tip.code,
        alert.school.slug,
        *at,
        ", ".join(names) or "nobody",
        alert.next_at.isoformat() if alert.next_at else "never",
    )
    result = StepRun(alert.id, executed=True, outbound_ids=[i for i, _ in ids])
    result.urgent = [i for i, channel in ids if channel == "sms"]
    result.next_at, result.token = alert.next_at, (alert.token if alert.next_at else None)
    return result


def _next(alert: Alert, now: datetime) -> tuple[int, int, datetime | None]:
    steps = alert.policy["steps"]
    wait = timedelta(seconds=int(steps[alert.step]["wait"]))
    if alert.step + 1 < len(steps):
        return alert.round, alert.step + 1, now + wait
    if alert.round < int(alert.policy.get("repeat", 0)):
        return alert.round + 1, 0, now + wait
    return alert.round, len(steps), None  # the chain is over: nothing more is ever sent


def run_step(
    session: Session,
    vault: Vault,
    alert_id: str,
    token: str,
    now: datetime,
    *,
    public_url: str,
    executed_by: str = "job",
) -> StepRun:
    """Run the alert's due step if `token` is still its token; see the module docstring."""
    result = StepRun(alert_id)
    alert = session.scalars(
        select(Alert)
        .where(Alert.id == alert_id)
        .with_for_update(of=Alert)
        .execution_options(populate_existing=True)
    ).first()
    if alert is None or alert.status != "open" or alert.token != token or alert.next_at is None:
        session.rollback()
        return result
    if alert.next_at > now + SLACK:
        result.early, result.next_at, result.token = True, alert.next_at, token
        session.rollback()
        return result
    r, s, due = alert.round, alert.step, alert.next_at
    nr, ns, next_at = _next(alert, now)
    new_token = new_id()
    moved = session.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.token == token,
            Alert.status == "open",
            Alert.round == r,
            Alert.step == s,
        )
        .values(token=new_token, round=nr, step=ns, next_at=next_at)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return result
    row = AlertStep(
        alert_id=alert_id,
        round=r,
        step=s,
        due_at=due,
        executed_at=now,
        executed_by=executed_by,
        recipients=[],
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        log.info("alert %s round %d step %d already ran; nothing sent", alert_id, r, s)
        return result
    ids, names, fallback = _page(session, vault, alert, (r, s), now, public_url)
    result.urgent = [i for i, channel in ids if channel == "sms"]
    row.recipients, row.used_fallback = names, fallback
    audit.record(
        session,
        "system",
        "alert.step",
        alert.tip_id,
        alert=alert_id,
        round=r,
        step=s,
        recipients=names,
        late_s=round((now - due).total_seconds(), 1),
    )
    code, slug = alert.tip.code, alert.school.slug  # read before commit expires them
    session.commit()
    log.info(
        "alert %s %s round %d step %d paged %s (%.1fs after due)",
        code,
        slug,
        r,
        s,
        ", ".join(names) or "nobody",
        (now - due).total_seconds(),
    )
    result.executed, result.outbound_ids = True, [i for i, _ in ids]
    result.next_at, result.token = next_at, (new_token if next_at else None)
    return result


def _page(
    session: Session,
    vault: Vault,
    alert: Alert,
    at: tuple[int, int],
    now: datetime,
    public_url: str,
) -> tuple[list[tuple[str, str]], list[str], bool]:
    """Queue the step's messages: every channel at once, SMS first (fastest to arrive)."""
    raw = alert.policy["steps"][at[1]]
    step = StepConfig(tuple(raw["notify"]), tuple(raw["channels"]), timedelta(0))
    try:
        found, fallback = recipients_for_step(
            current_district(session),
            alert.school.slug,
            step,
            now,
            overrides_at(session, alert.school_id, now),
        )
    except UnknownSchool:
        found, fallback = [], False
    if fallback:
        log.warning(
            "alert %s: %s reaches nobody now; paging the fallback",
            alert.tip.code,
            ", ".join(step.notify),
        )
    if not found:
        log.error(
            "alert %s round %d step %d: nobody to page at %s",
            alert.tip.code,
            *at,
            alert.school.slug,
        )
    staff = {
        s.key: s
        for s in session.scalars(
            select(Staff)
            .where(Staff.key.in_([r.staff for r in found]))
            .options(lazyload(Staff.schools))
        )
    }
    count = tip_count(session, alert)
    note = reopened_note(session, alert)
    text = None
    if alert.school.alert_text != "link":
        text = vault.get_text(alert.tip, "body") if alert.tip.data_key else None
    ids: list[tuple[str, str]] = []
    offline = _paged_offline(session, alert.tip_id) if at == (0, 0) else {}
    for channel in (c for c in CHANNELS if c in step.channels):
        for recipient in found:
            member = staff.get(recipient.staff)
            if member is None or not member.active:
                continue
            token, token_hash = new_ack_token() if channel != "voice" else ("", None)
            link = f"{public_url}/ack/{token}"
            body: str | None
            if channel == "sms":
                body = sms_text(alert, count, text, link, note)
                line = summary(alert, count, note)
            elif channel == "voice":
                body, line = None, voice_summary(alert)
            else:
                body, line = email_text(alert, count, text, link), summary(alert, count, note)
            msg = queue_outbound(
                session,
                vault,
                channel=channel,
                purpose="alert",
                to_label=member.key,
                summary=line,
                body=body,
                now=now,
                tip_id=alert.tip_id,
                staff_id=member.id,
                alert=alert,
                round_step=at,
                critical=alert.severity == "critical",
                from_number=alert.school.sms_number,
                ack_token_hash=token_hash,
            )
            address = member.email if channel == "email" else member.phone
            page = offline.get(member.key) if channel == "sms" else None
            if _to_send(session, msg, channel, address, page, now):
                ids.append((msg.id, channel))
    return ids, [r.staff for r in found], fallback


def paged_offline(session: Session, tip_id: str) -> bool:
    """Whether the spool paged someone about this tip while the database was down."""
    return bool(_paged_offline(session, tip_id))


def _paged_offline(session: Session, tip_id: str) -> dict[str, dict[str, Any]]:
    """Staff key -> the SMS page the spool sent them about this tip while the database was
    down (`tipline.intake.outage`): the first step records it instead of paging them again."""
    details = session.scalars(
        select(AuditEvent.detail).where(
            AuditEvent.tip_id == tip_id, AuditEvent.action == PAGED_OFFLINE
        )
    ).all()
    return {
        str(page["staff"]): page
        for detail in details
        for page in detail.get("pages", [])
        if isinstance(page, dict) and page.get("staff")
    }


def _to_send(
    session: Session,
    msg: OutboundMessage,
    channel: str,
    address: str | None,
    page: dict[str, Any] | None,
    now: datetime,
) -> bool:
    """Whether `msg` still has to go out: not when it went during the outage, or cannot go."""
    if page is not None:
        _already_sent(session, msg, page, now)
        return False
    if not address:
        mark_skipped(msg, f"no {'email' if channel == 'email' else 'phone'}", now)
        return False
    return True


def _already_sent(
    session: Session, msg: OutboundMessage, page: dict[str, Any], now: datetime
) -> None:
    """The page went out during the outage: recorded as sent (an ACK from its recipient
    counts as theirs), with Twilio's SID for its status and deletion; not sent again."""
    sid = page.get("sid") or None
    msg.status = "sent" if sid else "console"
    msg.provider_sid = sid
    msg.attempts = 1
    sent_at = page.get("at")
    msg.sent_at = datetime.fromisoformat(sent_at) if isinstance(sent_at, str) else now
    msg.updated_at = now
    forget.outbound(session, msg.id, "sms", sid, now)


def due(
    session: Session, now: datetime, grace: timedelta, limit: int = 100
) -> list[tuple[str, str]]:
    """(alert id, token) of open alerts whose next step is overdue by more than `grace`."""
    rows = session.execute(
        select(Alert.id, Alert.token)
        .where(Alert.status == "open", Alert.next_at <= now - grace)
        .order_by(Alert.next_at)
        .limit(limit)
    ).all()
    return [(str(a), str(t)) for a, t in rows]


def enqueue_timer(svc: Services, alert_id: str, token: str, at: datetime) -> bool:
    """Schedule the alert's next step on rq; False when Redis is down (the sweeper runs it)."""
    return queueing.attempt(
        svc,
        lambda: svc.queue(ALERTS_QUEUE).enqueue_at(
            at,
            svc.job(JobKind.ESCALATE),
            alert_id,
            token,
            job_id=f"esc-{alert_id}-{token}-{new_id()[:6]}",
            result_ttl=0,
            failure_ttl=86400,
            at_front=True,  # a due step goes ahead of jobs queued meanwhile
        ),
        f"alert {alert_id}'s next step waits for the sweeper",
    )
