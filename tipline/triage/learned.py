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

from tipline.triage.features import char_grams, word_grams

__all__ = ["MODEL_PATH", "LinearModel", "Prediction", "Vectorizer", "default_model"]

MODEL_PATH = Path(__file__).resolve().parent / "model" / "linear.json.gz"
FORMAT = 1

_Array = npt.NDArray[np.float64]


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

    def vector(self, text: str) -> tuple[npt.NDArray[np.intp], _Array]:
        """The feature indexes and TF-IDF values of a normalized text."""
        idx: list[int] = []
        values: list[_Array] = []
        for grams, vocab in ((word_grams(text), self.words), (char_grams(text), self.chars)):
            block_idx, block_counts = _known(grams, vocab)
            if not block_idx:
                continue
            v = (1.0 + np.log(np.asarray(block_counts, dtype=np.float64))) * self.idf[block_idx]
            idx.extend(block_idx)
            values.append(v / np.sqrt(v @ v))
        if not idx:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        return np.asarray(idx, dtype=np.intp), np.concatenate(values)


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

    def predict(self, text: str) -> Prediction:
        """Severity and category of a normalized text (`Normalized.text`)."""
        idx, values = self.vectorizer.vector(text)
        sev = self.severity.probs(idx, values)
        cat = self.category.probs(idx, values)
        return Prediction(self.severity_of(sev), max(cat, key=cat.__getitem__), sev, cat)

    def severity_of(self, p: dict[str, float]) -> str:
        """Critical above its threshold, high when critical and high together are above theirs,
        else the likelier of normal and low."""
        if p["critical"] >= self.thresholds["critical"]:
            return "critical"
        if p["critical"] + p["high"] >= self.thresholds["high"]:
            return "high"
        return "normal" if p["normal"] >= p["low"] else "low"


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
