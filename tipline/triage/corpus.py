"""The labelled corpus: JSON-lines files of tips, validated line by line.

A line is `{"id", "text", "severity", "category", "lang"}`; `lang` may be missing (staff
corrections from `tipline export-corrections` carry none) and is then detected. Anything else
(bad JSON, a missing field, an unknown label) is a `CorpusError` naming the file and the line,
so a bad example never trains a model silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tipline.triage.verdict import CATEGORIES, LEVELS

__all__ = ["CORPUS_DIR", "CorpusError", "Example", "read_corpus", "read_examples"]

# In the source tree, not in the package data: a clone has it, a wheel does not need it.
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
LANGUAGES = ("en", "es")


class CorpusError(ValueError):
    """A malformed corpus line; the message names the file and the line number."""


@dataclass(frozen=True)
class Example:
    """One labelled tip."""

    id: str
    text: str
    severity: str
    category: str
    lang: str | None
    source: str  # "file:line", for reports

    def row(self) -> dict[str, str]:
        """The example as a labelled row for `evaluate`."""
        row = {"id": self.id, "text": self.text, "severity": self.severity}
        row["category"] = self.category
        if self.lang is not None:
            row["lang"] = self.lang
        return row


def read_examples(path: Path) -> list[Example]:
    """The examples of one JSON-lines file (blank lines skipped); CorpusError on a bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{path}: cannot read: {e}") from None
    return list(_parse(path, lines))


def read_corpus(directory: Path, extra: Iterable[Path] = ()) -> list[Example]:
    """Every `*.jsonl` file of `directory`, sorted by name so the order is stable, then `extra`."""
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise CorpusError(f"{directory}: no *.jsonl files")
    examples = [example for path in [*files, *extra] for example in read_examples(path)]
    seen: dict[str, str] = {}
    for example in examples:
        if example.id in seen:
            raise CorpusError(f"{example.source}: id {example.id!r} already at {seen[example.id]}")
        seen[example.id] = example.source
    return examples


def _parse(path: Path, lines: Iterable[str]) -> Iterable[Example]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError:
            raise CorpusError(f"{where}: not valid JSON") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{where}: not a JSON object")
        for key in ("text", "severity", "category"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise CorpusError(f"{where}: missing or empty {key!r}")
        if row["severity"] not in LEVELS:
            raise CorpusError(f"{where}: unknown severity {row['severity']!r}")
        if row["category"] not in CATEGORIES:
            raise CorpusError(f"{where}: unknown category {row['category']!r}")
        lang = row.get("lang")
        if lang is not None and lang not in LANGUAGES:
            raise CorpusError(f"{where}: unknown lang {lang!r}")
        ident = row.get("id", f"{path.stem}-{number}")
        if not isinstance(ident, str | int):
            raise CorpusError(f"{where}: id must be text or a number")
        yield Example(str(ident), row["text"], row["severity"], row["category"], lang, where)
