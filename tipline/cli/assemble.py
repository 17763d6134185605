"""The one place that puts the web app and the worker's jobs together, and the app in a
context for the commands that need a database."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask

import workers
from tipline.app import create_app
from tipline.extensions import db
from tipline.settings import Settings


def build_app(
    settings: Settings | Mapping[str, str] | None = None,
    *,
    async_commit: bool = False,
    **overrides: Any,
) -> Flask:
    """`create_app`, with the jobs the domain hands to the queue installed."""
    return workers.install(create_app(settings, async_commit=async_commit, **overrides))


@contextmanager
def app_context() -> Iterator[Flask]:
    """The app from the environment, in an app context; its connections closed on the way out."""
    app = build_app()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
