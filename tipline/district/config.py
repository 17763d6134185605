"""The district configuration file (TOML): parsed and validated into frozen dataclasses.

Every error names the table, the entry and the field, so a typo never passes silently.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from tipline.district.grants import ROLES, AccessRule, parse_rule
from tipline.errors import ConfigError
from tipline.triage import CATEGORIES, SEVERITIES, load_rules

__all__ = ["ROLES", "AccessRule", "DistrictConfig", "load_district", "parse_district"]
CHANNELS = ("sms", "voice", "email")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALERT_TEXT = ("excerpt", "link")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_STAFF_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class RetentionConfig:
    """How long a school keeps what identifies or quotes a tip (days; see vault.retention)."""

    closed_days: int = 365  # a closed tip, from its closing
    phone_days: int = 30  # a student's number, from the last message of its conversations
    attachment_days: int = 90  # an attachment, from its arrival


RETENTION_KEYS = ("closed_days", "phone_days", "attachment_days")


@dataclass(frozen=True)
class FloodConfig:
    """When a school enters flood mode and leaves it (see tipline.alerting.flood).

    Past `web_sessions` tips from new web sessions, or `tips` new tips of any channel, within
    `window`, staff get a digest every `digest` instead of a page per tip, until the rate has
    stayed under both for `quiet`.
    """

    web_sessions: int = 6
    tips: int = 20
    window: timedelta = timedelta(seconds=10)
    quiet: timedelta = timedelta(minutes=2)
    digest: timedelta = timedelta(seconds=60)

    def as_row(self) -> dict[str, int]:
        """The JSON kept on the school's row: counts and whole seconds."""
        return {
            "web_sessions": self.web_sessions,
            "tips": self.tips,
            "window_s": int(self.window.total_seconds()),
            "quiet_s": int(self.quiet.total_seconds()),
            "digest_s": int(self.digest.total_seconds()),
        }

    @classmethod
    def from_row(cls, row: dict[str, int] | None) -> FloodConfig:
        """The thresholds a school's row holds; defaults for what it does not."""
        row = row or {}
        base = cls()
        return cls(
            web_sessions=int(row.get("web_sessions", base.web_sessions)),
            tips=int(row.get("tips", base.tips)),
            window=timedelta(seconds=int(row.get("window_s", base.window.total_seconds()))),
            quiet=timedelta(seconds=int(row.get("quiet_s", base.quiet.total_seconds()))),
            digest=timedelta(seconds=int(row.get("digest_s", base.digest.total_seconds()))),
        )


FLOOD_COUNTS = ("web_sessions", "tips")
FLOOD_DURATIONS = ("window", "quiet", "digest")
FLOOD_LIMITS = {  # the bounds a district may set, so a typo cannot turn flood mode off
    "web_sessions": (2, 1000),
    "tips": (2, 10000),
    "window": (timedelta(seconds=1), timedelta(minutes=10)),
    "quiet": (timedelta(seconds=30), timedelta(hours=1)),
    "digest": (timedelta(seconds=30), timedelta(minutes=10)),
}
MAX_RETENTION_DAYS = 36500


@dataclass(frozen=True)
class SchoolConfig:
    slug: str
    name: str
    timezone: str
    sms_number: str
    fallback: tuple[str, ...]
    monitored: str | None = None
    followup_window: timedelta = timedelta(hours=72)
    alert_text: str = "excerpt"
    places: tuple[str, ...] = ()
    retention: RetentionConfig = RetentionConfig()
    break_glass: bool = False  # two admins and a written reason may reveal a number
    flood: FloodConfig = FloodConfig()


@dataclass(frozen=True)
class StaffConfig:
    id: str
    name: str
    role: str
    phone: str | None
    email: str | None
    schools: tuple[str, ...]


@dataclass(frozen=True)
class ShiftConfig:
    school: str
    staff: str
    duty: str
    days: tuple[str, ...]
    start: time
    end: time


@dataclass(frozen=True)
class StepConfig:
    notify: tuple[str, ...]
    channels: tuple[str, ...]
    wait: timedelta


@dataclass(frozen=True)
class PolicyConfig:
    name: str
    severity: tuple[str, ...]
    categories: tuple[str, ...]
    repeat: int
    steps: tuple[StepConfig, ...]
    schools: tuple[str, ...] = ()

    def matches(self, school: str, severity: str, category: str) -> bool:
        return (
            (not self.schools or school in self.schools)
            and (not self.severity or severity in self.severity)
            and (not self.categories or category in self.categories)
        )


@dataclass(frozen=True)
class DistrictConfig:
    schools: tuple[SchoolConfig, ...]
    staff: tuple[StaffConfig, ...]
    shifts: tuple[ShiftConfig, ...]
    policies: tuple[PolicyConfig, ...]
    triage: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<config>"
    access: tuple[AccessRule, ...] = ()  # `[[access]]`: replaces default cells (grants.py)

    def school(self, slug: str) -> SchoolConfig | None:
        return next((s for s in self.schools if s.slug == slug), None)

    def staff_member(self, staff_id: str) -> StaffConfig | None:
        return next((s for s in self.staff if s.id == staff_id), None)


def parse_duration(value: object) -> timedelta:
    """`"45s"`, `"2m"`, `"1h"`, `"3d"` → timedelta; anything else raises ValueError."""
    if not isinstance(value, str) or not (m := _DURATION.match(value)):
        raise ValueError('must be a duration like "45s", "2m", "1h" or "3d"')
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_clock(value: object) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
        raise ValueError('must be a time like "07:00"')
    hour, minute = int(value[:2]), int(value[3:])
    if hour > 23 or minute > 59:
        raise ValueError(f"{value!r} is not a time of day")
    return time(hour, minute)


_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")


def normalize_phone(value: object) -> str:
    """E.164 or ValueError. is_possible_number, not is_valid_number: 555 numbers must pass."""
    if not isinstance(value, str):
        raise ValueError("must be a phone number in E.164 form, like +15550000111")
    if _NANP_E164.fullmatch(value):
        # +1 and ten ASCII digits, the first not 0 or 1: what phonenumbers returns for it is
        # the very same string, always possible (tests compare the two on many numbers). Every
        # text Twilio posts from a US or Canadian phone looks like this; parsing it costs more
        # than the rest of the number's handling together.
        return value
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not an E.164 phone number (+ and country code)") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{value!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class _Entry:
    """Reads one table entry, raising ConfigError that names table, entry and field."""

    def __init__(self, source: str, table: str, index: int, raw: object) -> None:
        self.source, self.table, self.index = source, table, index
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: [[{table}]] entry {index + 1}: must be a table")
        self.raw: dict[str, Any] = raw
        self.label = f"[[{table}]] entry {index + 1}"
        for key in ("slug", "id", "name"):
            if isinstance(raw.get(key), str):
                self.label += f" ({key} {raw[key]!r})"
                break

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.label}: field {name!r}: {message}")

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.raw:
            if key not in allowed:
                raise self.fail(
                    key, f"unknown field (expected one of: {', '.join(sorted(allowed))})"
                )

    def get(self, name: str, kind: type, default: object = ..., *, required: bool = True) -> Any:
        if name not in self.raw:
            if default is not ...:
                return default
            raise self.fail(name, "is required")
        value = self.raw[name]
        if kind is int and isinstance(value, bool):
            raise self.fail(name, "must be an integer")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be {'a list' if kind is list else kind.__name__}")
        if isinstance(value, str) and required and not value.strip():
            raise self.fail(name, "must not be empty")
        return value

    def strings(self, name: str, default: object = ...) -> tuple[str, ...]:
        value = self.get(name, list, default)
        if not all(isinstance(v, str) for v in value):
            raise self.fail(name, "must be a list of strings")
        return tuple(value)

    def convert(self, name: str, fn: Any, value: object) -> Any:
        try:
            return fn(value)
        except ValueError as e:
            raise self.fail(name, str(e)) from None


def _entries(doc: Mapping[str, Any], source: str, table: str) -> list[_Entry]:
    raw = doc.get(table, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: {table!r} must be an array of tables ([[{table}]])")
    return [_Entry(source, table, i, item) for i, item in enumerate(raw)]


def _school(e: _Entry) -> SchoolConfig:
    e.check_keys(
        {
            "slug",
            "name",
            "timezone",
            "sms_number",
            "fallback",
            "monitored",
            "followup_window",
            "alert_text",
            "places",
            "retention",
            "break_glass",
            "flood",
        }
    )
    slug = e.get("slug", str)
    if not _SLUG.match(slug):
        raise e.fail("slug", "use lowercase letters, digits and dashes")
    tz = e.get("timezone", str)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise e.fail("timezone", f"unknown time zone {tz!r}") from None
    alert_text = e.get("alert_text", str, "excerpt")
    if alert_text not in ALERT_TEXT:
        raise e.fail("alert_text", f'must be "excerpt" or "link", not {alert_text!r}')
    return SchoolConfig(
        slug=slug,
        name=e.get("name", str),
        timezone=tz,
        sms_number=e.convert("sms_number", normalize_phone, e.get("sms_number", str)),
        fallback=e.strings("fallback", ("role:admin",)),
        monitored=e.get("monitored", str, None),
        followup_window=e.convert(
            "followup_window", parse_duration, e.get("followup_window", str, "72h")
        ),
        alert_text=alert_text,
        places=e.strings("places", ()),
        retention=_retention(e),
        break_glass=e.get("break_glass", bool, False),
        flood=_flood(e),
    )


def _retention(e: _Entry) -> RetentionConfig:
    """`retention = { closed_days = 365, phone_days = 30, attachment_days = 90 }`, each optional."""
    raw = e.get("retention", dict, {})
    for key in raw:
        if key not in RETENTION_KEYS:
            raise e.fail(
                "retention", f"unknown key {key!r} (expected one of: {', '.join(RETENTION_KEYS)})"
            )
    days: dict[str, int] = {}
    for key in RETENTION_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise e.fail("retention", f"{key} must be a whole number of days")
        if not 1 <= value <= MAX_RETENTION_DAYS:
            raise e.fail("retention", f"{key} must be between 1 and {MAX_RETENTION_DAYS} days")
        days[key] = value
    return RetentionConfig(**days)


def _flood(e: _Entry) -> FloodConfig:
    """`flood = { web_sessions = 6, tips = 20, window = "10s", quiet = "2m", digest = "60s" }`,
    each optional."""
    raw = e.get("flood", dict, {})
    allowed = FLOOD_COUNTS + FLOOD_DURATIONS
    for key in raw:
        if key not in allowed:
            raise e.fail("flood", f"unknown key {key!r} (expected one of: {', '.join(allowed)})")
    values: dict[str, Any] = {}
    for key in allowed:
        if key not in raw:
            continue
        value = raw[key]
        low, high = FLOOD_LIMITS[key]
        if key in FLOOD_COUNTS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise e.fail("flood", f"{key} must be a whole number of tips")
        else:
            try:
                value = parse_duration(value)
            except ValueError as err:
                raise e.fail("flood", f"{key}: {err}") from None
        if not low <= value <= high:
            raise e.fail("flood", f"{key} must be between {_bound(low)} and {_bound(high)}")
        values[key] = value
    return FloodConfig(**values)


def _bound(value: object) -> str:
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    return str(value)


def _staff(e: _Entry) -> StaffConfig:
    e.check_keys({"id", "name", "role", "phone", "email", "schools"})
    staff_id = e.get("id", str)
    if not _STAFF_ID.match(staff_id):
        raise e.fail("id", "use letters, digits, dot, dash and underscore")
    role = e.get("role", str)
    if role not in ROLES:
        raise e.fail("role", f"must be one of {', '.join(ROLES)}, not {role!r}")
    phone = e.get("phone", str, None)
    email = e.get("email", str, None)
    if email is not None and "@" not in email:
        raise e.fail("email", f"{email!r} is not an email address")
    return StaffConfig(
        id=staff_id,
        name=e.get("name", str),
        role=role,
        phone=None if phone is None else e.convert("phone", normalize_phone, phone),
        email=email,
        schools=e.strings("schools", ()),
    )


def _shift(e: _Entry) -> ShiftConfig:
    e.check_keys({"school", "staff", "duty", "days", "start", "end"})
    duty = e.get("duty", str)
    if duty not in ROLES:
        raise e.fail("duty", f"unknown duty {duty!r} (one of {', '.join(ROLES)})")
    days = tuple(d.lower() for d in e.strings("days", ("all",)))
    if not days:
        raise e.fail("days", 'must name at least one day (or ["all"])')
    if days == ("all",):
        days = DAYS
    for d in days:
        if d not in DAYS:
            raise e.fail("days", f'unknown day {d!r} (mon … sun, or ["all"])')
    return ShiftConfig(
        school=e.get("school", str),
        staff=e.get("staff", str),
        duty=duty,
        days=days,
        start=e.convert("start", parse_clock, e.get("start", str)),
        end=e.convert("end", parse_clock, e.get("end", str)),
    )


def validate_target(target: str) -> None:
    kind, sep, value = target.partition(":")
    if not sep or not value:
        raise ValueError(f"{target!r} must be on-duty:<duty>, role:<role> or staff:<id>")
    if kind in ("on-duty", "role") and value not in ROLES:
        raise ValueError(f"{target!r}: unknown {'duty' if kind == 'on-duty' else 'role'} {value!r}")
    if kind not in ("on-duty", "role", "staff"):
        raise ValueError(f"{target!r} must be on-duty:<duty>, role:<role> or staff:<id>")


def _step(source: str, policy: _Entry, index: int, raw: object) -> StepConfig:
    e = _Entry(source, f"policy.step of {policy.label}", index, raw)
    e.check_keys({"notify", "channels", "wait"})
    notify = e.strings("notify")
    if not notify:
        raise e.fail("notify", "must name at least one target")
    for target in notify:
        e.convert("notify", validate_target, target)
    channels = e.strings("channels", ("sms",))
    for ch in channels:
        if ch not in CHANNELS:
            raise e.fail("channels", f"unknown channel {ch!r} (one of {', '.join(CHANNELS)})")
    if not channels:
        raise e.fail("channels", "must name at least one channel")
    return StepConfig(
        notify=notify,
        channels=channels,
        wait=e.convert("wait", parse_duration, e.get("wait", str, "5m")),
    )


def _policy(e: _Entry) -> PolicyConfig:
    e.check_keys({"name", "severity", "categories", "repeat", "step", "schools"})
    severity = e.strings("severity", ())
    for s in severity:
        if s not in SEVERITIES:
            raise e.fail("severity", f"unknown severity {s!r} (one of {', '.join(SEVERITIES)})")
    categories = e.strings("categories", ())
    for c in categories:
        if c not in CATEGORIES:
            raise e.fail("categories", f"unknown category {c!r} (one of {', '.join(CATEGORIES)})")
    repeat = e.get("repeat", int, 0)
    if not 0 <= repeat <= 9:
        raise e.fail("repeat", "must be between 0 and 9")
    raw_steps = e.get("step", list)
    if not raw_steps:
        raise e.fail("step", "a policy needs at least one [[policy.step]]")
    steps = tuple(_step(e.source, e, i, s) for i, s in enumerate(raw_steps))
    return PolicyConfig(
        name=e.get("name", str),
        severity=severity,
        categories=categories,
        repeat=repeat,
        steps=steps,
        schools=e.strings("schools", ()),
    )


def _unique(entries: list[_Entry], items: list[Any], attr: str) -> None:
    seen: set[str] = set()
    for e, item in zip(entries, items, strict=True):
        value = getattr(item, attr)
        if value in seen:
            raise e.fail(attr, f"duplicate {attr} {value!r}")
        seen.add(value)


def parse_district(  # noqa: PLR0912 - one pass of cross-checks reads best in order
    doc: Mapping[str, Any], source: str = "<config>", *, base_dir: Path | None = None
) -> DistrictConfig:
    """Validate a parsed TOML document into a DistrictConfig (cross-references included).

    Relative triage `files` resolve against `base_dir` (the config's folder), else the
    working directory.
    """
    allowed = {"school", "staff", "shift", "policy", "triage", "access"}
    for key in doc:
        if key not in allowed:
            raise ConfigError(
                f"{source}: unknown table {key!r} (expected: {', '.join(sorted(allowed))})"
            )

    school_entries = _entries(doc, source, "school")
    if not school_entries:
        raise ConfigError(f"{source}: at least one [[school]] is required")
    schools = [_school(e) for e in school_entries]
    _unique(school_entries, schools, "slug")
    _unique(school_entries, schools, "sms_number")
    slugs = {s.slug for s in schools}

    staff_entries = _entries(doc, source, "staff")
    staff = [_staff(e) for e in staff_entries]
    _unique(staff_entries, staff, "id")
    phoned = [(e, s) for e, s in zip(staff_entries, staff, strict=True) if s.phone]
    _unique([e for e, _ in phoned], [s for _, s in phoned], "phone")
    for e, s in zip(staff_entries, staff, strict=True):
        for slug in s.schools:
            if slug not in slugs:
                raise e.fail("schools", f"unknown school {slug!r}")
        if s.phone in {sc.sms_number for sc in schools}:
            raise e.fail("phone", "is a school's tip line number")
    staff_ids = {s.id for s in staff}

    shift_entries = _entries(doc, source, "shift")
    shifts = [_shift(e) for e in shift_entries]
    for e, sh in zip(shift_entries, shifts, strict=True):
        if sh.school not in slugs:
            raise e.fail("school", f"unknown school {sh.school!r}")
        if sh.staff not in staff_ids:
            raise e.fail("staff", f"unknown staff id {sh.staff!r}")

    policy_entries = _entries(doc, source, "policy")
    policies = [_policy(e) for e in policy_entries]
    _unique(policy_entries, policies, "name")
    for e, p in zip(policy_entries, policies, strict=True):
        for slug in p.schools:
            if slug not in slugs:
                raise e.fail("schools", f"unknown school {slug!r}")
        for step in p.steps:
            for target in step.notify:
                if target.startswith("staff:") and target[6:] not in staff_ids:
                    raise e.fail("step", f"notify target {target!r}: unknown staff id")
    for e, school in zip(school_entries, schools, strict=True):
        for target in school.fallback:
            e.convert("fallback", validate_target, target)
            if target.startswith("staff:") and target[6:] not in staff_ids:
                raise e.fail("fallback", f"{target!r}: unknown staff id")

    triage = doc.get("triage", {})
    if not isinstance(triage, dict):
        raise ConfigError(f"{source}: [triage] must be a table")
    if triage:
        triage = _absolute_files(triage, base_dir)
        _check_triage(triage, source)

    return DistrictConfig(
        schools=tuple(schools),
        staff=tuple(staff),
        shifts=tuple(shifts),
        policies=tuple(policies),
        triage=triage,
        source=source,
        access=_access(doc, source, slugs),
    )


def _access(doc: Mapping[str, Any], source: str, slugs: set[str]) -> tuple[AccessRule, ...]:
    """The `[[access]]` entries: each replaces the default cells it covers (grants.py)."""
    found = []
    for e in _entries(doc, source, "access"):
        e.label = f"[[access]] entry {e.index + 1}"
        try:
            rule = parse_rule(e.raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {e.label}: {exc}") from None
        for slug in rule.schools:
            if slug not in slugs:
                raise e.fail("schools", f"unknown school {slug!r}")
        found.append(rule)
    return tuple(found)


def _check_triage(table: Mapping[str, Any], source: str) -> None:
    """Validate the district's triage words by compiling them (triage owns the schema)."""
    try:
        load_rules(table, source=f"{source}: [triage]")
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _absolute_files(table: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Resolve `files = [...]` against the config's folder, so the copy synced to the database
    still finds them from any working directory."""
    files = table.get("files")
    if base_dir is None or not isinstance(files, list):
        return table
    resolved = [str(base_dir / f) if isinstance(f, str) else f for f in files]
    return {**table, "files": resolved}


def load_district(path: Path) -> DistrictConfig:
    """Read and validate the district configuration file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found (set TIPLINE_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read configuration file: {e}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_district(doc, str(path), base_dir=path.absolute().parent)
