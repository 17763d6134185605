"""Whom a tip's alert policy names: the people who may stop its escalation (and, for
counselors, read its weapon and violence tips).

A person is named when a step of the alert's policy snapshot, or the school's fallback, has
`staff:<their id>`, `role:<their role>` or `on-duty:<a duty they hold there>` (their role, a
shift or an override of that duty at the school), whether or not that step has run: "reached or
not". Everyone a step actually paged counts too, so whoever an alert reached can always stop it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.district.cache import current_district
from tipline.district.oncall import match_policy
from tipline.models import Alert, AlertStep, OnCallOverride, School, Shift, Staff, Tip


@dataclass(frozen=True)
class Person:
    """Who is asking: a role, maybe a staff id, the duties they hold, where they belong."""

    role: str
    key: str | None = None
    duties: frozenset[tuple[int, str]] = frozenset()  # (school id, duty)
    schools: frozenset[int] | None = None  # None: wherever they see (a login's own check)


def person(session: Session, staff: Staff | None, role: str | None = None) -> Person:
    """A staff member (a login passes its role and its linked staff, if any)."""
    if staff is None:
        return Person(role or "")
    duties = {
        (school_id, duty)
        for school_id, duty in session.execute(
            select(Shift.school_id, Shift.duty).where(Shift.staff_id == staff.id)
        )
    }
    duties |= {
        (school_id, duty)
        for school_id, duty in session.execute(
            select(OnCallOverride.school_id, OnCallOverride.duty).where(
                OnCallOverride.staff_id == staff.id
            )
        )
    }
    return Person(
        role or staff.role,
        staff.key,
        frozenset(duties),
        None if role else frozenset(s.id for s in staff.schools),
    )


def policy_targets(policy: Mapping[str, Any]) -> list[str]:
    """Every notify target in a policy snapshot's steps."""
    steps = policy.get("steps") or []
    return [str(t) for step in steps if isinstance(step, dict) for t in step.get("notify", [])]


def targets_name(targets: Iterable[str], who: Person, school_id: int) -> bool:
    for target in targets:
        kind, _, value = target.partition(":")
        if kind == "staff" and who.key is not None and value == who.key:
            return True
        if who.schools is not None and school_id not in who.schools:
            continue
        if kind == "role" and value == who.role:
            return True
        if kind == "on-duty" and (value == who.role or (school_id, value) in who.duties):
            return True
    return False


def names(session: Session, alert: Alert, who: Person) -> bool:
    """Whether the alert's policy (or its school's fallback) names `who`, or a step paged them."""
    targets = [*policy_targets(alert.policy), *alert.school.fallback]
    if targets_name(targets, who, alert.school_id):
        return True
    if who.key is None:
        return False
    reached = session.scalars(select(AlertStep.recipients).where(AlertStep.alert_id == alert.id))
    return any(who.key in (recipients or []) for recipients in reached)


def tip_names(session: Session, tip: Tip, alert: Alert | None, who: Person) -> bool:
    """Whether the tip's policy names `who`: its alert's (`acks.alert_for_tip`) snapshot, or,
    with no alert yet, the policy that would route it now, and the school's fallback."""
    if alert is not None:
        return names(session, alert, who)
    school: School = tip.school
    policy = match_policy(current_district(session), school.slug, tip.severity, tip.category)
    targets = [t for step in (policy.steps if policy else ()) for t in step.notify]
    return targets_name([*targets, *school.fallback], who, school.id)
