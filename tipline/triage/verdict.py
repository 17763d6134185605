"""The triage verdict: labels, what matched, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CATEGORIES", "LEVELS", "SEVERITIES", "Span", "TriageRulesError", "Verdict"]

SEVERITIES = ("critical", "high", "normal", "low")
CATEGORIES = ("weapon", "violence", "self_harm", "abuse", "bullying", "drugs", "other")
LEVELS = {s: level for level, s in enumerate(reversed(SEVERITIES))}  # low 0 … critical 3


class TriageRulesError(ValueError):
    """A rules file or a district's `[triage]` table is invalid; the message names where."""


@dataclass(frozen=True)
class Span:
    """A matched stretch of the original text (offsets into the text as the student wrote it)."""

    start: int
    end: int
    text: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "rule": self.rule}


@dataclass(frozen=True)
class Verdict:
    """Severity, category and language of a tip, with plain-words reasons shown to staff."""

    severity: str
    category: str
    language: str
    reasons: tuple[str, ...]
    spans: tuple[Span, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "category": self.category,
            "language": self.language,
            "reasons": list(self.reasons),
            "spans": [span.to_dict() for span in self.spans],
        }
