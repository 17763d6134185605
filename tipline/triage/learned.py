"""The learned layer: two linear models (severity, category) over word and character n-grams.

The model is plain data, `model/linear.json.gz` (package data, written by `tipline triage
--train`): the sorted vocabularies, their inverse document frequencies, the rounded weights and
the thresholds chosen on a validation split of the training corpus. No pickle, so a numpy or
Python upgrade cannot break it; inference is numpy alone, offline, loaded once per process.

Features are TF-IDF: (1 + log count) x idf, each block (words, characters) scaled to unit length,
as in training (`tipline.triage.train`).
"""

from __future__ import annotations

import functools
import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tipline.triage.concepts import Concepts
from tipline.triage.features import CONCEPT, grams_of_word, word_grams
from tipline.triage.verdict import Verdict

__all__ = [
    "MODEL_PATH",
    "LinearModel",
    "Prediction",
    "Vectorizer",
    "default_model",
    "rule_tokens",
    "with_concepts",
]

MODEL_PATH = Path(__file__).resolve().parent / "model" / "linear.json.gz"
FORMAT = 3  # 3: the rules' verdict is read as words too

_Array = npt.NDArray[np.float64]
_BREAKS = frozenset({".", ","})
_SERIOUS = frozenset({"critical", "high"})
_WORD_CACHE = 1 << 16


@dataclass(frozen=True)
class Prediction:
    """The model's probabilities and the severity its thresholds give."""

    severity: str
    category: str
    severity_probs: dict[str, float]
    category_probs: dict[str, float]

    @property
    def confidence(self) -> float:
        """The probability behind `severity` (critical, or critical and high together)."""
        p = self.severity_probs
        if self.severity == "critical":
            return p["critical"]
        if self.severity == "high":
            return p["critical"] + p["high"]
        return p[self.severity]


class _Head:
    """One multinomial logistic regression: class names, weights (features x classes), biases."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.classes: tuple[str, ...] = tuple(data["classes"])
        self.coef: _Array = np.asarray(data["coef"], dtype=np.float64)
        self.intercept: _Array = np.asarray(data["intercept"], dtype=np.float64)

    def probs(self, idx: npt.NDArray[np.intp], values: _Array) -> dict[str, float]:
        scores = values @ self.coef[idx] + self.intercept
        exp = np.exp(scores - scores.max())
        p = exp / exp.sum()
        return dict(zip(self.classes, map(float, p), strict=True))


class Vectorizer:
    """TF-IDF over the two vocabularies; what training and inference both use."""

    def __init__(self, words: list[str], chars: list[str], idf: list[float]) -> None:
        self.words = {w: i for i, w in enumerate(words)}
        self.chars = {c: i + len(words) for i, c in enumerate(chars)}
        self.idf: _Array = np.asarray(idf, dtype=np.float64)
        self._word_chars: dict[str, npt.NDArray[np.intp]] = {}

    def vector(self, text: str) -> tuple[npt.NDArray[np.intp], _Array]:
        """The feature indexes and TF-IDF values of a normalized text."""
        tokens = Counter(text.split())
        blocks = [_block(*_known(word_grams(text), self.words))]
        blocks.append(self._char_block(tokens))
        idx = [i for i, _ in blocks if len(i)]
        if not idx:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        values = [self._tfidf(i, c) for i, c in blocks if len(i)]
        return np.concatenate(idx), np.concatenate(values)

    def _tfidf(self, idx: npt.NDArray[np.intp], counts: _Array) -> _Array:
        v = (1.0 + np.log(counts)) * self.idf[idx]
        return v / np.sqrt(v @ v)

    def _char_block(self, tokens: Counter[str]) -> tuple[npt.NDArray[np.intp], _Array]:
        """The known character n-grams of the distinct words, counted once per word (each
        word's indexes are cached: tips repeat their words, a 10 KB message most of all)."""
        parts: list[npt.NDArray[np.intp]] = []
        repeats: list[int] = []
        for word, n in tokens.items():
            known = self._word_chars.get(word)
            if known is None:
                known = self._known_chars(word)
            if len(known):
                parts.append(known)
                repeats.append(n)
        if not parts:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        if len(parts) == 1 and repeats[0] == 1:
            idx, counts = np.unique(parts[0], return_counts=True)
            return idx, counts.astype(np.float64)
        weights = np.repeat(np.asarray(repeats, dtype=np.float64), [len(p) for p in parts])
        idx, inverse = np.unique(np.concatenate(parts), return_inverse=True)
        return idx, np.bincount(inverse, weights=weights).astype(np.float64)

    def _known_chars(self, word: str) -> npt.NDArray[np.intp]:
        if word in _BREAKS or word.startswith(CONCEPT):
            known: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        else:
            get = self.chars.get
            found = [j for j in map(get, grams_of_word(word)) if j is not None]
            known = np.asarray(found, dtype=np.intp)
        if len(self._word_chars) >= _WORD_CACHE:
            self._word_chars.clear()
        self._word_chars[word] = known
        return known


def _block(idx: list[int], counts: list[int]) -> tuple[npt.NDArray[np.intp], _Array]:
    return np.asarray(idx, dtype=np.intp), np.asarray(counts, dtype=np.float64)


class LinearModel:
    """The learned layer, ready to predict."""

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"triage model format {data.get('format')!r}, expected {FORMAT}")
        self.vectorizer = Vectorizer(data["words"], data["chars"], data["idf"])
        self.severity = _Head(data["severity"])
        self.category = _Head(data["category"])
        self.thresholds: dict[str, float] = dict(data["thresholds"])
        self.meta: dict[str, Any] = dict(data.get("meta", {}))

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return cls(json.load(f))

    def predict(
        self, text: str, concepts: Concepts | None = None, ruled: Verdict | None = None
    ) -> Prediction:
        """Severity and category of a normalized text (`Normalized.text`), given its concepts
        and the rules' verdict on it (both read as extra words, see `with_concepts`)."""
        idx, values = self.vectorizer.vector(with_concepts(text, concepts, ruled))
        sev = self.severity.probs(idx, values)
        cat = self.category.probs(idx, values)
        if not len(idx):  # nothing it knows: its probabilities would be its priors alone
            return Prediction("low", "other", sev, cat)
        severity = self.severity_of(sev, urgent=concepts is not None and concepts.urgent)
        return Prediction(severity, max(cat, key=cat.__getitem__), sev, cat)

    def severity_of(self, p: dict[str, float], *, urgent: bool = False) -> str:
        """Critical above its threshold (a lower one for an urgent text), high when critical and
        high together are above theirs or one of them is the likeliest class, else the likelier
        of normal and low."""
        critical = self.thresholds["critical_urgent" if urgent else "critical"]
        if p["critical"] >= critical:
            return "critical"
        likeliest = max(p, key=p.__getitem__)
        if p["critical"] + p["high"] >= self.thresholds["high"] or likeliest in _SERIOUS:
            return "high"
        return "normal" if p["normal"] >= p["low"] else "low"


def with_concepts(text: str, concepts: Concepts | None, ruled: Verdict | None = None) -> str:
    """The text the model reads: the normalized text, then its concept words, then the rules'
    verdict as words ("§rhigh §rcweapon §idweapon_firearm"), so the model learns when a rule
    is right about a tip and when its wording says more (it still never lowers the rules)."""
    words = concepts.tokens() if concepts is not None else ""
    if ruled is not None:
        words = f"{words} {rule_tokens(ruled)}" if words else rule_tokens(ruled)
    return f"{text} {words}" if words else text


def rule_tokens(ruled: Verdict) -> str:
    """The rules' severity, and when a rule matched, their category and the rules' ids."""
    if not ruled.spans:
        return f"{CONCEPT}r{ruled.severity}"
    ids = sorted({span.rule.replace(".", "_") for span in ruled.spans})
    return " ".join(
        [f"{CONCEPT}r{ruled.severity}", f"{CONCEPT}rc{ruled.category}"]
        + [f"{CONCEPT}id{rule_id}" for rule_id in ids]
    )


def _known(grams: Counter[str], vocab: dict[str, int]) -> tuple[list[int], list[int]]:
    idx: list[int] = []
    counts: list[int] = []
    get = vocab.get
    for gram, count in grams.items():
        j = get(gram)
        if j is not None:
            idx.append(j)
            counts.append(count)
    return idx, counts


@functools.cache
def default_model() -> LinearModel | None:
    """The packaged model, loaded on first use; None when none has been trained yet."""
    if not MODEL_PATH.exists():
        return None
    return LinearModel.load(MODEL_PATH)
