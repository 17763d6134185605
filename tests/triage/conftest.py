"""Triage tests need no app: the rules, the labelled files, and a CLI runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tipline.triage import RuleSet, default_rules

DATA = Path(__file__).resolve().parent / "data"
# The labelled public tips: the workplace's own copy in `shared/` beside the repository when it is
# there, else the copy kept with the tests (the same file), so a clone on its own passes too.
SHARED_TIPS = Path(__file__).resolve().parents[3] / "shared/triage/tips_public.jsonl"
PUBLIC_TIPS = SHARED_TIPS if SHARED_TIPS.exists() else DATA / "tips_public.jsonl"
OWN_TIPS = DATA / "own_tips.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return default_rules()
