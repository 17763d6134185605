"""Concepts the layers compose: harm x immediacy x vulnerability x a benign frame (en and es).

The words live in `rules/concepts.toml`. They do not make a verdict on their own: they decide
two things the rules and the model cannot say alone (see `layered.py`):

- when unsure, round up: a harm that neither layer places at high or above, with no benign frame,
  makes the tip high (a person reads it the same day);
- a benign frame (a game, a sport, a film, a class, a past event that is over) with nothing
  immediate may lower a rule's critical to high, never lower, and never the model's;
- a life in danger as the tip is written (a body in crisis, someone shut in who cannot get
  out), outside a benign frame and not settled (over, or only asked about), is critical.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tipline.triage.normalize import Normalizer

__all__ = ["CONCEPTS_PATH", "Concepts", "ConceptSet", "default_concepts"]

CONCEPTS_PATH = Path(__file__).resolve().parent / "rules" / "concepts.toml"
HARMS = (
    "weapon",
    "explosive",
    "fire",
    "overdose",
    "medical",
    "abduction",
    "sexual",
    "violence",
    "self_harm",
    "impaired",
    "mass",
)
# harms that a time of today or tomorrow makes critical (`Concepts.imminent`)
SOON_HARMS = frozenset({"self_harm", "weapon", "explosive"})


@dataclass(frozen=True)
class Concepts:
    """What a tip mentions, as concepts."""

    harms: tuple[str, ...]
    immediate: bool
    vulnerable: bool
    frame: str  # the benign frame's words as normalized, or ""
    crisis: str = ""  # the words of a life in danger now, as normalized, or ""
    settled: bool = False  # it is over, only asked about, or a figure of speech
    soon: bool = False  # today or tomorrow, said outright
    calm: bool = False  # words that take a threat back ("not gonna")

    @property
    def imminent(self) -> str:
        """The harm a time makes critical: one's own life, a weapon or a device today or
        tomorrow, or a threat to many with a day named; "" when none (or framed, settled, or
        taken back)."""
        if self.frame or self.settled or self.calm:
            return ""
        if self.soon:
            for harm in self.harms:
                if harm in SOON_HARMS:
                    return harm
        if "mass" in self.harms and self.immediate:
            return "mass"
        return ""

    @property
    def in_crisis(self) -> bool:
        """A life in danger now: crisis words, no benign frame, nothing saying it is over."""
        return bool(self.crisis) and not self.frame and not self.settled

    @property
    def benign(self) -> bool:
        return bool(self.frame)

    def tokens(self) -> str:
        """The concepts as words the model reads beside the text ("§weapon §now §urgent"):
        one word each, so the model learns their combinations as word pairs."""
        flags = (
            ("§now", self.immediate),
            ("§young", self.vulnerable),
            ("§frame", self.benign),
            ("§urgent", self.urgent),
            ("§crisis", self.in_crisis),
            ("§imminent", bool(self.imminent)),
        )
        return " ".join([f"§{harm}" for harm in self.harms] + [w for w, on in flags if on])

    @property
    def urgent(self) -> bool:
        """A harm that is immediate or concerns someone vulnerable, outside a benign frame."""
        return bool(self.harms) and (self.immediate or self.vulnerable) and not self.frame


class ConceptSet:
    """The concept word lists compiled to regular expressions over normalized text."""

    def __init__(self, data: dict[str, dict[str, list[str]]], normalizer: Normalizer) -> None:
        unknown = set(data["harm"]) - set(HARMS)
        if unknown:
            raise ValueError(f"{CONCEPTS_PATH.name}: unknown harm {sorted(unknown)[0]!r}")
        self.harms = {name: _compile(data["harm"][name], normalizer) for name in data["harm"]}
        self.immediacy = _compile(data["immediacy"]["words"], normalizer)
        self.vulnerability = _compile(data["vulnerability"]["words"], normalizer)
        self.benign = _compile(data["benign"]["words"], normalizer)
        self.crisis = _compile(data["crisis"]["words"], normalizer)
        self.settled = _compile(data["settled"]["words"], normalizer)
        self.soon = _compile(data["soon"]["words"], normalizer)
        self.calm = _compile(data["calm"]["words"], normalizer)

    def find(self, text: str) -> Concepts:
        """The concepts in a normalized text (`Normalized.text`)."""
        harms = tuple(name for name, pattern in self.harms.items() if pattern.search(text))
        crisis = self.crisis.search(text)
        if not harms and crisis is None:
            return Concepts((), immediate=False, vulnerable=False, frame="")
        frame = self.benign.search(text)
        return Concepts(
            harms,
            immediate=self.immediacy.search(text) is not None,
            vulnerable=self.vulnerability.search(text) is not None,
            frame=frame.group() if frame else "",
            crisis=crisis.group() if crisis else "",
            settled=self.settled.search(text) is not None,
            soon=self.soon.search(text) is not None,
            calm=self.calm.search(text) is not None,
        )


def _compile(phrases: list[str], normalizer: Normalizer) -> re.Pattern[str]:
    """One alternation of the phrases, each word normalized like tip text; `word*` a prefix,
    `#` a number; phrases match whole tokens."""
    alternatives = set()
    for phrase in phrases:
        parts = []
        for word in phrase.split():
            if word == "#":
                parts.append(r"\d+")
                continue
            stem = word.rstrip("*")
            tokens = [t for t in normalizer.normalize(stem).text.split() if t not in (".", ",")]
            if not tokens:
                raise ValueError(f"{CONCEPTS_PATH.name}: {phrase!r} has no word to match")
            parts.append(" ".join(map(re.escape, tokens)) + (r"\S*" if word.endswith("*") else ""))
        alternatives.add(" ".join(parts))
    body = "|".join(sorted(alternatives, key=lambda a: (-len(a), a)))
    return re.compile(rf"(?<!\S)(?:{body})(?!\S)")


@functools.cache
def default_concepts() -> ConceptSet:
    """The packaged concepts, compiled once per process."""
    from tipline.triage.ruleset import default_rules  # noqa: PLC0415 - the same normalizer

    with CONCEPTS_PATH.open("rb") as f:
        data = tomllib.load(f)
    return ConceptSet(data, default_rules().normalizer)
