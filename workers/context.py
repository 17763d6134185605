"""The app a job runs in: the current one, else the one `workers.install` was given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

from tipline.extensions import db

_INSTALLED: dict[str, Flask] = {}


def use(app: Flask) -> None:
    """Jobs that run outside an app context (a plain `rq worker`) run in `app`."""
    _INSTALLED["app"] = app


@contextmanager
def job_context() -> Iterator[Flask]:
    """Yield an app with an active context; a job never reuses another job's session."""
    if has_app_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            yield app
        finally:
            db.session.remove()
        return
    if "app" not in _INSTALLED:
        raise RuntimeError("no app for this job: run it with `tipline worker` (workers.install)")
    with _INSTALLED["app"].app_context():
        try:
            yield _INSTALLED["app"]
        finally:
            db.session.remove()
