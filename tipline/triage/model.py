"""Compiled rule objects: triggers, contexts, benign idioms, and their matches."""

from __future__ import annotations

from dataclasses import dataclass

from tipline.triage.rules import Entry
from tipline.triage.verdict import LEVELS, TriageRulesError

__all__ = ["Benign", "Context", "Hit", "Rule", "Trigger", "build_rule"]


@dataclass(frozen=True)
class Trigger:
    """What a tip is about: a category and a severity it reaches alone (`level`)."""

    id: str
    category: str
    level: int
    max_level: int
    weight: float
    negatable: bool
    ambiguous: bool
    reason: str


@dataclass(frozen=True)
class Context:
    """Words around a trigger that raise, lower or cap its severity, or only hedge it."""

    id: str
    effect: str
    weight: float
    cap: int
    unless: frozenset[str]
    tag: str
    applies: frozenset[str]
    negatable: bool
    reason: str
    sentence_only: bool = False  # counts only next to a trigger in the same sentence


@dataclass(frozen=True)
class Benign:
    """A harmless idiom: hides the triggers it overlaps (or ambiguous ones in its sentence)."""

    id: str
    scope: str
    categories: frozenset[str]
    reason: str


Rule = Trigger | Context | Benign


@dataclass(frozen=True)
class Hit:
    """One match of a rule, in normalized-text offsets."""

    rule: Rule
    start: int
    end: int


def build_rule(entry: Entry, context_names: set[str]) -> Rule:
    """The compiled form of a validated rule, context or benign entry."""
    t, where = entry.table, entry.where
    if entry.kind == "rule":
        level = LEVELS[t["severity"]]
        return Trigger(
            id=t["id"],
            category=t["category"],
            level=level,
            max_level=LEVELS[t.get("max", t["severity"])],
            weight=float(t.get("weight", 1.0)),
            negatable=t.get("negatable", False),
            ambiguous=t.get("ambiguous", False),
            reason=t["reason"],
        )
    if entry.kind == "context":
        unknown = [u for u in t.get("unless", []) if u not in context_names]
        if unknown:
            raise TriageRulesError(f"{where}: field 'unless': no context id or tag {unknown[0]!r}")
        return Context(
            id=t["id"],
            effect=t["effect"],
            weight=float(t.get("weight", 1.0)),
            cap=LEVELS.get(t.get("cap", "critical"), 3),
            unless=frozenset(t.get("unless", [])),
            tag=t.get("tag", t["id"]),
            applies=frozenset(t.get("applies", [])),
            negatable=t.get("negatable", False),
            reason=t["reason"],
            sentence_only=t.get("scope", "message") == "sentence",
        )
    return Benign(
        id=t["id"],
        scope=t.get("scope", "overlap"),
        categories=frozenset(t.get("categories", [])),
        reason=t["reason"],
    )
