"""Temporary cover: who is on duty now and next at a school, and setting an override (someone
covers a duty from a start to an end, ahead of the shifts). Used by `tipline oncall` and the
staff page `/admin/oncall`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.district import cache
from tipline.district.config import ROLES, DistrictConfig
from tipline.district.oncall import OnDuty, Override, _duties, on_duty, shift_window
from tipline.errors import TiplineError
from tipline.models import OnCallOverride, School, Staff
from tipline.vault import audit

LOOKAHEAD = timedelta(days=8)  # how far "next" looks for a change of who is on duty
MAX_COVER = timedelta(days=60)  # an override longer than this is a roster change: the file


class CoverError(TiplineError):
    """An override that cannot be set (unknown staff, not at the school, bad times)."""


@dataclass(frozen=True)
class DutyNow:
    duty: str
    now: list[OnDuty]
    next_at: datetime | None  # when who covers the duty next changes (within LOOKAHEAD)
    next: list[OnDuty]


@dataclass(frozen=True)
class SchoolDuty:
    slug: str
    name: str
    timezone: str
    fallback: tuple[str, ...]
    duties: list[DutyNow]
    staff: dict[str, str]  # key -> name, of the staff who work at the school (for the page)


def _changes(
    district: DistrictConfig, slug: str, tz: ZoneInfo, now: datetime, overrides: list[Override]
) -> list[datetime]:
    """Every instant after `now` (within LOOKAHEAD) at which a shift or override starts or ends."""
    points: set[datetime] = set()
    today = now.astimezone(tz).date()
    for shift in district.shifts:
        if shift.school != slug:
            continue
        for back in range(-2, LOOKAHEAD.days + 1):
            start, end = shift_window(shift, today + timedelta(days=back), tz)
            points |= {start, end}
    for o in overrides:
        points |= {o.start.astimezone(UTC), o.end.astimezone(UTC)}
    return sorted(p for p in points if now < p <= now + LOOKAHEAD)


def school_duty(
    district: DistrictConfig, slug: str, now: datetime, overrides: list[Override]
) -> SchoolDuty:
    """Who covers each duty at the school now, and who next (at the next change)."""
    school = district.school(slug)
    if school is None:
        raise CoverError(f"unknown school {slug!r}")
    tz = ZoneInfo(school.timezone)
    changes = _changes(district, slug, tz, now, overrides)
    duties: list[DutyNow] = []
    for duty in _duties(district, school, overrides):
        current = on_duty(district, slug, duty, now, overrides)
        who = {p.staff for p in current}
        next_at, upcoming = None, []
        for point in changes:
            later = on_duty(district, slug, duty, point, overrides)
            if {p.staff for p in later} != who:
                next_at, upcoming = point, later
                break
        duties.append(DutyNow(duty, current, next_at, upcoming))
    staff = {m.id: m.name for m in district.staff if slug in m.schools}
    return SchoolDuty(slug, school.name, school.timezone, tuple(school.fallback), duties, staff)


def on_duty_at(session: Session, slugs: list[str], now: datetime) -> list[SchoolDuty]:
    """`school_duty` for each school, with its overrides from the database."""
    district = cache.current_district(session)
    found = []
    for slug in slugs:
        school_id = session.scalar(select(School.id).where(School.slug == slug, School.active))
        if school_id is None:
            continue
        found.append(school_duty(district, slug, now, cache.overrides_at(session, school_id, now)))
    return found


def add_override(
    session: Session,
    *,
    school: str,
    duty: str,
    staff: str,
    start: datetime,
    end: datetime,
    created_by: str,
) -> OnCallOverride:
    """STAFF covers DUTY at SCHOOL from `start` until `end` (aware; end exclusive), ahead of
    the shifts. Audited. The caller commits."""
    found = session.scalars(select(School).where(School.slug == school, School.active)).first()
    if found is None:
        raise CoverError(f"unknown school {school!r}")
    if duty not in ROLES:
        raise CoverError(f"unknown duty {duty!r}: one of {', '.join(ROLES)}")
    member = session.scalars(select(Staff).where(Staff.key == staff, Staff.active)).first()
    if member is None:
        raise CoverError(f"unknown staff id {staff!r}")
    if found not in member.schools:
        raise CoverError(f"{staff} does not work at {school}")
    if start.tzinfo is None or end.tzinfo is None:
        raise CoverError("start and end need a time zone")
    if end <= start:
        raise CoverError("the end must be after the start")
    if end - start > MAX_COVER:
        raise CoverError("cover longer than 60 days belongs in the configuration file's shifts")
    row = OnCallOverride(
        school_id=found.id,
        staff_id=member.id,
        duty=duty,
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        created_by=created_by[:80],
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        created_by[:80],
        "oncall.override",
        None,
        school=school,
        duty=duty,
        staff=staff,
        start=row.start.isoformat(),
        end=row.end.isoformat(),
    )
    return row
