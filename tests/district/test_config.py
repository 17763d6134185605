"""The district config file: validated whole, every error naming table, entry and field."""

from __future__ import annotations

import random
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from tests.conftest import EXAMPLE_CONFIG
from tipline.district.config import load_district, normalize_phone, parse_district
from tipline.errors import ConfigError


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE_CONFIG.read_text())


def test_example_config_is_valid_and_complete() -> None:
    district = load_district(EXAMPLE_CONFIG)
    assert [s.slug for s in district.schools] == ["lincoln", "washington"]
    assert district.schools[0].places == ("the pit", "the annex")
    roles = {s.role for s in district.staff}
    assert roles == {"sro", "admin", "counselor", "district"}
    assert {sev for p in district.policies for sev in p.severity} == {
        "critical",
        "high",
        "normal",
        "low",
    }


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()

BAD = [
    (
        "unknown staff in shift",
        _set(("shift", 0, "staff"), "zed"),
        "[[shift]] entry 1",
        "'staff'",
        "unknown staff id 'zed'",
    ),
    ("bad time", _set(("shift", 0, "start"), "7am"), "[[shift]] entry 1", "'start'", "07:00"),
    ("hour out of range", _set(("shift", 0, "end"), "25:00"), "[[shift]]", "'end'", "not a time"),
    ("unknown duty", _set(("shift", 0, "duty"), "janitor"), "[[shift]]", "'duty'", "janitor"),
    (
        "duplicate slug",
        _set(("school", 1, "slug"), "lincoln"),
        "[[school]] entry 2",
        "'slug'",
        "duplicate",
    ),
    (
        "not E.164",
        _set(("staff", 0, "phone"), "555-0111"),
        "[[staff]] entry 1 (id 'ruiz')",
        "'phone'",
        "E.164",
    ),
    (
        "impossible number",
        _set(("school", 0, "sms_number"), "+1555"),
        "[[school]] entry 1",
        "'sms_number'",
        "possible",
    ),
    (
        "unknown key (typo)",
        _set(("school", 0, "timezon"), "UTC"),
        "[[school]] entry 1",
        "'timezon'",
        "unknown field",
    ),
    (
        "unknown time zone",
        _set(("school", 0, "timezone"), "Mars/Olympus"),
        "[[school]]",
        "'timezone'",
        "Mars/Olympus",
    ),
    ("unknown role", _set(("staff", 0, "role"), "coach"), "[[staff]] entry 1", "'role'", "coach"),
    (
        "missing name",
        _set(("staff", 0, "name"), _DELETE),
        "[[staff]] entry 1",
        "'name'",
        "required",
    ),
    (
        "bad wait",
        _set(("policy", 0, "step", 0, "wait"), "soon"),
        "policy.step",
        "'wait'",
        "duration",
    ),
    (
        "bad target",
        _set(("policy", 0, "step", 0, "notify"), ["everyone"]),
        "policy.step",
        "'notify'",
        "on-duty",
    ),
    (
        "unknown channel",
        _set(("policy", 0, "step", 0, "channels"), ["pager"]),
        "policy.step",
        "'channels'",
        "pager",
    ),
    (
        "unknown severity",
        _set(("policy", 0, "severity"), ["urgent"]),
        "[[policy]] entry 1",
        "'severity'",
        "urgent",
    ),
    (
        "unknown school in staff",
        _set(("staff", 0, "schools"), ["nowhere"]),
        "[[staff]]",
        "'schools'",
        "nowhere",
    ),
    ("repeat out of range", _set(("policy", 0, "repeat"), 50), "[[policy]]", "'repeat'", "0 and 9"),
    (
        "bad alert_text",
        _set(("school", 0, "alert_text"), "full"),
        "[[school]]",
        "'alert_text'",
        "excerpt",
    ),
    (
        "places not strings",
        _set(("school", 0, "places"), ["the pit", 4]),
        "[[school]]",
        "'places'",
        "list of strings",
    ),
]


@pytest.mark.parametrize(
    ("case", "mutate", "table", "field", "message"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_config_names_table_entry_and_field(
    case: str, mutate: Any, table: str, field: str, message: str
) -> None:
    doc = example()
    mutate(doc)
    with pytest.raises(ConfigError) as err:
        parse_district(doc, "district.toml")
    text = str(err.value)
    assert text.startswith("district.toml: ")
    assert table in text
    assert field in text
    assert message in text


def test_unknown_top_level_table_is_rejected() -> None:
    doc = example()
    doc["schools"] = []
    with pytest.raises(ConfigError, match="unknown table 'schools'"):
        parse_district(doc)


def test_555_numbers_are_accepted() -> None:
    district = parse_district(example())
    assert district.staff_member("ruiz") is not None
    assert district.staff_member("ruiz").phone == "+15550000111"  # type: ignore[union-attr]


def test_init_with_a_bad_config_exits_nonzero_naming_the_field(
    tmp_path: Path, env: dict[str, str]
) -> None:
    bad = tmp_path / "district.toml"
    bad.write_text(EXAMPLE_CONFIG.read_text().replace('staff = "ruiz"', 'staff = "ruizz"', 1))
    proc = subprocess.run(
        [sys.executable, "-m", "tipline", "init"],
        env={**env, "TIPLINE_CONFIG": str(bad), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "[[shift]] entry 1" in lines[0]
    assert "'staff'" in lines[0]
    assert "ruizz" in lines[0]


def test_a_config_that_is_not_toml_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[[school]\nslug = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_district(bad)


def test_missing_config_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TIPLINE_CONFIG"):
        load_district(tmp_path / "nope.toml")


def _by_phonenumbers(value: str) -> str | None:
    """What normalize_phone returned before its shortcut: phonenumbers' answer, every time."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _normalized(value: str) -> str | None:
    try:
        return normalize_phone(value)
    except ValueError:
        return None


def test_phone_numbers_normalize_exactly_as_phonenumbers_does() -> None:
    """Stored phone hashes are keyed on this form: a shortcut that answered differently for
    even one number would split a student's texts into two conversations, and lose staff."""
    rng = random.Random(20261205)  # noqa: S311 - reproducible test numbers, not secrets
    numbers = [f"+1{area}{rng.randrange(10**7):07d}" for area in range(200, 1000)]
    numbers += [f"+1{rng.randrange(10**10):010d}" for _ in range(3000)]  # 0 and 1 starts too
    numbers += [f"+{rng.randrange(1, 999)}{rng.randrange(10**9)}" for _ in range(3000)]
    numbers += [
        "+1 555 000 0111",
        "+1-555-000-0111",
        "+15550000111 ",
        "+1555000011",
        "+155500001111",
        "+1\u0665\u0665\u0665\u0660\u0660\u0660\u0660\u0661\u0661\u0661",  # Arabic-Indic digits
        "+１５５５００００１１１",  # full-width
        "15550000111",
        "+447700900123",
        "+44 07700 900123",
        "+390612345678",
    ]
    mismatched = [n for n in numbers if _normalized(n) != _by_phonenumbers(n)]
    assert mismatched == []
    assert normalize_phone("+1\u0665\u0665\u0665\u0660\u0660\u0660\u0660\u0661\u0661\u0661") == (
        "+15550000111"
    )
