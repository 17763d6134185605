"""On-duty resolution, target resolution, policy matching and coverage gaps."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tipline.district.config import DistrictConfig, StepConfig, load_district, parse_district
from tipline.district.oncall import (
    Override,
    all_on_duty,
    coverage_gaps,
    describe_on_duty,
    match_policy,
    on_duty,
    recipients_for_step,
    resolve_targets,
)
from tipline.errors import UnknownSchool

CHICAGO = ZoneInfo("America/Chicago")
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"

BASE = """
[[school]]
slug = "lincoln"
name = "Lincoln High School"
timezone = "America/Chicago"
sms_number = "+15550000100"
fallback = ["role:admin"]

[[school]]
slug = "washington"
name = "Washington Middle School"
timezone = "America/Chicago"
sms_number = "+15550000200"
fallback = ["staff:okafor"]

[[staff]]
id = "day"
name = "Officer Day"
role = "sro"
schools = ["lincoln"]

[[staff]]
id = "night"
name = "Officer Night"
role = "sro"
schools = ["lincoln", "washington"]

[[staff]]
id = "patel"
name = "Principal Patel"
role = "admin"
schools = ["lincoln"]

[[staff]]
id = "nguyen"
name = "Principal Nguyen"
role = "admin"
schools = ["washington"]

[[staff]]
id = "okafor"
name = "Director Okafor"
role = "district"
schools = ["lincoln", "washington"]
"""


def shift(
    staff: str, days: str, start: str, end: str, *, duty: str = "sro", school: str = "lincoln"
) -> str:
    return (
        f'[[shift]]\nschool = "{school}"\nstaff = "{staff}"\nduty = "{duty}"\n'
        f'days = {days}\nstart = "{start}"\nend = "{end}"\n'
    )


def policy(
    name: str,
    notify: str,
    severity: str = '["critical"]',
    categories: str = "[]",
    schools: str = "[]",
) -> str:
    return (
        f'[[policy]]\nname = "{name}"\nseverity = {severity}\ncategories = {categories}\n'
        f"schools = {schools}\n[[policy.step]]\nnotify = {notify}\n"
    )


def district(*tables: str) -> DistrictConfig:
    return parse_district(tomllib.loads(BASE + "\n".join(tables)))


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHICAGO)


def staff_on(
    config: DistrictConfig,
    at: datetime,
    duty: str = "sro",
    overrides: tuple[Override, ...] = (),
    school: str = "lincoln",
) -> list[str]:
    return [p.staff for p in on_duty(config, school, duty, at, overrides)]


ROTA = district(
    shift("day", '["mon", "tue", "wed", "thu", "fri"]', "07:00", "16:00"),
    shift("night", '["fri"]', "16:00", "07:00"),
)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(2026, 3, 11, 7, 0), ["day"]),  # Wednesday, the first minute
        (local(2026, 3, 11, 12, 0), ["day"]),
        (local(2026, 3, 11, 15, 59), ["day"]),
        (local(2026, 3, 11, 16, 0), []),  # the end is exclusive
        (local(2026, 3, 11, 6, 59), []),
        (local(2026, 3, 14, 12, 0), []),  # Saturday
    ],
)
def test_weekday_day_shift_covers_its_hours_only(at: datetime, expected: list[str]) -> None:
    assert staff_on(ROTA, at) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(2026, 3, 13, 16, 0), ["night"]),  # Friday evening
        (local(2026, 3, 14, 3, 0), ["night"]),  # Saturday 03:00, carried over from Friday
        (local(2026, 3, 14, 6, 59), ["night"]),
        (local(2026, 3, 14, 7, 0), []),
        (local(2026, 3, 12, 3, 0), []),  # Thursday morning: no Wednesday night shift
    ],
)
def test_overnight_shift_runs_past_midnight_from_its_start_day(
    at: datetime, expected: list[str]
) -> None:
    assert staff_on(ROTA, at) == expected


def test_monday_small_hours_belong_to_sundays_overnight_shift() -> None:
    config = district(
        shift("night", '["sun"]', "22:00", "06:00"), shift("day", '["mon"]', "22:00", "06:00")
    )
    on = on_duty(config, "lincoln", "sro", local(2026, 3, 16, 2, 0))
    assert [p.staff for p in on] == ["night"]
    assert on[0].why == "shift sun 22:00-06:00 (started Sun 2026-03-15 22:00 CDT)"


def test_monday_small_hours_without_a_sunday_shift_have_nobody() -> None:
    config = district(shift("day", '["mon"]', "22:00", "06:00"))
    assert staff_on(config, local(2026, 3, 16, 2, 0)) == []
    assert staff_on(config, local(2026, 3, 17, 2, 0)) == ["day"]


DST_NIGHTS = district(
    shift("night", '["all"]', "16:00", "07:00"), shift("day", '["all"]', "07:00", "16:00")
)


@pytest.mark.parametrize(
    ("transition", "real_hours"),
    [
        (date(2026, 3, 8), 14),  # spring forward 02:00 → 03:00
        (date(2026, 11, 1), 16),  # fall back 02:00 → 01:00
        (date(2025, 3, 9), 14),
        (date(2025, 11, 2), 16),
    ],
)
def test_overnight_shift_spans_dst_change_in_wall_clock_time(
    transition: date, real_hours: int
) -> None:
    morning = local(transition.year, transition.month, transition.day, 6, 30)
    assert staff_on(DST_NIGHTS, morning) == ["night"]
    assert staff_on(DST_NIGHTS, local(transition.year, transition.month, transition.day, 7, 0)) == [
        "day"
    ]
    # The shift started at 16:00 the evening before and lasts 14 or 16 real hours.
    eve = transition - timedelta(days=1)
    start = local(eve.year, eve.month, eve.day, 16, 0).astimezone(UTC)
    assert staff_on(DST_NIGHTS, start + timedelta(hours=real_hours, minutes=-1)) == ["night"]
    assert staff_on(DST_NIGHTS, start + timedelta(hours=real_hours)) == ["day"]


@pytest.mark.parametrize("day", [date(2026, 11, 1), date(2025, 11, 2)])
@pytest.mark.parametrize(
    ("utc_hour", "fold", "zone", "expected"),
    [
        (6, 0, "CDT", ["day", "night"]),  # first 01:30, before "01:45" (read as 01:45 CDT)
        (7, 1, "CST", ["night", "okafor"]),  # repeated 01:30, after 01:45 CDT in real time
    ],
)
def test_repeated_fall_back_hour_resolves_on_both_folds(
    day: date, utc_hour: int, fold: int, zone: str, expected: list[str]
) -> None:
    config = district(
        shift("day", '["sun"]', "00:00", "01:45"),
        shift("okafor", '["sun"]', "01:45", "03:00"),
        shift("night", '["sat"]', "16:00", "07:00"),
    )
    at = datetime(day.year, day.month, day.day, utc_hour, 30, tzinfo=UTC)
    wall = at.astimezone(CHICAGO)
    assert (wall.hour, wall.minute, wall.fold, wall.tzname()) == (1, 30, fold, zone)
    assert sorted(staff_on(config, at)) == expected


def test_start_in_spring_forward_gap_moves_forward_by_the_gap() -> None:
    config = district(shift("day", '["sun"]', "02:30", "05:00"))
    assert staff_on(config, local(2026, 3, 8, 3, 15)) == []
    on = on_duty(config, "lincoln", "sro", local(2026, 3, 8, 3, 30))
    assert [p.staff for p in on] == ["day"]
    assert on[0].why.endswith("(started Sun 2026-03-08 03:30 CDT)")


@pytest.mark.parametrize(
    ("sunday", "day_hours"),
    [
        (date(2026, 3, 8), 23),
        (date(2026, 11, 1), 25),
        (date(2025, 3, 9), 23),
        (date(2025, 11, 2), 25),
    ],
)
def test_24_hour_shift_covers_the_whole_local_day(sunday: date, day_hours: int) -> None:
    config = district(shift("night", '["sun"]', "00:00", "00:00"))
    midnight = local(sunday.year, sunday.month, sunday.day).astimezone(UTC)
    assert staff_on(config, midnight - timedelta(minutes=1)) == []
    assert staff_on(config, midnight) == ["night"]
    assert staff_on(config, local(sunday.year, sunday.month, sunday.day, 23, 59)) == ["night"]
    assert staff_on(config, midnight + timedelta(hours=day_hours, minutes=-1)) == ["night"]
    assert staff_on(config, midnight + timedelta(hours=day_hours)) == []


COVER = Override("lincoln", "okafor", "sro", local(2026, 3, 11, 9, 0), local(2026, 3, 11, 11, 0))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(2026, 3, 11, 8, 59), ["day"]),
        (local(2026, 3, 11, 9, 0), ["okafor"]),
        (local(2026, 3, 11, 10, 59), ["okafor"]),
        (local(2026, 3, 11, 11, 0), ["day"]),  # the end is exclusive
        (local(2026, 3, 11, 22, 0), []),  # outside its window an override adds nobody
    ],
)
def test_override_replaces_the_shift_person_for_its_window_only(
    at: datetime, expected: list[str]
) -> None:
    assert staff_on(ROTA, at, overrides=(COVER,)) == expected


@pytest.mark.parametrize(
    "other",
    [
        Override("washington", "okafor", "sro", COVER.start, COVER.end),
        Override("lincoln", "okafor", "admin", COVER.start, COVER.end),
        Override("lincoln", "nobody-here", "sro", COVER.start, COVER.end),
    ],
)
def test_override_for_another_school_duty_or_unknown_person_leaves_the_shift(
    other: Override,
) -> None:
    assert staff_on(ROTA, local(2026, 3, 11, 10, 0), overrides=(other,)) == ["day"]


def test_override_says_until_when_in_the_schools_time() -> None:
    cover = Override(
        "lincoln",
        "okafor",
        "sro",
        datetime(2026, 11, 23, 14, tzinfo=UTC),
        datetime(2026, 11, 26, 14, tzinfo=UTC),
    )
    [person] = on_duty(ROTA, "lincoln", "sro", local(2026, 11, 24, 12, 0), (cover,))
    assert person.why == ("override from Mon 2026-11-23 08:00 CST until Thu 2026-11-26 08:00 CST")


@pytest.mark.parametrize(
    "call",
    [
        lambda: on_duty(ROTA, "lincoln", "sro", datetime(2026, 3, 11, 10)),
        lambda: resolve_targets(ROTA, "lincoln", ["role:admin"], datetime(2026, 3, 11)),
        lambda: on_duty(
            ROTA,
            "lincoln",
            "sro",
            local(2026, 3, 11, 10),
            (Override("lincoln", "okafor", "sro", datetime(2026, 3, 11), datetime(2026, 3, 12)),),
        ),
    ],
)
def test_naive_datetimes_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        call()  # type: ignore[operator]


def test_unknown_school_is_refused() -> None:
    with pytest.raises(UnknownSchool):
        on_duty(ROTA, "jefferson", "sro", local(2026, 3, 11, 10))


@pytest.mark.parametrize(
    ("school", "target", "expected"),
    [
        ("lincoln", "role:admin", ["patel"]),
        ("washington", "role:admin", ["nguyen"]),
        ("washington", "role:sro", ["night"]),  # "day" is a Lincoln officer only
        ("lincoln", "role:counselor", []),
        ("washington", "staff:day", ["day"]),  # named people are paged wherever they work
    ],
)
def test_role_targets_respect_the_staffs_schools(
    school: str, target: str, expected: list[str]
) -> None:
    found = resolve_targets(ROTA, school, [target], local(2026, 3, 11, 10))
    assert [r.staff for r in found] == expected


def test_targets_are_deduplicated_in_first_seen_order_with_reasons_merged() -> None:
    found = resolve_targets(
        ROTA,
        "lincoln",
        ["role:admin", "on-duty:sro", "role:sro", "staff:patel", "role:admin"],
        local(2026, 3, 11, 10),
    )
    assert [r.staff for r in found] == ["patel", "day", "night"]
    assert found[0].reasons == ("role:admin", "staff:patel")
    assert found[1].reasons == (
        "on-duty:sro: shift wed 07:00-16:00 (started Wed 2026-03-11 07:00 CDT)",
        "role:sro",
    )
    assert found[2].reasons == ("role:sro",)


def test_targets_that_match_nobody_give_an_empty_list() -> None:
    assert (
        resolve_targets(
            ROTA, "lincoln", ["on-duty:counselor", "role:counselor"], local(2026, 3, 11, 10)
        )
        == []
    )


STEP = StepConfig(notify=("on-duty:sro",), channels=("sms",), wait=timedelta(minutes=2))


@pytest.mark.parametrize(
    ("school", "at", "expected", "used_fallback"),
    [
        ("lincoln", local(2026, 3, 11, 10), ["day"], False),
        ("lincoln", local(2026, 3, 11, 22), ["patel"], True),
        ("washington", local(2026, 3, 11, 10), ["okafor"], True),
    ],
)
def test_fallback_is_used_only_when_nobody_is_on_duty(
    school: str, at: datetime, expected: list[str], used_fallback: bool
) -> None:
    found, fell_back = recipients_for_step(ROTA, school, STEP, at)
    assert ([r.staff for r in found], fell_back) == (expected, used_fallback)
    if fell_back:
        assert all(why.startswith("fallback ") for r in found for why in r.reasons)


POLICIES = district(
    policy(
        "washington-weapons", '["staff:okafor"]', categories='["weapon"]', schools='["washington"]'
    ),
    policy("self-harm", '["role:admin"]', categories='["self_harm", "abuse"]'),
    policy("life-safety", '["on-duty:sro"]'),
    policy("serious", '["on-duty:sro"]', severity='["high"]'),
)


@pytest.mark.parametrize(
    ("school", "severity", "category", "expected"),
    [
        ("washington", "critical", "weapon", "washington-weapons"),
        ("lincoln", "critical", "weapon", "life-safety"),  # the first policy is Washington's
        ("lincoln", "critical", "self_harm", "self-harm"),
        ("washington", "critical", "abuse", "self-harm"),
        ("lincoln", "critical", "drugs", "life-safety"),
        ("lincoln", "high", "self_harm", "serious"),  # severity filters before categories
        ("lincoln", "normal", "bullying", None),
    ],
)
def test_match_policy_picks_the_first_match_in_file_order(
    school: str, severity: str, category: str, expected: str | None
) -> None:
    found = match_policy(POLICIES, school, severity, category)
    assert (found.name if found else None) == expected


def test_all_on_duty_lists_every_duty() -> None:
    config = district(
        shift("day", '["all"]', "00:00", "00:00"),
        shift("patel", '["all"]', "00:00", "00:00", duty="admin"),
    )
    found = all_on_duty(config, "lincoln", local(2026, 3, 11, 10))
    assert [(p.duty, p.staff) for p in found] == [("sro", "day"), ("admin", "patel")]


def test_describe_on_duty_names_people_and_the_fallback_for_empty_duties() -> None:
    config = district(
        shift("day", '["wed"]', "07:00", "16:00"),
        policy("life-safety", '["on-duty:sro", "on-duty:counselor"]'),
    )
    text = describe_on_duty(config, "lincoln", local(2026, 3, 11, 10), ())
    assert text.splitlines() == [
        "Lincoln High School (lincoln) at Wed 2026-03-11 10:00 CDT",
        "  sro        Officer Day (day) — shift wed 07:00-16:00 (started Wed 2026-03-11 07:00 CDT)",
        "  counselor  nobody — fallback: role:admin",
    ]


SRO_POLICY = policy("life-safety", '["on-duty:sro"]', schools='["lincoln"]')


@pytest.mark.parametrize(
    ("shifts", "expected"),
    [
        pytest.param(
            [
                shift("day", '["all"]', "07:00", "16:00"),
                shift("night", '["mon", "tue", "wed", "thu", "fri", "sat"]', "16:00", "07:00"),
                shift("night", '["sun"]', "16:00", "03:00"),
            ],
            [
                'lincoln: policy "life-safety" step 1 reaches nobody on Mon 03:30-07:30 '
                "(the school's fallback will be paged)"
            ],
            id="four-hour hole merged into one range",
        ),
        pytest.param(
            [
                shift("day", '["mon", "tue", "wed", "thu", "fri"]', "07:00", "16:00"),
                shift("night", '["mon", "tue", "wed", "thu"]', "16:00", "07:00"),
            ],
            [
                'lincoln: policy "life-safety" step 1 reaches nobody on Fri 16:30-Mon 07:30 '
                "(the school's fallback will be paged)"
            ],
            id="weekend hole across the week's wrap",
        ),
        pytest.param(
            [shift("day", '["all"]', "00:00", "00:00")],
            [],
            id="covered around the clock",
        ),
        pytest.param(
            [],
            [
                'lincoln: policy "life-safety" step 1 reaches nobody on all week '
                "(the school's fallback will be paged)"
            ],
            id="no shifts at all",
        ),
    ],
)
def test_coverage_gaps_reports_hours_the_first_step_reaches_nobody(
    shifts: list[str], expected: list[str]
) -> None:
    gaps = coverage_gaps(district(*shifts, SRO_POLICY))
    assert [g for g in gaps if g.startswith("lincoln")] == expected


def test_coverage_gaps_reports_critical_tips_no_policy_routes() -> None:
    gaps = coverage_gaps(district(SRO_POLICY))
    assert (
        "washington: no policy matches critical tips in weapon, violence, self_harm, abuse, "
        "bullying, drugs, other (the school's fallback will be paged)" in gaps
    )


def test_coverage_gaps_warns_when_neither_step_nor_fallback_reaches_anyone() -> None:
    config = parse_district(
        tomllib.loads(
            """
        [[school]]
        slug = "lincoln"
        name = "Lincoln High School"
        timezone = "America/Chicago"
        sms_number = "+15550000100"
        fallback = ["on-duty:admin"]
        """
            + SRO_POLICY
        )
    )
    assert coverage_gaps(config) == [
        "lincoln: the fallback (on-duty:admin) reaches nobody on all week",
        'lincoln: policy "life-safety" step 1 reaches nobody on all week '
        "(and neither does the school's fallback)",
    ]


def test_example_config_covers_life_safety_around_the_clock() -> None:
    gaps = coverage_gaps(load_district(EXAMPLE))
    assert [g for g in gaps if '"life-safety' in g] == []
