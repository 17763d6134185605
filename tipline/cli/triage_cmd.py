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
from tipline.triage import RuleSet, TriageRulesError, classify, evaluate, load_rules


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
    help="Evaluate on a labelled JSON-lines file and print the report.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "es"]),
    default=None,
    help="Language of the text (detected when not given).",
)
def triage_cmd(text: str | None, jsonl: bool, eval_file: Path | None, lang: str | None) -> None:
    """Print the triage verdict of TEXT (or of stdin) as JSON."""
    if sum((text is not None, jsonl, eval_file is not None)) > 1:
        raise click.UsageError("give TEXT, --jsonl or --eval, not several")
    rules = _rules()
    if eval_file is not None:
        rows = _labelled_rows(eval_file)
        try:
            report = evaluate(rows, rules=rules)
        except ValueError as e:  # an unknown severity or category label
            raise BadInput(f"{eval_file}: {e}") from None
        click.echo(report.format())
    elif jsonl:
        _batch(sys.stdin, rules, lang)
    else:
        body = text if text is not None else sys.stdin.read()
        verdict = classify(body, lang=lang, rules=rules)
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))


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
