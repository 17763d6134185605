"""Who may do what to a tip: role × school × category → actions, defaults plus the district's
`[[access]]` entries.

The table is plain data so the config loader validates it (rung 5) and `staff/access` enforces
it (rung 9). A cell either applies always or only on tips whose alert policy names the person
("paged"): counselors read weapon and violence tips only when a policy would page them, since
those tips name students who may be armed and belong first to the school's safety staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tipline.triage import CATEGORIES

ROLES = ("sro", "admin", "counselor", "district")
ACTIONS = ("view", "download", "reply", "note", "acknowledge", "status", "assign", "reclassify")
WHEN = ("always", "paged")
ACCESS_SETTING = "access"  # the Setting that holds the district's `[[access]]` entries

COUNSELOR_ACTIONS = ("view", "download", "reply", "note", "acknowledge", "status")
COUNSELOR_ALWAYS = ("self_harm", "abuse", "bullying", "drugs", "other")
COUNSELOR_PAGED = ("weapon", "violence")


@dataclass(frozen=True)
class AccessRule:
    """Gives `role` exactly `actions` on tips of `categories` at `schools` (empty: all)."""

    role: str
    actions: tuple[str, ...]
    categories: tuple[str, ...] = ()
    schools: tuple[str, ...] = ()
    when: str = "always"

    def covers(self, role: str, school: str, category: str) -> bool:
        return (
            self.role == role
            and (not self.schools or school in self.schools)
            and (not self.categories or category in self.categories)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "actions": list(self.actions),
            "categories": list(self.categories),
            "schools": list(self.schools),
            "when": self.when,
        }


DEFAULT_RULES: tuple[AccessRule, ...] = (
    AccessRule("district", ACTIONS),
    AccessRule("admin", ACTIONS),
    AccessRule("sro", ACTIONS),
    AccessRule("counselor", COUNSELOR_ACTIONS, COUNSELOR_ALWAYS),
    AccessRule("counselor", COUNSELOR_ACTIONS, COUNSELOR_PAGED, when="paged"),
)


@dataclass(frozen=True)
class Cell:
    """What one role may do on one category of tip at one school, and on what condition."""

    actions: frozenset[str]
    when: str = "always"

    @property
    def paged_only(self) -> bool:
        return self.when == "paged"


NOTHING = Cell(frozenset())


def cell(rules: Sequence[AccessRule], role: str, school: str, category: str) -> Cell:
    """The last rule covering (role, school, category) wins; the district's come after the
    defaults, so an `[[access]]` entry replaces the default cells it covers."""
    for rule in reversed((*DEFAULT_RULES, *rules)):
        if rule.covers(role, school, category):
            return Cell(frozenset(rule.actions), rule.when)
    return NOTHING


def parse_rule(raw: Mapping[str, Any]) -> AccessRule:
    """One `[[access]]` entry; ValueError naming the field and the allowed values.
    Unknown schools are the caller's check (it knows the district's slugs)."""
    allowed = {"role", "actions", "categories", "schools", "when"}
    for key in raw:
        if key not in allowed:
            raise ValueError(f"field {key!r}: unknown field (expected one of: {_list(allowed)})")
    role = raw.get("role")
    if role not in ROLES:
        raise ValueError(f"field 'role': must be one of {_list(ROLES)}, not {role!r}")
    if "actions" not in raw:
        raise ValueError("field 'actions': is required ([] takes every action away)")
    actions = _strings(raw, "actions", ACTIONS)
    categories = _strings(raw, "categories", CATEGORIES)
    schools = _strings(raw, "schools", None)
    when = raw.get("when", "always")
    if when not in WHEN:
        raise ValueError(f'field \'when\': must be "always" or "paged", not {when!r}')
    if actions and "view" not in actions:
        raise ValueError("field 'actions': every other action needs \"view\" too")
    return AccessRule(role, actions, categories, schools, when)


def rules_from_json(value: object) -> tuple[AccessRule, ...]:
    """The rules as `tipline init` stored them (a list of `as_dict`); () for anything else."""
    if not isinstance(value, list):
        return ()
    return tuple(parse_rule(item) for item in value if isinstance(item, dict))


def _strings(
    raw: Mapping[str, Any], name: str, vocabulary: Iterable[str] | None
) -> tuple[str, ...]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {name!r}: must be a list of strings")
    if vocabulary is not None:
        known = tuple(vocabulary)
        for v in value:
            if v not in known:
                raise ValueError(f"field {name!r}: unknown value {v!r} (one of {_list(known)})")
    return tuple(value)


def _list(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) if isinstance(values, set) else ", ".join(values)
