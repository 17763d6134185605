"""Training the learned layer (needs the `train` extra: scikit-learn); inference does not.

Deterministic: the vocabulary is sorted, ties broken by the n-gram itself, the validation split
is seeded, the solver (lbfgs) has no randomness, and every number written is rounded, so the
same corpus gives a byte-identical `linear.json.gz` (gzip without a timestamp).

The thresholds are chosen on out-of-fold predictions of the whole training corpus (k seeded,
stratified folds; never the frozen split): the pair of critical thresholds (plain, and lower
for a text whose concepts are urgent) with the best precision at which the rules and the model
together still find `CRITICAL_RECALL` of the critical tips; then the highest for "high or
above".
The final weights are then fitted on the whole training corpus.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tipline.triage.classifier import classify_normalized
from tipline.triage.concepts import default_concepts
from tipline.triage.corpus import Example
from tipline.triage.features import char_grams, word_grams
from tipline.triage.learned import FORMAT, LinearModel, Vectorizer, with_concepts
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import CATEGORIES, LEVELS, SEVERITIES

__all__ = ["fit", "oof_predictions", "train_model", "write_model"]

SEED = 13
THRESHOLD_FOLDS = 5
MIN_DF = 2
MAX_WORDS = 40_000
MAX_CHARS = 60_000
C = 10.0
CRITICAL_RECALL = 0.96  # on out-of-fold predictions; 0.97 left CV precision at 0.741 (6,764 tips)
HIGH_RECALL = 0.95
DIGITS = 4

_Array = npt.NDArray[np.float64]


def train_model(examples: Sequence[Example], rules: RuleSet | None = None) -> dict[str, Any]:
    """The model data for `examples`: thresholds from a validation split, weights from all."""
    ruleset = rules if rules is not None else default_rules()
    norms = [ruleset.normalizer.normalize(e.text) for e in examples]
    ruled = [classify_normalized(n, ruleset) for n in norms]
    floors = [LEVELS[v.severity] for v in ruled]
    found = [default_concepts().find(n.text) for n in norms]
    urgent = [c.urgent for c in found]
    texts = [with_concepts(n.text, c, v) for n, c, v in zip(norms, found, ruled, strict=True)]
    # Every tip is predicted once by a model that did not see it (k folds), so the thresholds
    # are chosen on the whole corpus rather than on one fifth of it: a single 20% split moved
    # the critical threshold by up to 0.08 between two nearly equal corpora.
    val_idx: list[int] = []
    probs: list[dict[str, float]] = []
    for fit_idx, test_idx in folds(examples, THRESHOLD_FOLDS):
        model = LinearModel(fit([texts[i] for i in fit_idx], [examples[i] for i in fit_idx], None))
        val_idx += test_idx
        probs += [model.severity.probs(*model.vectorizer.vector(texts[i])) for i in test_idx]
    thresholds = choose_thresholds(
        probs,
        [examples[i].severity for i in val_idx],
        [floors[i] for i in val_idx],
        [urgent[i] for i in val_idx],
    )
    data = fit(texts, list(examples), thresholds)
    data["meta"] = {
        "examples": len(examples),
        "threshold_folds": THRESHOLD_FOLDS,
        "seed": SEED,
        "critical_recall_target": CRITICAL_RECALL,
    }
    return data


def fit(
    texts: Sequence[str], examples: Sequence[Example], thresholds: dict[str, float] | None
) -> dict[str, Any]:
    """Vocabulary, idf and both heads fitted on normalized `texts` (rounded, sorted)."""
    from scipy.sparse import csr_matrix  # noqa: PLC0415 - training only
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - training only

    word_df = _document_frequency(map(word_grams, texts))
    char_df = _document_frequency(map(char_grams, texts))
    words = _vocabulary(word_df, MAX_WORDS)
    chars = _vocabulary(char_df, MAX_CHARS)
    n = len(texts)
    idf = [_idf(n, word_df[g]) for g in words] + [_idf(n, char_df[g]) for g in chars]
    vectorizer = Vectorizer(words, chars, idf)
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        idx, values = vectorizer.vector(text)
        rows.extend([i] * len(idx))
        cols.extend(idx.tolist())
        vals.extend(values.tolist())
    x = csr_matrix((vals, (rows, cols)), shape=(n, len(idf)))
    heads = {}
    for name, labels, classes in (
        ("severity", [e.severity for e in examples], SEVERITIES),
        ("category", [e.category for e in examples], CATEGORIES),
    ):
        clf = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        clf.fit(x, labels)
        order = [list(clf.classes_).index(c) for c in classes]
        heads[name] = {
            "classes": list(classes),
            "coef": [[round(float(w), DIGITS) for w in row] for row in clf.coef_[order].T],
            "intercept": [round(float(b), DIGITS) for b in clf.intercept_[order]],
        }
    return {
        "format": FORMAT,
        "words": words,
        "chars": chars,
        "idf": idf,
        **heads,
        "thresholds": thresholds or {"critical": 0.5, "critical_urgent": 0.5, "high": 0.5},
    }


def choose_thresholds(
    probs: Sequence[dict[str, float]],
    labels: Sequence[str],
    floors: Sequence[int],
    urgent: Sequence[bool],
) -> dict[str, float]:
    """Thresholds at which rules-or-model keep the target recalls on `labels`: for critical,
    the pair (plain, urgent) with the best precision at CRITICAL_RECALL; then the highest
    threshold for "high or above" at HIGH_RECALL."""
    grid = [i / 100 for i in range(90, 4, -2)]  # steps of 0.02
    is_crit = [label == "critical" for label in labels]
    needed = CRITICAL_RECALL * sum(is_crit)
    best: tuple[float, float, float, float] = (-1.0, 0.0, grid[-1], grid[-1])
    for plain in grid:
        for lower in (t for t in grid if t <= plain):
            said = [
                floor == LEVELS["critical"] or p["critical"] >= (lower if u else plain)
                for floor, p, u in zip(floors, probs, urgent, strict=True)
            ]
            found = sum(s and c for s, c in zip(said, is_crit, strict=True))
            if found < needed:
                continue
            precision = found / max(1, sum(said))
            best = max(best, (precision, found, plain, lower))
    _, _, plain, lower = best
    chosen = {"critical": plain, "critical_urgent": lower, "high": grid[-1]}
    serious = [i for i, label in enumerate(labels) if label in ("critical", "high")]
    for t in grid:
        found = sum(
            floors[i] >= LEVELS["high"]
            or probs[i]["critical"] >= (lower if urgent[i] else plain)
            or probs[i]["critical"] + probs[i]["high"] >= t
            for i in serious
        )
        if found >= HIGH_RECALL * len(serious):
            chosen["high"] = t
            break
    return chosen


def oof_predictions(
    examples: Sequence[Example], k: int, rules: RuleSet | None = None
) -> list[LinearModel]:
    """For k stratified folds, the model trained (thresholds included) without each fold;
    `folds(examples, k)` gives which examples each one must be tested on."""
    return [
        LinearModel(train_model([examples[i] for i in train_idx], rules))
        for train_idx, _ in folds(examples, k)
    ]


def folds(examples: Sequence[Example], k: int) -> list[tuple[list[int], list[int]]]:
    """Stratified (severity x language), seeded k-fold indexes."""
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 - training only

    strata = [f"{e.severity}/{e.lang}" for e in examples]
    if min(Counter(strata).values()) < k:  # a small corpus (a district's own): severity alone
        strata = [e.severity for e in examples]
        k = max(2, min(k, *Counter(strata).values()))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED)
    return [(a.tolist(), b.tolist()) for a, b in splitter.split(np.zeros(len(examples)), strata)]


def write_model(data: dict[str, Any], path: Path) -> int:
    """Write the model as gzip'd compact JSON (no timestamp, sorted keys); returns its size."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    blob = gzip.compress(raw.encode("utf-8"), compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return len(blob)


def _document_frequency(grams: Iterable[Counter[str]]) -> Counter[str]:
    df: Counter[str] = Counter()
    for g in grams:
        df.update(g.keys())
    return df


def _idf(n: int, df: int) -> float:
    """Smoothed inverse document frequency, as scikit-learn's TfidfVectorizer has it."""
    return round(math.log((1 + n) / (1 + df)) + 1.0, DIGITS)


def _vocabulary(df: Counter[str], limit: int) -> list[str]:
    """The `limit` most frequent n-grams seen in MIN_DF texts or more, sorted."""
    kept = sorted((-n, gram) for gram, n in df.items() if n >= MIN_DF)[:limit]
    return sorted(gram for _, gram in kept)
