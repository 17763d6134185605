"""One builder for the escalation-policy TOML that alerting tests swap into the example district."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    notify: Sequence[str]
    channels: Sequence[str] = ("sms",)
    wait: str = "2m"


def step(*notify: str, channels: Sequence[str] = ("sms",), wait: str = "2m") -> Step:
    """One escalation step: who (`on-duty:sro`, `role:admin`, …), on which channels, then wait."""
    return Step(notify, channels, wait)


def policy(
    name: str, *steps: Step, severity: Sequence[str] = ("critical",), repeat: int | None = None
) -> str:
    """A `[[policy]]` table with its `[[policy.step]]`s, as the district file writes them."""
    lines = ["[[policy]]", f"name = {json.dumps(name)}", f"severity = {json.dumps(list(severity))}"]
    if repeat is not None:
        lines.append(f"repeat = {repeat}")
    for s in steps:
        lines += [
            "[[policy.step]]",
            f"notify = {json.dumps(list(s.notify))}",
            f"channels = {json.dumps(list(s.channels))}",
            f"wait = {json.dumps(s.wait)}",
        ]
    return "\n".join(lines) + "\n"
