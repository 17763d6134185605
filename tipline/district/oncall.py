"""Who is on duty at a school at an instant, who a policy step reaches, and where coverage is thin.

Pure functions over the district configuration; every instant is an aware datetime passed in.

Shift times are wall-clock times in the school's time zone, so a 16:00-07:00 shift lasts 14 real
hours across spring-forward and 16 across fall-back. Wall times that do not exist or exist twice
are read with zoneinfo's default fold=0, for starts and ends alike: a time in the spring-forward
gap lands as far past the gap's start as written (02:30 means 03:30 CDT), and a time in the
repeated fall-back hour means its first occurrence (01:30 means 01:30 CDT, not CST).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from tipline.district.config import (
    DAYS,
    ROLES,
    DistrictConfig,
    PolicyConfig,
    SchoolConfig,
    ShiftConfig,
    StepConfig,
    validate_target,
)
from tipline.errors import UnknownSchool
from tipline.triage import CATEGORIES

# A Monday in a week in which no time zone a US district uses changes its offset.
ORDINARY_WEEK = date(2026, 1, 12)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Override:
    """Someone covers a duty at a school from start to end (aware datetimes, end exclusive)."""

    school: str
    staff: str
    duty: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class OnDuty:
    """A staff member on duty, with why in plain words."""

    staff: str
    duty: str
    why: str


@dataclass(frozen=True)
class Recipient:
    """A staff member a step reaches, with every target that named them."""

    staff: str
    reasons: tuple[str, ...]


def _utc(value: datetime, name: str = "at") -> datetime:
    # Aware datetimes sharing one tzinfo compare by wall clock, which is wrong across DST;
    # every comparison in this module is therefore made in UTC.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, not {value!r}")
    return value.astimezone(UTC)


def _school(district: DistrictConfig, slug: str) -> SchoolConfig:
    school = district.school(slug)
    if school is None:
        raise UnknownSchool(f"unknown school {slug!r}")
    return school


def _day_name(day: date) -> str:
    return DAYS[day.weekday()]


def _stamp(instant: datetime, tz: tzinfo) -> str:
    """`Mon 2026-03-09 16:00 CDT` in the school's zone (locale-independent day names)."""
    local = _utc(instant).astimezone(tz)
    return f"{_day_name(local.date()).title()} {local:%Y-%m-%d %H:%M} {local.tzname()}"


def shift_window(shift: ShiftConfig, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC start and exclusive end of `shift` when it starts on local `day`."""
    # end before start runs past midnight; end == start is a full (23, 24 or 25 h) local day.
    end_day = day if shift.end > shift.start else day + timedelta(days=1)
    start = datetime.combine(day, shift.start, tzinfo=tz)
    end = datetime.combine(end_day, shift.end, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _known_overrides(
    district: DistrictConfig, school: str, overrides: Iterable[Override]
) -> list[Override]:
    # An override naming someone no longer in the config is ignored rather than blanking the
    # duty: the regular shift person is still a reachable human.
    return [o for o in overrides if o.school == school and district.staff_member(o.staff)]


def _first_per_staff(found: Iterable[OnDuty]) -> list[OnDuty]:
    seen: dict[str, OnDuty] = {}
    for person in found:
        seen.setdefault(person.staff, person)
    return list(seen.values())


def on_duty(
    district: DistrictConfig,
    school: str,
    duty: str,
    at: datetime,
    overrides: Iterable[Override] = (),
) -> list[OnDuty]:
    """Who covers `duty` at `school` at the instant `at`, overrides first, in config order."""
    tz = ZoneInfo(_school(district, school).timezone)
    now = _utc(at)
    covering = [
        o
        for o in _known_overrides(district, school, overrides)
        if o.duty == duty and _utc(o.start, "override start") <= now < _utc(o.end, "override end")
    ]
    if covering:
        return _first_per_staff(
            OnDuty(o.staff, duty, f"override from {_stamp(o.start, tz)} until {_stamp(o.end, tz)}")
            for o in covering
        )
    today = now.astimezone(tz).date()
    found: list[OnDuty] = []
    for shift in district.shifts:
        if shift.school != school or shift.duty != duty:
            continue
        # Shifts last at most one wall-clock day, but a gap at the end can push one an hour
        # past it in real time, so the day before yesterday is checked too.
        for back in (2, 1, 0):
            day = today - timedelta(days=back)
            if _day_name(day) not in shift.days:
                continue
            start, end = shift_window(shift, day, tz)
            if start <= now < end:
                span = f"{shift.start:%H:%M}-{shift.end:%H:%M}"
                why = f"shift {_day_name(day)} {span} (started {_stamp(start, tz)})"
                found.append(OnDuty(shift.staff, duty, why))
                break
    return _first_per_staff(found)


def _duties(
    district: DistrictConfig, school: SchoolConfig, overrides: Iterable[Override]
) -> list[str]:
    """Duties worth listing: shifted, overridden or paged by on-duty targets at this school."""
    named = {s.duty for s in district.shifts if s.school == school.slug}
    named |= {o.duty for o in overrides if o.school == school.slug}
    targets = list(school.fallback)
    for policy in district.policies:
        if not policy.schools or school.slug in policy.schools:
            targets += [t for step in policy.steps for t in step.notify]
    named |= {t.partition(":")[2] for t in targets if t.startswith("on-duty:")}
    return [d for d in ROLES if d in named] + sorted(named - set(ROLES))


def all_on_duty(
    district: DistrictConfig, school: str, at: datetime, overrides: Iterable[Override] = ()
) -> list[OnDuty]:
    """Everyone on duty at `school` at `at`, duty by duty."""
    overrides = tuple(overrides)
    duties = _duties(district, _school(district, school), overrides)
    return [p for duty in duties for p in on_duty(district, school, duty, at, overrides)]


def describe_on_duty(
    district: DistrictConfig, school: str, at: datetime, overrides: Iterable[Override] = ()
) -> str:
    """A printout of who is on duty at `school` at `at`, one line per person or empty duty."""
    overrides = tuple(overrides)
    config = _school(district, school)
    lines = [f"{config.name} ({config.slug}) at {_stamp(at, ZoneInfo(config.timezone))}"]
    duties = _duties(district, config, overrides)
    width = max((len(d) for d in duties), default=0)
    for duty in duties:
        people = on_duty(district, school, duty, at, overrides)
        if not people:
            lines.append(f"  {duty:<{width}}  nobody — fallback: {', '.join(config.fallback)}")
        for person in people:
            member = district.staff_member(person.staff)
            name = member.name if member else person.staff
            lines.append(f"  {duty:<{width}}  {name} ({person.staff}) — {person.why}")
    if not duties:
        lines.append(f"  no duties configured — fallback: {', '.join(config.fallback)}")
    return "\n".join(lines)


def resolve_targets(
    district: DistrictConfig,
    school: str,
    targets: Sequence[str],
    at: datetime,
    overrides: Iterable[Override] = (),
) -> list[Recipient]:
    """The staff that `targets` name at `school` at `at`, first-seen order, reasons merged."""
    _school(district, school)
    _utc(at)
    overrides = tuple(overrides)
    reasons: dict[str, list[str]] = {}
    for target in targets:
        validate_target(target)
        kind, _, value = target.partition(":")
        if kind == "on-duty":
            hits = [
                (p.staff, f"{target}: {p.why}")
                for p in on_duty(district, school, value, at, overrides)
            ]
        elif kind == "role":
            hits = [
                (s.id, target) for s in district.staff if s.role == value and school in s.schools
            ]
        else:
            # The config validates staff ids; an unknown one resolves to nobody so the
            # fallback still pages someone instead of the alert failing outright.
            hits = [(value, target)] if district.staff_member(value) else []
        for staff, reason in hits:
            merged = reasons.setdefault(staff, [])
            if reason not in merged:
                merged.append(reason)
    return [Recipient(staff, tuple(why)) for staff, why in reasons.items()]


def match_policy(
    district: DistrictConfig, school: str, severity: str, category: str
) -> PolicyConfig | None:
    """The first policy in file order that routes this school's tip, or None (fallback)."""
    return next((p for p in district.policies if p.matches(school, severity, category)), None)


def recipients_for_step(
    district: DistrictConfig,
    school: str,
    step: StepConfig,
    at: datetime,
    overrides: Iterable[Override] = (),
) -> tuple[list[Recipient], bool]:
    """Who a step reaches, and whether the school's fallback had to stand in for nobody."""
    overrides = tuple(overrides)
    found = resolve_targets(district, school, step.notify, at, overrides)
    if found:
        return found, False
    fallback = resolve_targets(district, school, _school(district, school).fallback, at, overrides)
    return [
        Recipient(r.staff, tuple(f"fallback {why}" for why in r.reasons)) for r in fallback
    ], True


def _runs(flags: Sequence[str | None]) -> list[tuple[int, int, str]]:
    """Runs of equal non-None flags as (first, last, flag), joined across the week's wrap."""
    runs: list[tuple[int, int, str]] = []
    for i, flag in enumerate(flags):
        if flag is None:
            continue
        if runs and runs[-1][1] == i - 1 and runs[-1][2] == flag:
            runs[-1] = (runs[-1][0], i, flag)
        else:
            runs.append((i, i, flag))
    if (
        len(runs) > 1
        and runs[0][0] == 0
        and runs[-1][1] == len(flags) - 1
        and runs[0][2] == runs[-1][2]
    ):
        # Sunday night runs into Monday morning: one gap, not two.
        runs[0] = (runs[-1][0], runs[0][1], runs[0][2])
        runs.pop()
    return runs


def _span(hours: Sequence[datetime], first: int, last: int) -> str:
    """`Sun 03:30-04:30` or `Sun 16:30-Mon 07:30` for hourly samples first..last."""
    if first == 0 and last == len(hours) - 1:
        return "all week"
    start, end = hours[first], hours[last] + _HOUR

    def label(t: datetime) -> str:
        return f"{_day_name(t.date()).title()} {t:%H:%M}"

    return (
        f"{label(start)}-{end:%H:%M}"
        if start.date() == end.date()
        else f"{label(start)}-{label(end)}"
    )


def coverage_gaps(district: DistrictConfig, start_of_week: date | None = None) -> list[str]:
    """Warnings for hours of a week in which a critical policy's first step reaches nobody."""
    monday = start_of_week or ORDINARY_WEEK
    # Naive local wall times, labelled as the sample's hour; made aware per school below.
    hours = [
        datetime.combine(monday, datetime.min.time()) + timedelta(minutes=30) + i * _HOUR
        for i in range(7 * 24)
    ]
    warnings: list[str] = []
    for school in district.schools:
        tz = ZoneInfo(school.timezone)
        instants = [h.replace(tzinfo=tz) for h in hours]
        fallback = ", ".join(school.fallback)
        fallback_ok = [
            bool(resolve_targets(district, school.slug, school.fallback, at)) for at in instants
        ]
        for first, last, _ in _runs([None if ok else "x" for ok in fallback_ok]):
            warnings.append(
                f"{school.slug}: the fallback ({fallback}) reaches nobody on "
                f"{_span(hours, first, last)}"
            )
        routes = {c: match_policy(district, school.slug, "critical", c) for c in CATEGORIES}
        unrouted = [c for c, p in routes.items() if p is None]
        if unrouted:
            warnings.append(
                f"{school.slug}: no policy matches critical tips in "
                f"{', '.join(unrouted)} (the school's fallback will be paged)"
            )
        used = {p.name for p in routes.values() if p is not None}
        for policy in (p for p in district.policies if p.name in used):
            notify = policy.steps[0].notify
            flags = [
                None
                if resolve_targets(district, school.slug, notify, at)
                else ("fallback" if ok else "nobody")
                for at, ok in zip(instants, fallback_ok, strict=True)
            ]
            for first, last, flag in _runs(flags):
                then = (
                    "the school's fallback will be paged"
                    if flag == "fallback"
                    else "and neither does the school's fallback"
                )
                warnings.append(
                    f'{school.slug}: policy "{policy.name}" step 1 reaches nobody '
                    f"on {_span(hours, first, last)} ({then})"
                )
    return warnings
