"""The labelled corpus in the repository: well-formed, big enough, Spanish enough, split apart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.triage.conftest import FROZEN, TRAIN
from tipline.triage.corpus import CorpusError, read_corpus, read_examples


def test_corpus_is_well_formed_large_and_one_fifth_spanish() -> None:
    train = read_corpus(TRAIN)
    frozen = read_corpus(FROZEN)
    everything = train + frozen
    assert len(everything) >= 3000
    langs = Counter(example.lang for example in everything)
    assert langs["es"] / len(everything) >= 0.20
    assert {example.id for example in train}.isdisjoint({example.id for example in frozen})


def test_no_frozen_text_is_trained_on_except_the_public_greetings() -> None:
    frozen = {e.text.strip().lower() for e in read_corpus(FROZEN)}
    train = {e.text.strip().lower() for e in read_corpus(TRAIN)}
    shared = train & frozen
    assert shared <= {"hi", "who runs this thing"}  # two greetings in the published file


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"text": "x", "category": "other"}', "missing or empty 'severity'"),
        ('{"text": " ", "severity": "low", "category": "other"}', "missing or empty 'text'"),
        ('{"text": "x", "severity": "urgent", "category": "other"}', "unknown severity 'urgent'"),
        ('{"text": "x", "severity": "low", "category": "fun"}', "unknown category 'fun'"),
        ('{"text": "x", "severity": "low", "category": "other", "lang": "fr"}', "unknown lang"),
    ],
)
def test_a_malformed_line_is_rejected_with_its_file_and_line_number(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "tips.jsonl"
    good = '{"id": "a", "text": "hi", "severity": "low", "category": "other", "lang": "en"}'
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"tips\.jsonl:3: {message}"):
        read_examples(path)


def test_a_duplicate_id_names_both_places(tmp_path: Path) -> None:
    row = '{"id": "a", "text": "hi", "severity": "low", "category": "other"}\n'
    (tmp_path / "a.jsonl").write_text(row, encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(row, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"b\.jsonl:1: id 'a' already at .*a\.jsonl:1"):
        read_corpus(tmp_path)


def test_corrections_without_a_language_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "corrections.jsonl"
    path.write_text(
        '{"id": "s-1", "text": "x", "severity": "high", "category": "abuse",'
        ' "triage_severity": "low", "triage_category": "other"}\n',
        encoding="utf-8",
    )
    [example] = read_examples(path)
    assert (example.severity, example.lang) == ("high", None)
