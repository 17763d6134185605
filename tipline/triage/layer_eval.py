"""Evaluating the layers side by side: rules alone, model alone, combined; model calibration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tipline.triage.classifier import classify_normalized
from tipline.triage.concepts import default_concepts
from tipline.triage.evaluate import EvalReport, checked_rows, score
from tipline.triage.layered import combine
from tipline.triage.learned import LinearModel, Prediction
from tipline.triage.ruleset import RuleSet, default_rules
from tipline.triage.verdict import Verdict

__all__ = ["LayerReport", "Outcome", "evaluate_layers", "headline", "predict_rows"]

LAYERS = ("rules", "model", "combined")
BINS = 10


@dataclass(frozen=True)
class Outcome:
    """What each layer said about one labelled row."""

    row: Mapping[str, str]
    rules: Verdict
    prediction: Prediction
    combined: Verdict


@dataclass(frozen=True)
class LayerReport:
    """One report per layer, who caught the critical tips, and the model's reliability bins."""

    reports: Mapping[str, EvalReport]
    per_language: Mapping[str, EvalReport]  # the combined layers, one language at a time
    caught: Mapping[str, int]  # critical tips caught by: rules only, model only, both, neither
    bins: Sequence[tuple[float, float, int, float]]  # low, high, count, observed critical share
    mean_p: Sequence[float]  # mean predicted p(critical) per bin

    def format(self, *, details: bool = True) -> str:
        lines = [headline(name, report) for name, report in self.reports.items()]
        lines += [
            headline(f"  {lang}", report).split("  [")[0]
            for lang, report in self.per_language.items()
        ]
        lines.append("")
        lines.append(
            "critical tips caught: "
            + ", ".join(f"{k} {v}" for k, v in self.caught.items())
            + "  (a critical tip counts as caught when the layer says critical)"
        )
        lines.append("")
        lines.append("model calibration, p(critical): bin, tips, mean predicted, observed")
        for (low, high, n, observed), mean in zip(self.bins, self.mean_p, strict=True):
            if n:
                lines.append(f"  {low:.1f}-{high:.1f}  {n:5d}  {mean:.3f}  {observed:.3f}")
        worst = [m for m in self.reports["combined"].false_negatives if m.expected == "critical"]
        worst = [m for m in worst if m.predicted in ("normal", "low")]
        lines.append("")
        lines.append(f"critical tips the combined layers put at normal or low ({len(worst)}):")
        lines += [f"  [{m.id}] -> {m.predicted}: {' '.join(m.text.split())[:160]}" for m in worst]
        if details:
            lines.append("")
            lines.append("combined, in detail")
            lines.append(self.reports["combined"].format())
        return "\n".join(lines)


def headline(name: str, report: EvalReport) -> str:
    """One line of the figures that matter, per language too."""
    crit = report.score("critical")
    serious = sum(
        n
        for (a, b), n in report.severity_confusion.items()
        if a in ("critical", "high") and b in ("normal", "low")
    )
    langs = "  ".join(
        f"{lang} n={n} sev {sev:.3f} cat {cat:.3f}"
        for lang, (n, sev, cat) in sorted(report.by_language.items())
    )
    return (
        f"{name:<9} critical recall {_fmt(crit.recall)} precision {_fmt(crit.precision)}  "
        f"critical->normal/low {report.critical_as_normal_or_low}  "
        f"serious->normal/low {serious}  severity acc {report.severity_accuracy:.3f}  "
        f"category acc {report.category_accuracy:.3f}  [{langs}]"
    )


def predict_rows(
    rows: Iterable[Mapping[str, str]], model: LinearModel, rules: RuleSet | None = None
) -> list[Outcome]:
    """Each layer's verdict on each row."""
    ruleset = rules if rules is not None else default_rules()
    outcomes = []
    for row in checked_rows(rows):
        norm = ruleset.normalizer.normalize(row["text"])
        ruled = classify_normalized(norm, ruleset)
        concepts = default_concepts().find(norm.text)
        prediction = model.predict(norm.text, concepts, ruled)
        outcomes.append(Outcome(row, ruled, prediction, combine(ruled, prediction, concepts)))
    return outcomes


def evaluate_layers(outcomes: Sequence[Outcome]) -> LayerReport:
    """The per-layer report of `predict_rows` outcomes."""
    rows = [o.row for o in outcomes]
    rules = [(o.rules.severity, o.rules.category, o.rules.language) for o in outcomes]
    model = [(o.prediction.severity, o.prediction.category, o.rules.language) for o in outcomes]
    both = [(o.combined.severity, o.combined.category, o.combined.language) for o in outcomes]
    reports = {
        "rules": score(rows, rules),
        "model": score(rows, model),
        "combined": score(rows, both),
    }
    per_language: dict[str, EvalReport] = {}
    for lang in sorted({o.row.get("lang") or o.rules.language for o in outcomes}):
        mine = [
            i for i, o in enumerate(outcomes) if (o.row.get("lang") or o.rules.language) == lang
        ]
        per_language[lang] = score([rows[i] for i in mine], [both[i] for i in mine])
    caught = {"rules only": 0, "model only": 0, "both": 0, "neither": 0}
    for o in outcomes:
        if o.row["severity"] != "critical":
            continue
        by_rules = o.rules.severity == "critical"
        by_model = o.prediction.severity == "critical"
        key = {(True, False): "rules only", (False, True): "model only", (True, True): "both"}
        caught[key.get((by_rules, by_model), "neither")] += 1
    bins = []
    means = []
    for b in range(BINS):
        low, high = b / BINS, (b + 1) / BINS
        inside = [
            o
            for o in outcomes
            if low <= o.prediction.severity_probs["critical"] < high
            or (b == BINS - 1 and o.prediction.severity_probs["critical"] >= high)
        ]
        n = len(inside)
        observed = sum(o.row["severity"] == "critical" for o in inside) / n if n else 0.0
        mean = sum(o.prediction.severity_probs["critical"] for o in inside) / n if n else 0.0
        bins.append((low, high, n, observed))
        means.append(mean)
    return LayerReport(reports, per_language, caught, bins, means)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
