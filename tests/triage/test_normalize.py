"""Normalization: the spellings students use still reach the rules, and spans map back."""

from __future__ import annotations

import pytest

from tipline.triage import RuleSet
from tipline.triage.classifier import classify  # the rules layer alone
from tipline.triage.normalize import Normalizer


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("GUN in ROOM 114", "gun in rom 114 ."),  # case; repeated letters collapse everywhere
        ("Mañana traerá la PISTOLA", "manana traera la pistola ."),  # accents
        ("shoooot", "shot ."),  # repeated letters
        ("gunnnn", "gun ."),
        ("k1ll", "kil ."),  # leetspeak
        ("g0nn4 5h00t", "gona shot ."),
        ("$h00t", "shot ."),
        ("g u n", "gun ."),  # spaced letters
        ("k.i.l.l", "kil ."),  # dotted letters
        ("b-o-m-b", "bomb ."),
        ("don't", "dont ."),  # apostrophes
        ("9mm 11th ar15", "9m 11th ar15 ."),  # unit-like tokens keep their digits
        ("@blade_kingg07", "blade king07 ."),  # handles
        ("wait. what, now", "wait . what , now ."),  # sentence ends and commas stay as tokens
    ],
)
def test_normalization_folds_spelling_variants(raw: str, normalized: str) -> None:
    assert Normalizer().normalize(raw).text == normalized


@pytest.mark.parametrize(
    ("emoji", "word"),
    [
        ("🔫", "gun"),
        ("🔪", "knife"),
        ("💣", "bomb"),
        ("☠️", "death"),
        ("🩸", "blood"),
        ("💊", "pills"),
    ],
)
def test_meaningful_emoji_become_words(emoji: str, word: str) -> None:
    assert Normalizer().normalize(f"thurs {emoji}{emoji}").text == f"thurs {word} {word} ."


def test_aliases_fix_misspellings_and_abbreviations(rules: RuleSet) -> None:
    text = rules.normalizer.normalize("bringing it 2morrow tmrw sucide skool").text
    assert text == rules.normalizer.normalize("bringing it tomorrow tomorrow suicide school").text


def test_article_before_spaced_letters_stays_a_word(rules: RuleSet) -> None:
    assert rules.normalizer.normalize("theres a b o m b in the gym").text.split()[1:3] == [
        "a",
        "bomb",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "he has a g u n in his bag",
        "he has a g.u.n in his bag",
        "he has a gunnn in his bag",
        "he has a 🔫 in his bag",
        "he has a GUN in his bag",
        "he has a pistle in his bag",
    ],
)
def test_spaced_leet_emoji_and_misspelled_guns_still_match(text: str) -> None:
    verdict = classify(text)
    assert (verdict.severity, verdict.category) == ("critical", "weapon")


def test_leetspeak_threat_is_read_as_a_threat() -> None:
    verdict = classify("br0 s41d h3z g0nn4 5h00t up th3 sk00l m0nd4y")
    assert (verdict.severity, verdict.category) == ("critical", "weapon")


def test_spans_point_into_the_original_text() -> None:
    text = "Yo, he said he's bringing the STRAP tmrw 🔫"
    verdict = classify(text)
    assert verdict.spans
    for span in verdict.spans:
        assert text[span.start : span.end] == span.text
    assert any(span.text == "bringing the STRAP" for span in verdict.spans)


def test_original_span_covers_whole_tokens() -> None:
    norm = Normalizer().normalize("Él dijo: ¡mañana!")
    start = norm.text.index("manana")
    assert norm.original_span(start, start + len("manana")) == (10, 16)
