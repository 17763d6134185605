"""Triage figures (not a test): K-fold cross-validated on the training corpus, then the frozen
split scored once with the packaged model. Per layer (rules, model, combined), per language.

.venv/bin/python bench/triage_eval.py [K]      (needs the `train` extra; K defaults to 5)
"""

from __future__ import annotations

import sys

from tipline.triage.corpus import CORPUS_DIR, read_corpus
from tipline.triage.layer_eval import evaluate_layers, predict_rows
from tipline.triage.learned import LinearModel, default_model
from tipline.triage.train import folds, train_model


def main() -> None:
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    train = read_corpus(CORPUS_DIR / "train")
    outcomes = []
    for number, (fit_idx, test_idx) in enumerate(folds(train, k), start=1):
        model = LinearModel(train_model([train[i] for i in fit_idx]))
        rows = [train[i].row() for i in test_idx]
        outcomes += predict_rows(rows, model)
        print(f"fold {number}/{k}: thresholds {model.thresholds}", flush=True)
    print(f"\n== {k}-fold cross-validated on train ({len(train)} tips) ==")
    print(evaluate_layers(outcomes).format(details=False))
    if "--frozen" in sys.argv:
        packaged = default_model()
        assert packaged is not None, "no packaged model: run tipline triage --train"
        frozen = [e.row() for e in read_corpus(CORPUS_DIR / "frozen")]
        print(f"\n== frozen split ({len(frozen)} tips), packaged model ==")
        print(evaluate_layers(predict_rows(frozen, packaged)).format(details=False))


if __name__ == "__main__":
    main()
