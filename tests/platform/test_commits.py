"""The worker's commits do not wait for PostgreSQL's disk flush; the web process's do.

A tip is stored by the web process and the webhook answers only once it is on disk. The
worker's commits (routing, steps, send records) can be redone after a server crash, so
they do not wait for the flush that costs milliseconds each in a burst (bench/alerting.py A).
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from tipline.cli.assemble import build_app
from tipline.extensions import db


def _setting(app: Flask) -> str:
    with app.app_context():
        try:
            if db.engine.dialect.name != "postgresql":
                # SQLite has no such setting: the worker's app connects as the web's does.
                assert db.session.execute(text("SELECT 1")).scalar() == 1
                return "n/a"
            return str(db.session.execute(text("SHOW synchronous_commit")).scalar())
        finally:
            db.session.remove()
            db.engine.dispose()


def test_the_worker_commits_asynchronously_and_the_web_durably(env: dict[str, str]) -> None:
    web, worker = build_app(env), build_app(env, async_commit=True)
    with web.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        assert _setting(web) == "on"
        assert _setting(worker) == "off"
    else:
        assert _setting(web) == _setting(worker) == "n/a"
