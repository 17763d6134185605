"""Rules are data: each kind of rule works, a district adds words, bad tables are rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tipline.triage import TriageRulesError, default_rules, load_rules
from tipline.triage.classifier import classify  # the rules layer alone


def rule(**fields: Any) -> dict[str, Any]:
    return {
        "id": "local.test",
        "category": "other",
        "severity": "high",
        "reason": "district test word",
        **fields,
    }


def verdict_with(table: dict[str, Any], text: str) -> tuple[str, str]:
    verdict = classify(text, rules=load_rules(table))
    return verdict.severity, verdict.category


def test_default_rules_are_loaded_once_and_shared() -> None:
    assert load_rules() is default_rules() is load_rules({})


@pytest.mark.parametrize(
    ("phrase", "text"),
    [
        ("zorp", "a zorp at school"),  # a plain word, matched after normalization
        ("zorp", "a Z.O.R.P at school"),
        ("zorp*", "zorping around"),  # word prefix
        ("big|huge zorp", "a huge zorp"),  # alternatives
        ("(very big|huge) zorp", "a very big zorp"),  # several-word alternatives
        ("a [big] zorp", "a zorp"),  # optional position
        ("zorp ~2 now", "zorp right over now"),  # gap
        ("zorp #", "zorp 42"),  # any number
        ("zorp * now", "zorp anything now"),  # any one word
        ("zorp {place_word}", "zorp cafeteria"),  # vocabulary list
    ],
)
def test_each_phrase_form_matches(phrase: str, text: str) -> None:
    table = {"rule": [rule(phrases=[phrase], severity="normal")]}
    assert verdict_with(table, text) == ("normal", "other")


def test_a_pattern_rule_matches_normalized_text() -> None:
    table = {"rule": [rule(patterns=[r"(?<![^ ])zorp\d{2}(?![^ ])"], category="drugs")]}
    assert verdict_with(table, "selling ZORP42 behind the gym") == ("high", "drugs")


def test_district_slang_alias_reaches_the_packaged_gun_rules() -> None:
    assert classify("he has a yoker in his backpack").severity == "low"
    table = {"aliases": {"yoker": "gun"}}
    assert verdict_with(table, "he has a yoker in his backpack") == ("critical", "weapon")


def test_district_vocabulary_extends_every_rule_using_it() -> None:
    table = {"vocab": {"firearm": ["thumper"]}}
    assert verdict_with(table, "bringing the thumper tomorrow") == ("critical", "weapon")


def test_district_building_names_count_as_places() -> None:
    text = "he said he has a gun, the annex"
    before = classify(text).severity
    after = classify(text, rules=load_rules({"places": ["the annex"]})).severity
    assert (before, after) == ("high", "critical")


def test_district_can_switch_a_rule_off() -> None:
    assert classify("somebody stole my bike").category == "other"
    assert verdict_with({"disable": ["other.theft"]}, "somebody stole my bike") == ("low", "other")


def test_an_entry_with_an_existing_id_replaces_it() -> None:
    table = {
        "rule": [
            rule(
                id="other.theft",
                phrases=["stole"],
                category="other",
                severity="high",
                reason="theft is serious here",
            )
        ]
    }
    assert verdict_with(table, "somebody stole my bike") == ("high", "other")


def test_district_rule_files_load_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "local.toml").write_text(
        '[[rule]]\nid = "local.zorp"\ncategory = "drugs"\nseverity = "normal"\n'
        'reason = "local drug slang"\nphrases = ["zorp"]\n',
        encoding="utf-8",
    )
    rules = load_rules({"files": ["local.toml"]}, base_dir=tmp_path)
    verdict = classify("kids selling zorp at lunch", rules=rules)
    assert (verdict.severity, verdict.category) == ("normal", "drugs")
    assert "local drug slang" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("context", "text", "expected"),
    [
        ({"effect": "raise", "weight": 1}, "a zorp here. blip", "critical"),
        ({"effect": "raise", "weight": 0.5}, "a zorp here. blip", "high"),  # rounds down
        ({"effect": "lower", "weight": 1, "applies": ["other"]}, "a zorp here. blip", "high"),
        ({"effect": "cap", "cap": "normal"}, "a zorp here. blip", "high"),  # never below base
        ({"effect": "raise", "weight": 1, "scope": "sentence"}, "a zorp here. blip", "high"),
        ({"effect": "raise", "weight": 1, "scope": "sentence"}, "a zorp blip", "critical"),
        ({"effect": "raise", "weight": 1, "applies": ["drugs"]}, "a zorp blip", "high"),
        ({"effect": "raise", "weight": 1, "negatable": True}, "not now, a zorp blip", "critical"),
        ({"effect": "raise", "weight": 1, "negatable": True}, "a zorp not blip", "high"),
        ({"effect": "hedge"}, "a zorp blip", "high"),
    ],
)
def test_each_context_effect(context: dict[str, Any], text: str, expected: str) -> None:
    table = {
        "rule": [rule(phrases=["zorp"], max="critical")],
        "context": [{"id": "local.blip", "reason": "blip nearby", "phrases": ["blip"], **context}],
    }
    assert verdict_with(table, text)[0] == expected


def test_a_cap_stops_escalation_unless_its_exception_is_present() -> None:
    table = {
        "rule": [rule(phrases=["zorp"], severity="normal", max="critical")],
        "context": [
            {"id": "local.up", "effect": "raise", "weight": 2, "reason": "up", "phrases": ["up"]},
            {
                "id": "local.old",
                "effect": "cap",
                "cap": "high",
                "unless": ["local.now"],
                "reason": "old",
                "phrases": ["old"],
            },
            {
                "id": "local.now",
                "effect": "raise",
                "weight": 0,
                "reason": "now",
                "phrases": ["today"],
            },
        ],
    }
    assert verdict_with(table, "zorp up old")[0] == "high"
    assert verdict_with(table, "zorp up old today")[0] == "critical"


def test_benign_idiom_hides_only_the_words_it_overlaps() -> None:
    table = {
        "rule": [rule(phrases=["zorp"])],
        "benign": [{"id": "local.idiom", "reason": "harmless", "phrases": ["zorp it"]}],
    }
    assert verdict_with(table, "we zorp it every day") == ("low", "other")
    assert verdict_with(table, "zorp it, then zorp") == ("high", "other")


def test_sentence_benign_hides_only_ambiguous_triggers() -> None:
    table = {
        "rule": [
            rule(id="local.soft", phrases=["zorp"], ambiguous=True),
            rule(id="local.hard", phrases=["zorpzorp"], category="drugs"),
        ],
        "benign": [
            {
                "id": "local.game",
                "scope": "sentence",
                "reason": "a game",
                "phrases": ["in the game"],
            }
        ],
    }
    assert verdict_with(table, "zorp in the game") == ("low", "other")
    assert verdict_with(table, "zorpzorp in the game") == ("high", "drugs")
    assert verdict_with(table, "in the game. zorp") == ("high", "other")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"rules": []}, "unknown key 'rules'"),
        ({"rule": [rule(phrases=["x"], severity="hgih")]}, "field 'severity': must be one of"),
        ({"rule": [rule(phrases=["x"], category="guns")]}, "field 'category': must be one of"),
        ({"rule": [rule(phrases=["x"], reason="")]}, "field 'reason'"),
        ({"rule": [rule(phrases=["x"], colour="red")]}, "unknown field 'colour'"),
        ({"rule": [rule()]}, "needs at least one of 'phrases' or 'patterns'"),
        ({"rule": [rule(phrases=["x"], severity="high", max="normal")]}, "lower than"),
        ({"rule": [rule(phrases=["x"], weight=0)]}, "field 'weight'"),
        ({"rule": [rule(phrases="x")]}, "field 'phrases': must be a list"),
        ({"rule": [rule(patterns=["(unclosed"])]}, "invalid regular expression"),
        ({"rule": [rule(patterns=["kill"])]}, "write 'kil', not 'kill'"),
        ({"rule": [rule(phrases=["{guns}"])]}, "unknown vocabulary {guns}"),
        ({"rule": [rule(phrases=["~ x"])]}, "a gap (~) must sit between two words"),
        ({"rule": [rule(phrases=["x (y|z"])]}, "unbalanced"),
        ({"rule": [rule(phrases=["[x] y"])]}, "cannot start with an optional"),
        ({"rule": [rule(phrases=["* x"])]}, "cannot start with '*'"),
        ({"rule": [rule(id="Bad Id", phrases=["x"])]}, "field 'id'"),
        (
            {"context": [{"id": "c", "effect": "boost", "reason": "r", "phrases": ["x"]}]},
            "field 'effect'",
        ),
        (
            {"context": [{"id": "c", "effect": "cap", "reason": "r", "phrases": ["x"]}]},
            "field 'cap'",
        ),
        (
            {
                "context": [
                    {
                        "id": "c",
                        "effect": "raise",
                        "unless": ["nope"],
                        "reason": "r",
                        "phrases": ["x"],
                    }
                ]
            },
            "no context id or tag 'nope'",
        ),
        (
            {
                "context": [
                    {
                        "id": "c",
                        "effect": "raise",
                        "applies": ["guns"],
                        "reason": "r",
                        "phrases": ["x"],
                    }
                ]
            },
            "unknown category 'guns'",
        ),
        (
            {"benign": [{"id": "b", "scope": "page", "reason": "r", "phrases": ["x"]}]},
            "field 'scope'",
        ),
        ({"aliases": {"two words": "gun"}}, "an alias replaces one word"),
        ({"aliases": {"x": 3}}, "must be a non-empty string"),
        ({"vocab": {"firearm": "choppa"}}, "vocab.firearm: must be a list"),
        ({"disable": ["no.such.rule"]}, "no rule with id 'no.such.rule'"),
        ({"places": "the annex"}, "places: must be a list"),
        ({"files": ["/nonexistent/triage.toml"]}, "cannot read"),
    ],
)
def test_malformed_district_table_is_rejected_with_a_message(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(TriageRulesError, match="district.toml: \\[triage\\]") as info:
        load_rules(table, source="district.toml: [triage]")
    assert message in str(info.value)


def test_malformed_rule_message_names_the_entry_and_field() -> None:
    with pytest.raises(TriageRulesError) as info:
        load_rules(
            {"rule": [rule(id="local.slang", phrases=["x"], severity="urgent")]},
            source="cfg.toml: [triage]",
        )
    assert str(info.value).startswith(
        "cfg.toml: [triage]: rule[0] ('local.slang'): field 'severity': must be one of"
    )


def test_invalid_toml_in_a_rules_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[[rule]\nid = ", encoding="utf-8")
    with pytest.raises(TriageRulesError, match=r"bad\.toml: invalid TOML"):
        load_rules({"files": ["bad.toml"]}, base_dir=tmp_path)


def test_rules_file_cannot_change_language_detection(tmp_path: Path) -> None:
    (tmp_path / "lang.toml").write_text('language = "fr"\nstopwords = ["le"]\n', encoding="utf-8")
    with pytest.raises(TriageRulesError, match="unknown key 'language'"):
        load_rules({"files": ["lang.toml"]}, base_dir=tmp_path)
