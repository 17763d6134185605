"""Triage tests need no app: the rules, the labelled files, and a CLI runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tipline.triage import RuleSet, default_rules
from tipline.triage.corpus import CORPUS_DIR

TRAIN = CORPUS_DIR / "train"
FROZEN = CORPUS_DIR / "frozen"
PUBLIC_TIPS = TRAIN / "tips_public.jsonl"
OWN_TIPS = TRAIN / "own_tips.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return default_rules()
