"""The rules meet the targets on the labelled tips, and the report shows what staff need."""

from __future__ import annotations

import pytest

from tests.triage.conftest import OWN_TIPS, PUBLIC_TIPS, read_jsonl
from tipline.triage import EvalReport, evaluate


@pytest.fixture(scope="module")
def public() -> EvalReport:
    return evaluate(read_jsonl(PUBLIC_TIPS))


@pytest.fixture(scope="module")
def own() -> EvalReport:
    return evaluate(read_jsonl(OWN_TIPS))


def assert_floors(report: EvalReport) -> None:
    critical = report.score("critical")
    assert critical.recall is not None
    assert critical.recall >= 0.97
    assert critical.precision is not None
    assert critical.precision >= 0.85
    assert report.critical_as_normal_or_low == 0
    assert report.severity_accuracy >= 0.85
    assert report.category_accuracy >= 0.80


def test_the_public_tips_are_the_published_set() -> None:
    rows = read_jsonl(PUBLIC_TIPS)
    assert len(rows) == 220
    assert all({"text", "severity", "category", "lang"} <= row.keys() for row in rows)


def test_public_tips_meet_the_floors(public: EvalReport) -> None:
    assert public.total == 220
    assert_floors(public)


def test_spanish_is_as_good_as_english_on_the_public_tips(public: EvalReport) -> None:
    _, en_severity, en_category = public.by_language["en"]
    _, es_severity, es_category = public.by_language["es"]
    assert es_severity >= min(0.85, en_severity)
    assert es_category >= min(0.80, en_category)


def test_our_own_english_and_spanish_tips_meet_the_floors(own: EvalReport) -> None:
    # written independently of the public file, a third of them in Spanish
    assert own.by_language["es"][0] >= 100
    assert_floors(own)
    _, es_severity, es_category = own.by_language["es"]
    assert es_severity >= 0.85
    assert es_category >= 0.80


def test_report_lists_confusion_scores_and_missed_serious_tips() -> None:
    rows = [
        {
            "id": "a",
            "text": "he has a gun in his locker right now",
            "severity": "critical",
            "category": "weapon",
        },
        {"id": "b", "text": "what time is lunch", "severity": "high", "category": "other"},
        {"id": "c", "text": "somebody stole my bike", "severity": "normal", "category": "other"},
    ]
    report = evaluate(rows)
    assert report.severity_confusion[("high", "low")] == 1
    assert report.score("critical").precision == 1.0
    assert report.score("high").recall == 0.0
    assert [miss.id for miss in report.false_negatives] == ["b"]
    text = report.format()
    assert "severity (rows: expected, columns: predicted)" in text
    assert "precision  recall" in text
    assert "[b] high -> low (other -> other): what time is lunch" in text


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no rows"),
        ([{"text": "x", "severity": "urgent", "category": "other"}], "unknown label"),
        ([{"text": "x", "category": "other"}], "row 1: missing or non-text 'severity'"),
    ],
)
def test_evaluate_rejects_bad_rows(rows: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(rows)
