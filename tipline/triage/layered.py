"""Triage in layers: the rules are the floor, the learned model may only raise the verdict.

1. The rules (`classifier.py`) give a verdict with the words that matched.
2. The model (`learned.py`) gives its own severity from thresholds chosen for critical recall.
3. The tip takes the higher severity. The model's category replaces the rules' only when the
   rules matched nothing or the model raised the severity: a rule that matched says what the tip
   is about better than a bag of n-grams, unless it missed how serious the tip is.

Each reason line says which layer decided, so staff can see why a tip paged the SRO.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from tipline.triage.classifier import classify_normalized
from tipline.triage.learned import LinearModel, Prediction, default_model
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import LEVELS, Verdict

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
    return combine(ruled, learned.predict(norm.text))


def combine(ruled: Verdict, prediction: Prediction) -> Verdict:
    """The rules' verdict, raised (never lowered) by the model's prediction."""
    raises = LEVELS[prediction.severity] > LEVELS[ruled.severity]
    matched = bool(ruled.spans)
    if not raises and matched:
        return ruled
    category = prediction.category
    if not raises and category == ruled.category:
        return ruled
    line = (
        f"model: reads like tips about {ABOUT[category]} "
        f"({prediction.severity} {prediction.confidence:.2f})"
    )
    severity = prediction.severity if raises else ruled.severity
    reasons = ruled.reasons if matched else ()
    return replace(ruled, severity=severity, category=category, reasons=(line, *reasons))
