"""Triage in layers: the rules are the floor, the learned model may only raise the verdict.

1. The rules (`classifier.py`) give a verdict with the words that matched.
2. The model (`learned.py`) gives its own severity from thresholds chosen for critical recall.
3. The tip takes the higher severity. The model's category replaces the rules' only when the
   rules matched nothing or the model raised the severity: a rule that matched says what the tip
   is about better than a bag of n-grams, unless it missed how serious the tip is.
4. Concepts (`concepts.py`) compose what neither layer says alone: a harm that is immediate or
   concerns someone vulnerable lets the model call critical at a lower threshold; a benign frame
   with nothing immediate reads a rule's critical as high; a harm neither layer places at high
   is rounded up to high when the model is not sure it is harmless; a life in danger now (a
   body in crisis, someone shut in who cannot get out), outside a benign frame and not over or
   only asked about, is critical whatever either layer said.

Each reason line says which layer decided, so staff can see why a tip paged the SRO.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from tipline.triage.classifier import classify_normalized
from tipline.triage.concepts import Concepts, default_concepts
from tipline.triage.learned import LinearModel, Prediction, default_model
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import LEVELS, SEVERITIES, Verdict

__all__ = ["DEFAULT", "classify", "combine"]

ABOUT: Final = {
    "weapon": "a weapon",
    "violence": "violence or a threat",
    "self_harm": "self-harm",
    "abuse": "abuse",
    "bullying": "bullying",
    "drugs": "drugs",
    "other": "a safety concern",
}


_HIGH = LEVELS["high"]
_CRITICAL = LEVELS["critical"]
UNSURE = 0.1  # p(critical or high) from which an unplaced harm rounds up (chosen on train CV)
# harms to a life that round up even when the model is sure the tip is harmless: their words
# ("on the bridge", "not breathing", "se lo llevaron") are rarely idle, and a counselor or an
# SRO reading one the same day costs little
ALWAYS_HIGH: Final = frozenset({"self_harm", "overdose", "medical", "abduction"})
NO_CONCEPTS: Final = Concepts((), immediate=False, vulnerable=False, frame="")


class _Default:
    """The packaged model (a sentinel, so `model=None` can mean the rules alone)."""


DEFAULT: Final = _Default()


def classify(
    text: str,
    lang: str | None = None,
    rules: RuleSet | None = None,
    model: LinearModel | _Default | None = DEFAULT,
) -> Verdict:
    """Triage one tip: severity, category, language, reasons shown to staff, matched spans.

    `model=None` gives the rules' verdict alone; the default is the packaged model.
    """
    ruleset = rules if rules is not None else default_rules()
    norm = ruleset.normalizer.normalize(text)
    ruled = classify_normalized(norm, ruleset, lang)
    learned = default_model() if isinstance(model, _Default) else model
    if learned is None:
        return ruled
    concepts = default_concepts().find(norm.text)
    return combine(ruled, learned.predict(norm.text, concepts, ruled), concepts)


def combine(ruled: Verdict, prediction: Prediction, concepts: Concepts = NO_CONCEPTS) -> Verdict:
    """The rules' verdict (a critical in a benign frame read as high), raised by the model's
    prediction, never lowered by it; an unplaced harm rounded up to high."""
    floor, lines = _floor(ruled, concepts)
    matched = bool(ruled.spans)
    level = max(floor, LEVELS[prediction.severity])
    raised = LEVELS[prediction.severity] > floor
    category = ruled.category
    if raised or not matched:
        category = prediction.category
        if raised or category != ruled.category:
            lines.insert(
                0,
                f"model: reads like tips about {ABOUT[category]} "
                f"({prediction.severity} {prediction.confidence:.2f})",
            )
    urgent = _urgent_line(concepts) if level < _CRITICAL else None
    if urgent is not None:
        level = _CRITICAL
        if not matched:
            category = prediction.category
        lines.insert(0, urgent)
    if level < _HIGH and concepts.harms and (not concepts.benign or concepts.vulnerable):
        sure = prediction.severity_probs["critical"] + prediction.severity_probs["high"]
        if sure >= UNSURE or not ALWAYS_HIGH.isdisjoint(concepts.harms):
            level = _HIGH
            lines.insert(
                0,
                f"concepts: mentions {', '.join(h.replace('_', ' ') for h in concepts.harms)} "
                f"that neither layer could place: rounded up to high ({sure:.2f})",
            )
    if not lines:
        return ruled
    reasons = (*lines, *(ruled.reasons if matched else ()))
    severity = SEVERITIES[len(SEVERITIES) - 1 - level]
    return replace(ruled, severity=severity, category=category, reasons=reasons)


def _urgent_line(concepts: Concepts) -> str | None:
    """The reason a tip is critical whatever either layer said, if its concepts give one: a
    life in danger now, or a harm with a time that is near."""
    if concepts.in_crisis:
        return f'concepts: a life in danger now ("{concepts.crisis}"): critical'
    if concepts.imminent:
        return f"concepts: {concepts.imminent.replace('_', ' ')} with a time that is near: critical"
    return None


def _floor(ruled: Verdict, concepts: Concepts) -> tuple[int, list[str]]:
    """The rules' level, a critical lowered to high by a benign frame when nothing is immediate
    (a game, a film, a class, a past event that is over; a hedge such as "jk" is no frame)."""
    level = LEVELS[ruled.severity]
    if level == _CRITICAL and concepts.frame and not concepts.immediate:
        return _HIGH, [f'concepts: a benign frame ("{concepts.frame}"), nothing immediate: high']
    return level, []
