"""`tipline triage`: the triage verdict of a text, of JSON lines on stdin, or an evaluation."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import click

from tipline.district.config import load_district
from tipline.errors import ConfigError
from tipline.settings import find_config
from tipline.triage import RuleSet, TriageRulesError, classify, load_rules
from tipline.triage.corpus import CORPUS_DIR, CorpusError, Example, read_corpus
from tipline.triage.layer_eval import evaluate_layers, predict_rows
from tipline.triage.learned import MODEL_PATH, LinearModel, default_model


class BadInput(click.ClickException):
    """Malformed input on stdin: exit status 2 with a one-line message."""

    exit_code = 2


def _district_rules() -> Mapping[str, Any] | None:
    """The `[triage]` table of the district's configuration file (its `files` made absolute)."""

    path = find_config(os.environ, Path.cwd())
    try:
        district = load_district(path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    return district.triage or None


def _rules() -> RuleSet:
    try:
        return load_rules(_district_rules())
    except TriageRulesError as e:
        raise click.ClickException(str(e)) from None


@click.command("triage")
@click.argument("text", required=False)
@click.option(
    "--jsonl",
    "jsonl",
    is_flag=True,
    help='Read {"id","text"} lines on stdin; write {"id","severity","category"} lines.',
)
@click.option(
    "--eval",
    "eval_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Evaluate each layer on a labelled JSON-lines file and print the report.",
)
@click.option(
    "--train",
    "train",
    is_flag=True,
    help="Train the model on the corpus (needs the `train` extra) and write it.",
)
@click.option(
    "--cv",
    "cv",
    type=click.IntRange(2, 20),
    default=None,
    help="Print K-fold cross-validated figures on the corpus (needs the `train` extra).",
)
@click.option(
    "--corpus",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=CORPUS_DIR / "train",
    show_default="the training corpus of a source checkout",
    help="Folder of labelled *.jsonl files for --train and --cv.",
)
@click.option(
    "--extra",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="More labelled examples, e.g. the output of `tipline export-corrections`.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=MODEL_PATH,
    show_default="the packaged model",
    help="Where --train writes the model.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "es"]),
    default=None,
    help="Language of the text (detected when not given).",
)
def triage_cmd(
    text: str | None,
    jsonl: bool,
    eval_file: Path | None,
    train: bool,
    cv: int | None,
    corpus: Path,
    extra: tuple[Path, ...],
    output: Path,
    lang: str | None,
) -> None:
    """Print the triage verdict of TEXT (or of stdin) as JSON."""
    if sum((text is not None, jsonl, eval_file is not None, train, cv is not None)) > 1:
        raise click.UsageError("give one of TEXT, --jsonl, --eval, --train, --cv")
    if train or cv is not None:
        examples = _examples(corpus, extra)
        if train:
            _train(examples, output)
        else:
            _cross_validate(examples, cv or 5)
        return
    rules = _rules()
    if eval_file is not None:
        _evaluate(eval_file, rules)
    elif jsonl:
        _batch(sys.stdin, rules, lang)
    else:
        body = text if text is not None else sys.stdin.read()
        verdict = classify(body, lang=lang, rules=rules)
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))


def _examples(corpus: Path, extra: tuple[Path, ...]) -> list[Example]:
    try:
        return read_corpus(corpus, extra)
    except CorpusError as e:
        raise BadInput(str(e)) from None


def _training() -> Any:
    try:
        from tipline.triage import train  # noqa: PLC0415 - scikit-learn only when training
    except ImportError as e:
        raise click.ClickException(
            f"training needs the train extra (pip install 'tipline[train]'): {e}"
        ) from None
    return train


def _train(examples: list[Example], output: Path) -> None:
    train = _training()
    data = train.train_model(examples)
    size = train.write_model(data, output)
    thresholds = ", ".join(f"{k} {v}" for k, v in sorted(data["thresholds"].items()))
    click.echo(
        f"trained on {len(examples)} tips: {len(data['words'])} word and {len(data['chars'])} "
        f"character n-grams, thresholds {thresholds}; wrote {output} ({size / 1e6:.2f} MB)"
    )


def _cross_validate(examples: list[Example], k: int) -> None:

    train = _training()
    outcomes = []
    for fit_idx, test_idx in train.folds(examples, k):
        model = LinearModel(train.train_model([examples[i] for i in fit_idx]))
        outcomes += predict_rows([examples[i].row() for i in test_idx], model)
    click.echo(f"{k}-fold cross-validated on {len(examples)} tips")
    click.echo(evaluate_layers(outcomes).format(details=False))


def _evaluate(path: Path, rules: RuleSet) -> None:

    rows = _labelled_rows(path)
    model = default_model()
    if model is None:
        raise click.ClickException("no triage model: train one with `tipline triage --train`")
    try:
        report = evaluate_layers(predict_rows(rows, model, rules))
    except ValueError as e:  # an unknown severity or category label
        raise BadInput(f"{path}: {e}") from None
    click.echo(report.format())


def _batch(stream: IO[str], rules: RuleSet, lang: str | None) -> None:
    """One compact JSON verdict per input line, flushed as it goes (blank lines skipped)."""
    for row in _json_lines(stream, ("text",), 'an object with a "text" string'):
        verdict = classify(row["text"], lang=lang, rules=rules)
        out = {"id": row.get("id"), "severity": verdict.severity, "category": verdict.category}
        click.echo(json.dumps(out, ensure_ascii=False, separators=(",", ":")))
        sys.stdout.flush()


def _json_lines(
    lines: Iterable[str], fields: tuple[str, ...], expected: str, where: str = ""
) -> Iterator[dict[str, Any]]:
    """The JSON object of each non-blank line, with string `fields`; BadInput names the line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise BadInput(f"{where}line {number}: not valid JSON") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in fields):
            raise BadInput(f"{where}line {number}: expected {expected}")
        yield row


def _labelled_rows(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{path}: cannot read: {e}") from None
    fields = ("text", "severity", "category")
    expected = '"text", "severity" and "category"'
    rows = list(_json_lines(lines, fields, expected, f"{path}: "))
    if not rows:
        raise BadInput(f"{path}: no labelled rows")
    return rows
