"""The `[[access]]` table of the district file: validated, every error naming entry and field."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.conftest import EXAMPLE_CONFIG
from tipline.district.config import parse_district
from tipline.district.grants import AccessRule, cell
from tipline.errors import ConfigError


def with_access(*entries: dict[str, Any]) -> dict[str, Any]:
    doc = tomllib.loads(EXAMPLE_CONFIG.read_text())
    doc["access"] = list(entries)
    return doc


def test_access_entries_are_parsed_in_order() -> None:
    district = parse_district(
        with_access(
            {"role": "counselor", "categories": ["drugs"], "actions": []},
            {
                "role": "counselor",
                "schools": ["washington"],
                "categories": ["weapon"],
                "actions": ["view", "note"],
                "when": "always",
            },
        )
    )
    assert district.access == (
        AccessRule("counselor", (), ("drugs",)),
        AccessRule("counselor", ("view", "note"), ("weapon",), ("washington",)),
    )


def test_the_example_has_no_access_table_and_gets_the_defaults() -> None:
    assert parse_district(with_access()).access == ()
    assert cell((), "counselor", "lincoln", "weapon").paged_only
    assert "assign" not in cell((), "counselor", "lincoln", "drugs").actions
    assert "reclassify" in cell((), "sro", "lincoln", "weapon").actions


def test_a_later_entry_replaces_the_cells_it_covers() -> None:
    rules = (
        AccessRule("counselor", ("view",), ("weapon",), ("washington",)),
        AccessRule("sro", (), ("self_harm",)),
    )
    assert cell(rules, "counselor", "washington", "weapon").actions == {"view"}
    assert not cell(rules, "counselor", "washington", "weapon").paged_only
    assert cell(rules, "counselor", "lincoln", "weapon").paged_only  # the default stays
    assert cell(rules, "sro", "lincoln", "self_harm").actions == frozenset()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"role": "janitor", "actions": []}, "field 'role': must be one of"),
        ({"role": "sro"}, "field 'actions': is required"),
        ({"role": "sro", "actions": ["view", "delete"]}, "unknown value 'delete'"),
        ({"role": "sro", "actions": ["reply"]}, 'needs "view" too'),
        ({"role": "sro", "actions": [], "categories": ["guns"]}, "field 'categories'"),
        ({"role": "sro", "actions": [], "when": "sometimes"}, "field 'when'"),
        ({"role": "sro", "actions": [], "school": ["lincoln"]}, "field 'school': unknown field"),
        ({"role": "sro", "actions": [], "schools": ["nowhere"]}, "unknown school 'nowhere'"),
        ({"role": "sro", "actions": "view"}, "must be a list of strings"),
    ],
)
def test_bad_access_entries_fail_loudly(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_district(with_access({"role": "sro", "actions": ["view"]}, entry), "d.toml")
    assert str(err.value).startswith("d.toml: [[access]] entry 2: ")
    assert message in str(err.value)
