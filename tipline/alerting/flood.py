"""Flood mode: past a school's rate of new tips, staff get a digest a minute, not a page a tip.

A prank flood (hundreds of web posts, each naming another student, weapon and place) would
otherwise page the SRO hundreds of times and bury the one real threat among them. Past the
school's rate (`FloodConfig`: by default 6 tips from new web sessions, or 20 new tips of any
channel, within 10 s) the school enters flood mode: staff are told by SMS, every tip is still
stored, placed in its incident and shown in the queue, and instead of a page per tip the
people a critical tip would page get one digest every minute. A digest counts the tips since
the last one and names, by code, up to `MAX_CODES` critical tips that would have paged on
their own (they add a person, a weapon or a place, or say it is happening now or someone is
hurt), "now" and "hurt" first; the rest are counted. Once the rate has stayed under both
thresholds for the quiet period the next digest says the flood ended; an admin can end it
sooner (`end_flood`). Thirty distinct critical texts at one a second stay under the default
rate and page one by one.

The rate is counted in the database, from the tips' arrival times, under the school's lock
that routing already holds (see `routing.route_tip`): no Redis counter to lose, and no IP
address anywhere; with Redis down, tips the sweeper routes late still count when they
arrived (`over_rate`). After a flood ends, only tips routed after its end count toward the
next one.

Digests run as a JSON rq job (`JobKind.FLOOD_DIGEST`, arguments: the flood id and the number
of digests sent so far) and, if Redis is gone, from the sweeper; a compare-and-set on that
number makes a duplicate, late or early run send nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tipline.db import new_id
from tipline.district.cache import current_district, overrides_at
from tipline.district.config import FloodConfig
from tipline.district.oncall import resolve_targets
from tipline.errors import UnknownSchool
from tipline.models import Alert, Flood, FloodTip, Incident, IncidentTip, School, Staff, Tip
from tipline.outbox.messages import queue_outbound
from tipline.platform import queueing
from tipline.platform.services import ALERTS_QUEUE, JobKind, Services
from tipline.triage import CATEGORIES
from tipline.vault import audit
from tipline.vault.keyring import Vault

log = logging.getLogger(__name__)

MAX_CODES = 20  # codes named in one digest; the rest are counted
SLACK = timedelta(seconds=1)  # rq schedules in whole seconds: a timer may fire this early
QUEUE_PATH = "/admin/"


@dataclass
class FloodRun:
    """What routing, a digest or an end did; the caller sends `outbound_ids` after commit
    and schedules the digest numbered `digests` for `digest_at`."""

    flood_id: str | None = None
    held: bool = False
    started: bool = False
    ended: bool = False
    outbound_ids: list[str] = field(default_factory=list)
    digest_at: datetime | None = None
    digests: int = 0


def current(session: Session, school_id: int) -> Flood | None:
    """The school's open flood, if any."""
    return session.scalars(
        select(Flood)
        .where(Flood.school_id == school_id, Flood.ended_at.is_(None))
        .order_by(Flood.started_at.desc())
    ).first()


def over_rate(session: Session, school: School, now: datetime, arrived: datetime) -> str | None:
    """Why the school's rate of new tips is at or past its flood level, or None.

    A tip's arrival is the earlier of its storing and its routing (`now` for the tip being
    routed): tips the sweeper routes late, after a Redis outage, count when they arrived, and
    tips stored on another clock (a test's) when they were routed. Counts the tips that
    arrived within the window before `arrived`, the one being routed included, routed after
    the school's last flood ended.
    """
    cfg = FloodConfig.from_row(school.flood)
    arrived = min(arrived, now)
    start = arrived - cfg.window
    last_end = session.scalar(select(func.max(Flood.ended_at)).where(Flood.school_id == school.id))
    arrival = _arrival()
    conditions = [
        Tip.routed_at > start,  # implied by the arrival's bound; lets the index serve
        Tip.routed_at <= now,
        Tip.school_id == school.id,
        arrival > start,
        arrival <= arrived,
    ]
    if last_end is not None:
        conditions.append(Tip.routed_at > last_end)
    fresh_web = case((and_(Tip.source == "web", Tip.fresh_session), 1), else_=0)
    total, fresh = session.execute(
        select(func.count(), func.coalesce(func.sum(fresh_web), 0)).where(*conditions)
    ).one()
    seconds = int(cfg.window.total_seconds())
    if int(fresh) >= cfg.web_sessions:
        return f"{int(fresh)} tips from new web sessions in {seconds}s"
    if int(total) >= cfg.tips:
        return f"{int(total)} new tips in {seconds}s"
    return None


def _arrival() -> ColumnElement[datetime]:
    """A tip's arrival: the earlier of its storing and its routing (see `over_rate`)."""
    return case((Tip.created_at < Tip.routed_at, Tip.created_at), else_=Tip.routed_at)


def hold(
    session: Session,
    vault: Vault,
    tip: Tip,
    now: datetime,
    *,
    would_page: bool,
    signals: tuple[str, ...],
    public_url: str,
) -> FloodRun | None:
    """Hold the tip for the school's flood digest, starting a flood when the rate is past its
    level; None when the school is not flooded (the tip pages as usual). Caller commits.

    `would_page`: the tip would have paged on its own (see `incidents.place_tip`); a
    critical one is named in the digest. `signals`: "now" and "hurt" as the tip says them.
    """
    school = tip.school
    flood = current(session, school.id)
    # A follow-up that routes its tip again arrived with its last message, not the tip.
    reason = over_rate(session, school, now, tip.last_activity_at or tip.created_at)
    run = FloodRun()
    if flood is None:
        if reason is None:
            return None
        arrived = min(tip.last_activity_at or tip.created_at, now)
        flood = _start(session, vault, school, now, arrived, reason, public_url, run)
    elif reason is not None:
        flood.last_over_at = now
    critical = tip.severity == "critical"
    row = session.get(FloodTip, (flood.id, tip.id))
    if row is None:
        row = FloodTip(flood_id=flood.id, tip_id=tip.id, added_at=now, named=False, urgency=0)
        session.add(row)
        flood.tips += 1
        flood.critical += int(critical)
    elif critical and not row.critical:
        flood.critical += 1
    # A follow-up that routes the tip again puts it into the next digest (again).
    row.critical = row.critical or critical
    row.named = row.named or (critical and would_page)
    row.urgency = max(row.urgency or 0, len({"now", "hurt"} & set(signals)))
    row.digest = None
    run.flood_id, run.held = flood.id, True
    run.digest_at, run.digests = flood.next_digest_at, flood.digests
    return run


def _start(
    session: Session,
    vault: Vault,
    school: School,
    now: datetime,
    arrived: datetime,
    reason: str,
    public_url: str,
    run: FloodRun,
) -> Flood:
    cfg = FloodConfig.from_row(school.flood)
    flood = Flood(
        school_id=school.id,
        started_at=now,
        reason=reason[:120],
        last_over_at=now,
        next_digest_at=now + cfg.digest,
        digests=0,
        tips=0,
        critical=0,
    )
    session.add(flood)
    session.flush()
    _take_over(session, flood, arrived - cfg.window, now)
    every = int(cfg.digest.total_seconds())
    text = (
        f"Flood mode at {school.name}: {reason}. Tips are not paged one by one now; a digest "
        f"every {every}s names the critical ones. Every tip is in the queue: "
        f"{public_url}{QUEUE_PATH}"
    )
    run.outbound_ids += _tell(session, vault, school, text, "flood started", now)
    run.started = True
    audit.record(session, "system", "flood.started", None, school=school.slug, reason=reason)
    log.warning("flood mode at %s: %s", school.slug, reason)
    return flood


def _take_over(session: Session, flood: Flood, since: datetime, now: datetime) -> None:
    """The tips routed in the window before the flood started (the ones that made it) go into
    its first digest too, named when critical and they paged; and the alerts they opened,
    which paged their first step already, stop escalating (pages already queued still go out,
    and an ACK still acknowledges them). Without this, each prank that came before the flood
    level would page on, step after step, through the flood."""
    rows = session.execute(
        select(Tip.id, Tip.severity, Tip.routed_at, IncidentTip.paged, Incident.signals)
        .outerjoin(IncidentTip, IncidentTip.tip_id == Tip.id)
        .outerjoin(Incident, Incident.id == IncidentTip.incident_id)
        .where(
            Tip.school_id == flood.school_id,
            Tip.routed_at > since,
            Tip.routed_at <= now,
            _arrival() > since,
        )
    ).all()
    for tip_id, severity, routed_at, paged, signals in rows:
        if session.get(FloodTip, (flood.id, tip_id)) is not None:
            continue
        critical = severity == "critical"
        session.add(
            FloodTip(
                flood_id=flood.id,
                tip_id=tip_id,
                added_at=routed_at or now,
                critical=critical,
                named=critical and bool(paged),
                urgency=len({"now", "hurt"} & set(signals or ())),
            )
        )
        flood.tips += 1
        flood.critical += int(critical)
    alerts = session.scalars(
        select(Alert).where(
            Alert.school_id == flood.school_id,
            Alert.status == "open",
            Alert.created_at > since,
            Alert.next_at.is_not(None),
        )
    ).all()
    for alert in alerts:
        alert.next_at, alert.token = None, new_id()  # its timers go stale
        incident = session.get(Incident, alert.incident_id) if alert.incident_id else None
        if incident is not None and incident.alert_id == alert.id:
            # A later tip of the incident opens an escalation of its own, from its first step,
            # rather than taking over this stopped one.
            incident.alert_id = None
        audit.record(session, "system", "alert.flood", alert.tip_id, alert=alert.id, flood=flood.id)


def run_digest(
    session: Session, vault: Vault, flood_id: str, digests: int, now: datetime, *, public_url: str
) -> FloodRun:
    """Send the flood's digest number `digests + 1` if it is due and not sent yet, and end the
    flood when the school has been quiet long enough. Commits.

    Idempotent: the digest count moves on by compare-and-set, so of a job, its duplicate and
    the sweeper only one sends it. An early run only says when to come back.
    """
    run = FloodRun(flood_id=flood_id)
    flood = session.scalars(
        select(Flood)
        .where(Flood.id == flood_id)
        .with_for_update(of=Flood)
        .execution_options(populate_existing=True)
    ).first()
    if (
        flood is None
        or flood.ended_at is not None
        or flood.digests != digests
        or flood.next_digest_at is None
    ):
        session.rollback()
        return run
    if flood.next_digest_at > now + SLACK:
        run.digest_at, run.digests = flood.next_digest_at, digests
        session.rollback()
        return run
    cfg = FloodConfig.from_row(flood.school.flood)
    quiet = now - flood.last_over_at >= cfg.quiet
    next_at = None if quiet else now + cfg.digest
    moved = session.execute(
        update(Flood)
        .where(Flood.id == flood_id, Flood.digests == digests, Flood.ended_at.is_(None))
        .values(
            digests=digests + 1,
            next_digest_at=next_at,
            ended_at=now if quiet else None,
            ended_by="quiet" if quiet else None,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return run
    text = _digest_text(session, flood, digests + 1, now, public_url)
    if quiet:
        minutes = max(1, int(cfg.quiet.total_seconds()) // 60)
        ended = f"Flood mode at {flood.school.name} ended (quiet for {minutes} min); pages are "
        ended += "sent one by one again." + _unacked_note(session, flood)
        text = f"{text} {ended}" if text else ended
        run.ended = True
        audit.record(session, "system", "flood.ended", None, school=flood.school.slug, by="quiet")
        log.info("flood mode at %s ended: quiet", flood.school.slug)
    if text:
        run.outbound_ids = _tell(session, vault, flood.school, text, "flood digest", now)
    session.commit()
    run.digest_at, run.digests = next_at, digests + 1
    return run


def end_flood(
    session: Session, vault: Vault, flood_id: str, now: datetime, *, by: str, public_url: str
) -> FloodRun | None:
    """An admin ends the flood now: the tips not yet in a digest are reported with the end
    notice, and from now on tips page one by one. None when it was not open. Commits.

    Audited by the caller's `by` (who ended it). The school enters flood mode again only
    when the tips routed after this moment pass its rate.
    """
    flood = session.scalars(
        select(Flood)
        .where(Flood.id == flood_id)
        .with_for_update(of=Flood)
        .execution_options(populate_existing=True)
    ).first()
    if flood is None or flood.ended_at is not None:
        session.rollback()
        return None
    number = flood.digests + 1
    flood.digests, flood.next_digest_at = number, None
    flood.ended_at, flood.ended_by = now, by[:120]
    text = _digest_text(session, flood, number, now, public_url)
    ended = f"Flood mode at {flood.school.name} was ended by an admin; pages are sent one by one "
    ended += "again." + _unacked_note(session, flood)
    run = FloodRun(flood_id=flood.id, ended=True)
    run.outbound_ids = _tell(
        session, vault, flood.school, f"{text} {ended}" if text else ended, "flood ended", now
    )
    audit.record(session, by, "flood.ended", None, school=flood.school.slug, flood=flood.id)
    session.commit()
    log.info("flood mode at %s ended by an admin", flood.school.slug)
    return run


def _digest_text(
    session: Session, flood: Flood, number: int, now: datetime, public_url: str
) -> str:
    """Mark the tips waiting for a digest as reported by digest `number`; its text, or "" when
    none waited."""
    rows = list(
        session.execute(
            select(FloodTip, Tip.code)
            .join(Tip, Tip.id == FloodTip.tip_id)
            .where(FloodTip.flood_id == flood.id, FloodTip.digest.is_(None))
            .order_by(FloodTip.added_at, Tip.code)
        )
    )
    if not rows:
        return ""
    for row, _code in rows:
        row.digest = number
    previous = flood.started_at if number == 1 else min(r.added_at for r, _ in rows)
    minutes = max(1, round((now - previous).total_seconds() / 60))
    span = "the last minute" if minutes <= 1 else f"the last {minutes} minutes"
    critical = [(r, code) for r, code in rows if r.critical]
    named = sorted(
        ((r, code) for r, code in critical if r.named), key=lambda rc: -(rc[0].urgency or 0)
    )
    tips = f"{len(rows)} new tip{'s' if len(rows) != 1 else ''}"
    text = f"{tips} at {flood.school.name} in {span}, {len(critical)} critical"
    if named:
        shown = [_label(code, r.urgency or 0) for r, code in named[:MAX_CODES]]
        text += ": " + ", ".join(shown)
        if len(named) > MAX_CODES:
            text += f" and {len(named) - MAX_CODES} more"
    return f"{text}. Queue: {public_url}{QUEUE_PATH}"


def _unacked_note(session: Session, flood: Flood) -> str:
    """The end notice names the critical alerts the flood stopped (`_take_over`) that nobody
    acknowledged: they do not escalate again (a prank burst must not page on after every
    flood), so the people told see their codes once more, most urgent first."""
    codes = session.scalars(
        select(Tip.code)
        .join(Alert, Alert.tip_id == Tip.id)
        .join(FloodTip, and_(FloodTip.tip_id == Tip.id, FloodTip.flood_id == flood.id))
        .where(Alert.status == "open", Alert.next_at.is_(None), Alert.severity == "critical")
        .order_by(FloodTip.urgency.desc(), Tip.code)
        .limit(MAX_CODES)
    ).all()
    if not codes:
        return ""
    return " Still not acknowledged: " + ", ".join(codes) + " (reply ACK and the code)."


def _label(code: str, urgency: int) -> str:
    return f"{code} (now, hurt)" if urgency >= 2 else f"{code} (now or hurt)" if urgency else code


def _tell(
    session: Session, vault: Vault, school: School, text: str, summary: str, now: datetime
) -> list[str]:
    """Queue `text` by SMS to the staff a critical tip at `school` pages first and to its
    admins (who can end a flood); their ids."""
    targets: list[str] = ["role:admin"]
    district = current_district(session)
    for policy in district.policies:
        if any(policy.matches(school.slug, "critical", c) for c in CATEGORIES) and policy.steps:
            targets += [t for t in policy.steps[0].notify if t not in targets]
    try:
        overrides = overrides_at(session, school.id, now)
        found = resolve_targets(district, school.slug, targets, now, overrides)
        if not found:
            found = resolve_targets(district, school.slug, list(school.fallback), now, overrides)
    except UnknownSchool:
        found = []
    keys = [r.staff for r in found]
    staff = session.scalars(select(Staff).where(Staff.key.in_(keys), Staff.active)).all()
    ids = []
    for member in sorted(staff, key=lambda s: keys.index(s.key)):
        if not member.phone:
            continue
        msg = queue_outbound(
            session,
            vault,
            channel="sms",
            purpose="notice",
            to_label=member.key,
            summary=f"{summary} at {school.slug}",
            body=text,
            now=now,
            staff_id=member.id,
            critical=True,
            from_number=school.sms_number,
        )
        ids.append(msg.id)
    if not ids:
        log.error("flood at %s: nobody to tell", school.slug)
    return ids


def due(session: Session, now: datetime, grace: timedelta) -> list[tuple[str, int]]:
    """(flood id, digests sent) of open floods whose digest is overdue by more than `grace`."""
    rows = session.execute(
        select(Flood.id, Flood.digests).where(
            Flood.ended_at.is_(None), Flood.next_digest_at <= now - grace
        )
    ).all()
    return [(str(f), int(n)) for f, n in rows]


def enqueue_digest(svc: Services, flood_id: str, digests: int, at: datetime) -> bool:
    """Schedule the flood's next digest on rq; False when Redis is down (the sweeper runs it)."""
    return queueing.attempt(
        svc,
        lambda: svc.queue(ALERTS_QUEUE).enqueue_at(
            at,
            svc.job(JobKind.FLOOD_DIGEST),
            flood_id,
            digests,
            job_id=f"flood-{flood_id}-{digests}",
            result_ttl=0,
            failure_ttl=86400,
        ),
        f"flood {flood_id}'s digest waits for the sweeper",
    )
