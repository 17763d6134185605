"""The dashboard's figures over time: tips per day, time to acknowledge per week, failed
deliveries, and the coming hours nobody is on duty.

Plain functions over a session, a login and a clock (no Flask), limited to the schools the
login may see. Only labels, counts and times: no tip text, no phone number. The web layer draws
them (`web/admin/charts`) and writes them as CSV (`csv_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from tipline.district import cache
from tipline.district.oncall import all_on_duty
from tipline.models import Alert, OutboundMessage, School, Tip, User
from tipline.staff.access import viewable, visible_schools
from tipline.triage import CATEGORIES, SEVERITIES

DAYS = 30  # tips and failed deliveries per day, this many days back, today included
WEEKS = 8  # time to acknowledge per week, this many weeks back, this week included
AHEAD_HOURS = 7 * 24  # coverage, this many hours ahead from the current one
CHANNELS = ("sms", "voice", "email")
# Final states in which a message reached nobody ("canceled" is a page an ack made unneeded).
FAILED = ("failed", "undelivered", "busy", "no-answer")
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Daily:
    """Counts per day (oldest first) for each name of a series, e.g. severity -> counts."""

    days: list[date]
    counts: dict[str, list[int]]

    def total(self) -> int:
        return sum(sum(values) for values in self.counts.values())


@dataclass(frozen=True)
class AckWeeks:
    """One school's alerts by the week they opened: minutes to acknowledge, p50 and p90."""

    school: str
    weeks: list[date]  # Mondays, oldest first
    p50: list[float | None]
    p90: list[float | None]
    acked: list[int]
    unacked: list[int]


@dataclass(frozen=True)
class Uncovered:
    """One school's coming hours (local start of each) in which nobody is on duty."""

    school: str
    timezone: str
    start: datetime  # local start of the first hour looked at
    hours: list[datetime] = field(default_factory=list)
    span: int = AHEAD_HOURS

    def grid(self) -> list[tuple[date, list[bool | None]]]:
        """Each local day the period touches, its 24 hours: True nobody on duty, False
        covered, None outside the period."""
        flagged = {(h.date(), h.hour) for h in self.hours}
        zone = ZoneInfo(self.timezone)
        first = self.start.astimezone(UTC)
        looked = {
            (local.date(), local.hour)
            for local in ((first + i * _HOUR).astimezone(zone) for i in range(self.span))
        }
        days = sorted({day for day, _hour in looked})
        return [
            (
                day,
                [((day, hour) in flagged) if (day, hour) in looked else None for hour in range(24)],
            )
            for day in days
        ]


@dataclass(frozen=True)
class Trends:
    timezone: str  # the zone the days and weeks are counted in
    now: datetime
    tips_by_severity: dict[str, Daily]  # per school name
    tips_by_category: dict[str, Daily]
    failed: dict[str, Daily]  # per school name, by channel
    ack: list[AckWeeks]
    uncovered: list[Uncovered]
    # FLOODS: the flood state (another change adds it) joins here as its own figure, e.g.

    def schools(self) -> list[str]:
        return list(self.tips_by_severity)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (a value that occurred), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def zone_for(schools: Sequence[School]) -> tzinfo:
    """The schools' common time zone, so that a day is the schools' day; UTC when they differ."""
    zones = {school.timezone for school in schools}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else UTC


def trends(session: Session, user: User, now: datetime) -> Trends:
    schools = visible_schools(session, user)
    zone = zone_for(schools)
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    monday = today - timedelta(days=today.weekday())
    weeks = [monday - timedelta(weeks=back) for back in range(WEEKS - 1, -1, -1)]
    since = datetime.combine(days[0], datetime.min.time(), zone).astimezone(UTC)
    weeks_since = datetime.combine(weeks[0], datetime.min.time(), zone).astimezone(UTC)
    names = {school.id: school.name for school in schools}
    # Only what the login may view is counted, as in its queue: a counselor's charts say
    # nothing of the weapon tips (or their alerts) that no policy pages a counselor for.
    window = select(Tip).where(Tip.school_id.in_(names), Tip.created_at >= min(since, weeks_since))
    seen = viewable(session, user, window)
    by_severity, by_category = _tips(session, seen, names, days, zone, since)
    return Trends(
        timezone=str(zone),
        now=now,
        tips_by_severity=by_severity,
        tips_by_category=by_category,
        failed=_failed(session, seen, names, days, zone, since),
        ack=[_ack_weeks(session, seen, school, weeks, zone, weeks_since) for school in schools],
        uncovered=[uncovered_hours(session, school, now) for school in schools],
    )


def _empty(names: Iterable[str], days: list[date], series: Sequence[str]) -> dict[str, Daily]:
    return {name: Daily(days, {s: [0] * len(days) for s in series}) for name in names}


def _tips(
    session: Session,
    seen: ColumnElement[bool],
    names: dict[int, str],
    days: list[date],
    zone: tzinfo,
    since: datetime,
) -> tuple[dict[str, Daily], dict[str, Daily]]:
    """Tips per school and day, by severity and by category (one pass over the window)."""
    by_severity = _empty(names.values(), days, SEVERITIES)
    by_category = _empty(names.values(), days, CATEGORIES)
    index = {day: i for i, day in enumerate(days)}
    rows = session.execute(
        select(Tip.school_id, Tip.severity, Tip.category, Tip.created_at).where(
            Tip.school_id.in_(names), Tip.created_at >= since, seen
        )
    )
    for school_id, severity, category, created_at in rows:
        i = index.get(created_at.astimezone(zone).date())
        if i is None:
            continue
        name = names[school_id]
        by_severity[name].counts.setdefault(severity, [0] * len(days))[i] += 1
        by_category[name].counts.setdefault(category, [0] * len(days))[i] += 1
    return by_severity, by_category


def _failed(
    session: Session,
    seen: ColumnElement[bool],
    names: dict[int, str],
    days: list[date],
    zone: tzinfo,
    since: datetime,
) -> dict[str, Daily]:
    """Messages about a school's tips that ended reaching nobody, per day they were queued."""
    found = _empty(names.values(), days, CHANNELS)
    index = {day: i for i, day in enumerate(days)}
    rows = session.execute(
        select(Tip.school_id, OutboundMessage.channel, OutboundMessage.created_at)
        .join(Tip, Tip.id == OutboundMessage.tip_id)
        .where(
            Tip.school_id.in_(names),
            OutboundMessage.created_at >= since,
            OutboundMessage.status.in_(FAILED),
            seen,
        )
    )
    for school_id, channel, created_at in rows:
        i = index.get(created_at.astimezone(zone).date())
        if i is not None:
            found[names[school_id]].counts.setdefault(channel, [0] * len(days))[i] += 1
    return found


def _ack_weeks(
    session: Session,
    seen: ColumnElement[bool],
    school: School,
    weeks: list[date],
    zone: tzinfo,
    since: datetime,
) -> AckWeeks:
    index = {week: i for i, week in enumerate(weeks)}
    minutes: list[list[float]] = [[] for _ in weeks]
    unacked = [0] * len(weeks)
    rows = session.execute(
        select(Alert.created_at, Alert.acked_at)
        .join(Tip, Tip.id == Alert.tip_id)
        .where(Alert.school_id == school.id, Alert.created_at >= since, seen)
    )
    for created_at, acked_at in rows:
        local = created_at.astimezone(zone).date()
        i = index.get(local - timedelta(days=local.weekday()))
        if i is None:
            continue
        if acked_at is None:
            unacked[i] += 1
        else:
            minutes[i].append(max(0.0, (acked_at - created_at).total_seconds() / 60))
    return AckWeeks(
        school=school.name,
        weeks=weeks,
        p50=[percentile(m, 50) for m in minutes],
        p90=[percentile(m, 90) for m in minutes],
        acked=[len(m) for m in minutes],
        unacked=unacked,
    )


def uncovered_hours(
    session: Session, school: School, now: datetime, hours: int = AHEAD_HOURS
) -> Uncovered:
    """The hours from the current one on in which nobody covers any duty at the school
    (shifts and overrides, as paging reads them; each hour judged at its middle)."""
    district = cache.current_district(session)
    zone = ZoneInfo(school.timezone)
    start = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    result = Uncovered(school.name, school.timezone, start, span=hours)
    if district.school(school.slug) is None:  # no longer in the configuration file
        return result
    overrides = cache.overrides_at(session, school.id, now)
    first = start.astimezone(UTC)
    for i in range(hours):
        hour = first + i * _HOUR
        if not all_on_duty(district, school.slug, hour + _HOUR / 2, overrides):
            result.hours.append(hour.astimezone(zone))
    return result


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def csv_rows(t: Trends) -> list[list[str]]:
    """Every number behind the charts, one per row: figure, school, period, series, value."""
    rows = [["figure", "school", "period", "series", "value"]]
    for figure, per_school in (
        ("tips_by_severity", t.tips_by_severity),
        ("tips_by_category", t.tips_by_category),
        ("failed_deliveries", t.failed),
    ):
        for school, daily in per_school.items():
            for series, counts in daily.counts.items():
                rows += [
                    [figure, school, day.isoformat(), series, str(n)]
                    for day, n in zip(daily.days, counts, strict=True)
                ]
    for ack in t.ack:
        for i, week in enumerate(ack.weeks):
            period = f"week of {week.isoformat()}"
            rows += [
                ["ack_minutes", ack.school, period, "p50", _number(ack.p50[i])],
                ["ack_minutes", ack.school, period, "p90", _number(ack.p90[i])],
                ["alerts", ack.school, period, "acked", str(ack.acked[i])],
                ["alerts", ack.school, period, "unacked", str(ack.unacked[i])],
            ]
    for gap in t.uncovered:
        rows += [
            ["nobody_on_duty", gap.school, hour.isoformat(timespec="minutes"), "hours", "1"]
            for hour in gap.hours
        ]
    return rows
