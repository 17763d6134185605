"""Evaluating the rules on labelled tips: confusion matrix, precision, recall, misses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tipline.triage.classifier import classify
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import CATEGORIES, LEVELS, SEVERITIES

__all__ = ["EvalReport", "LabelScore", "Miss", "checked_rows", "evaluate", "score"]


@dataclass(frozen=True)
class LabelScore:
    """Precision and recall of one label (None when the label was never predicted/present)."""

    label: str
    precision: float | None
    recall: float | None
    support: int


@dataclass(frozen=True)
class Miss:
    """A labelled tip the rules rated less severe than its label."""

    id: str
    text: str
    expected: str
    predicted: str
    category: str
    predicted_category: str


@dataclass(frozen=True)
class EvalReport:
    """How the rules did on a labelled set."""

    total: int
    severity_confusion: Mapping[tuple[str, str], int]  # (expected, predicted) -> count
    category_confusion: Mapping[tuple[str, str], int]
    severity_scores: tuple[LabelScore, ...]
    category_scores: tuple[LabelScore, ...]
    severity_accuracy: float
    category_accuracy: float
    by_language: Mapping[str, tuple[int, float, float]]  # lang -> (n, severity acc, category acc)
    false_negatives: tuple[Miss, ...]  # critical and high tips predicted less severe
    critical_as_normal_or_low: int

    def score(self, label: str) -> LabelScore:
        """Severity score of `label` (or category score when `label` is a category)."""
        for item in (*self.severity_scores, *self.category_scores):
            if item.label == label:
                return item
        raise KeyError(label)

    def format(self) -> str:
        """A plain-text report for the terminal."""
        lines = [
            f"{self.total} tips  severity accuracy {self.severity_accuracy:.3f}  "
            f"category accuracy {self.category_accuracy:.3f}",
            "",
        ]
        lines += _matrix("severity", SEVERITIES, self.severity_confusion)
        lines += _scores(self.severity_scores)
        lines += _matrix("category", CATEGORIES, self.category_confusion)
        lines += _scores(self.category_scores)
        lines.append("by language (n, severity accuracy, category accuracy)")
        for lang, (n, sev, cat) in sorted(self.by_language.items()):
            lines.append(f"  {lang}: {n:4d}  {sev:.3f}  {cat:.3f}")
        lines.append("")
        lines.append(f"critical predicted normal or low: {self.critical_as_normal_or_low}")
        lines.append(f"false negatives of critical and high ({len(self.false_negatives)}):")
        for miss in self.false_negatives:
            text = " ".join(miss.text.split())
            lines.append(
                f"  [{miss.id}] {miss.expected} -> {miss.predicted} "
                f"({miss.category} -> {miss.predicted_category}): {text[:160]}"
            )
        return "\n".join(lines)


def evaluate(rows: Iterable[Mapping[str, str]], rules: RuleSet | None = None) -> EvalReport:
    """Classify labelled rows ({"text", "severity", "category"}, optional "id", "lang") with the
    rules alone."""
    ruleset = rules if rules is not None else default_rules()
    checked = checked_rows(rows)
    verdicts = [classify(row["text"], rules=ruleset) for row in checked]
    return score(checked, [(v.severity, v.category, v.language) for v in verdicts])


def checked_rows(rows: Iterable[Mapping[str, str]]) -> list[Mapping[str, str]]:
    checked = []
    for i, row in enumerate(rows, start=1):
        for key in ("text", "severity", "category"):
            if not isinstance(row.get(key), str):
                raise ValueError(f"row {i}: missing or non-text {key!r}")
        if row["severity"] not in LEVELS or row["category"] not in CATEGORIES:
            raise ValueError(f"row {i}: unknown label {row['severity']!r}/{row['category']!r}")
        checked.append(row)
    if not checked:
        raise ValueError("no rows to evaluate")
    return checked


def score(
    rows: Sequence[Mapping[str, str]], predicted: Sequence[tuple[str, str, str]]
) -> EvalReport:
    """The report for labelled `rows` given a (severity, category, language) for each."""
    sev: Counter[tuple[str, str]] = Counter()
    cat: Counter[tuple[str, str]] = Counter()
    per_lang: dict[str, list[int]] = {}
    misses: list[Miss] = []
    for i, (row, (severity, category, language)) in enumerate(
        zip(rows, predicted, strict=True), start=1
    ):
        sev[(row["severity"], severity)] += 1
        cat[(row["category"], category)] += 1
        stats = per_lang.setdefault(str(row.get("lang") or language), [0, 0, 0])
        stats[0] += 1
        stats[1] += row["severity"] == severity
        stats[2] += row["category"] == category
        if row["severity"] in ("critical", "high") and LEVELS[severity] < LEVELS[row["severity"]]:
            misses.append(
                Miss(
                    str(row.get("id", i)),
                    row["text"],
                    row["severity"],
                    severity,
                    row["category"],
                    category,
                )
            )
    total = len(rows)
    if total == 0:
        raise ValueError("no rows to evaluate")
    return EvalReport(
        total=total,
        severity_confusion=dict(sev),
        category_confusion=dict(cat),
        severity_scores=_label_scores(SEVERITIES, sev),
        category_scores=_label_scores(CATEGORIES, cat),
        severity_accuracy=sum(n for (a, b), n in sev.items() if a == b) / total,
        category_accuracy=sum(n for (a, b), n in cat.items() if a == b) / total,
        by_language={k: (v[0], v[1] / v[0], v[2] / v[0]) for k, v in per_lang.items()},
        false_negatives=tuple(misses),
        critical_as_normal_or_low=sev[("critical", "normal")] + sev[("critical", "low")],
    )


def _label_scores(
    labels: tuple[str, ...], counts: Counter[tuple[str, str]]
) -> tuple[LabelScore, ...]:
    out = []
    for label in labels:
        hit = counts[(label, label)]
        predicted = sum(n for (_, b), n in counts.items() if b == label)
        actual = sum(n for (a, _), n in counts.items() if a == label)
        out.append(
            LabelScore(
                label,
                hit / predicted if predicted else None,
                hit / actual if actual else None,
                actual,
            )
        )
    return tuple(out)


def _matrix(name: str, labels: tuple[str, ...], counts: Mapping[tuple[str, str], int]) -> list[str]:
    width = max(len(label) for label in labels) + 1
    head = f"{name} (rows: expected, columns: predicted)"
    lines = [head, " " * width + "".join(f"{label[:9]:>10}" for label in labels)]
    for a in labels:
        lines.append(f"{a:<{width}}" + "".join(f"{counts.get((a, b), 0):>10}" for b in labels))
    lines.append("")
    return lines


def _scores(scores: tuple[LabelScore, ...]) -> list[str]:
    def fmt(value: float | None) -> str:
        return "   -" if value is None else f"{value:.3f}"

    lines = ["label        precision  recall  support"]
    for item in scores:
        lines.append(
            f"{item.label:<12} {fmt(item.precision):>9}  {fmt(item.recall):>6}  {item.support:>7}"
        )
    lines.append("")
    return lines
