"""The one place that puts the web app and the worker's jobs together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

import workers
from tipline.app import create_app
from tipline.settings import Settings


def build_app(settings: Settings | Mapping[str, str] | None = None, **overrides: Any) -> Flask:
    """`create_app`, with the jobs the domain hands to the queue installed."""
    return workers.install(create_app(settings, **overrides))
