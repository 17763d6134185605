"""`tipline triage`: one text, JSON lines on stdin, an evaluation; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.triage.conftest import PUBLIC_TIPS
from tipline.cli.triage_cmd import triage_cmd


def test_single_text_prints_the_verdict_as_json() -> None:
    result = CliRunner().invoke(triage_cmd, ["gun. room 114. now"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["severity"], data["category"]) == ("critical", "weapon")
    assert data["reasons"]
    assert data["language"] == "en"


def test_text_from_stdin_when_no_argument() -> None:
    result = CliRunner().invoke(triage_cmd, [], input="mañana trae la pistola a la escuela\n")
    data = json.loads(result.output)
    assert (data["severity"], data["language"]) == ("critical", "es")


def test_lang_option_sets_the_language() -> None:
    result = CliRunner().invoke(triage_cmd, ["--lang", "es", "ok"])
    assert json.loads(result.output)["language"] == "es"


def test_jsonl_writes_one_compact_line_per_tip_and_skips_blank_lines() -> None:
    stdin = '{"id": 1, "text": "that test killed me"}\n\n{"id": "b", "text": "kms tonight"}\n'
    result = CliRunner().invoke(triage_cmd, ["--jsonl"], input=stdin)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        '{"id":1,"severity":"low","category":"other"}',
        '{"id":"b","severity":"critical","category":"self_harm"}',
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [("not json", "line 2: not valid JSON"), ('{"id": 3}', "line 2: expected an object")],
)
def test_malformed_jsonl_line_exits_2_naming_the_line(bad: str, message: str) -> None:
    stdin = '{"id": 1, "text": "hi"}\n' + bad + "\n"
    result = CliRunner().invoke(triage_cmd, ["--jsonl"], input=stdin)
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == '{"id":1,"severity":"low","category":"other"}'
    assert result.output.splitlines()[-1] == f"Error: {message}" or message in result.output


def test_eval_prints_each_layer_what_it_caught_and_the_calibration() -> None:
    result = CliRunner().invoke(triage_cmd, ["--eval", str(PUBLIC_TIPS)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["rules", "model", "combined"]
    assert "critical recall" in lines[0]
    assert "en n=192" in lines[0]
    assert "es n=28" in lines[0]
    assert "critical tips caught: rules only" in result.output
    assert "model calibration, p(critical)" in result.output
    assert "220 tips" in result.output
    assert "false negatives of critical and high" in result.output


def test_eval_of_a_malformed_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(triage_cmd, ["--eval", str(path)])
    assert result.exit_code == 2
    assert "line 1" in result.output


def test_eval_of_an_unknown_label_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"text": "x", "severity": "urgent", "category": "other"}\n', encoding="utf-8")
    result = CliRunner().invoke(triage_cmd, ["--eval", str(path)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == f"Error: {path}: row 1: unknown label 'urgent'/'other'\n"


def test_bad_district_rules_are_a_one_line_error(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    config = tmp_path / "district.toml"
    config.write_text(example.read_text() + "\n[triage]\nrules = []\n")
    result = CliRunner().invoke(triage_cmd, ["hello"], env={"TIPLINE_CONFIG": str(config)})
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "unknown key 'rules'" in result.output


def test_text_and_jsonl_together_is_a_usage_error() -> None:
    result = CliRunner().invoke(triage_cmd, ["--jsonl", "hello"])
    assert result.exit_code == 2


def test_train_with_extra_corrections_writes_a_model_and_a_bad_line_is_named(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = PUBLIC_TIPS.read_text(encoding="utf-8").splitlines()
    (corpus / "slice.jsonl").write_text("\n".join(lines[::2]) + "\n", encoding="utf-8")
    extra = tmp_path / "corrections.jsonl"
    rows = [
        {"id": f"s-{i}", "text": text, "severity": "high", "category": "abuse"}
        for i, text in enumerate(["coach keeps texting her at night", "he touches her at home"])
    ]
    extra.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    output = tmp_path / "model.json.gz"
    args = ["--train", "--corpus", str(corpus), "--extra", str(extra), "--output", str(output)]
    result = CliRunner().invoke(triage_cmd, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("trained on 112 tips")
    assert output.stat().st_size > 1000

    extra.write_text(extra.read_text() + '{"text": "x", "severity": "urgent"}\n')
    result = CliRunner().invoke(triage_cmd, args)
    assert result.exit_code == 2
    assert f"{extra}:3: missing or empty 'category'" in result.output
