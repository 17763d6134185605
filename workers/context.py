"""The app a job runs in: the current one (tests, the worker process), or one built lazily."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

_APPS: dict[str, Flask] = {}


@contextmanager
def job_context() -> Iterator[Flask]:
    """Yield an app with an active context; a job never reuses another job's session."""
    from tipline.extensions import db  # noqa: PLC0415

    if has_app_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            yield app
        finally:
            db.session.remove()
        return
    if "app" not in _APPS:
        from tipline import create_app  # noqa: PLC0415

        _APPS["app"] = create_app()
    with _APPS["app"].app_context():
        try:
            yield _APPS["app"]
        finally:
            db.session.remove()
