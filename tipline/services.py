"""Per-app collaborators (vault, Redis, queues, triage rules), injected via app.extensions."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, current_app
from rq import Queue
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tipline.redisconn import connect

if TYPE_CHECKING:
    from tipline.triage import RuleSet
from tipline.settings import Settings
from tipline.vault import Vault

EXTENSION = "tipline"
ALERTS_QUEUE = "alerts"
DEFAULT_QUEUE = "default"
QUEUE_NAMES = (ALERTS_QUEUE, DEFAULT_QUEUE)


class Services:
    """What views, jobs and commands need besides the database session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vault = Vault(settings.master_keys)
        self._lock = threading.Lock()
        self._embedded: Any = None
        self._rules: RuleSet | None = None

    @cached_property
    def redis(self) -> redis.Redis:
        with self._lock:
            conn, self._embedded = connect(self.settings.redis_url, self.settings.instance_path)
            return conn

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        return Queue(name, connection=self.redis)

    def rules(self, session: Session) -> RuleSet:
        """Triage rules: the packaged defaults plus the district's `[triage]` words (from init)."""
        if self._rules is None:
            from tipline.models import Setting  # noqa: PLC0415
            from tipline.sync import TRIAGE_SETTING  # noqa: PLC0415
            from tipline.triage import load_rules  # noqa: PLC0415 - triage loads its rule files

            setting = session.get(Setting, TRIAGE_SETTING)
            self._rules = load_rules(setting.value if setting and setting.value else None)
        return self._rules

    def forget_rules(self) -> None:
        """Drop the cached rules, so the next `rules` call reads the `[triage]` setting again.

        For tests that sync a district in this process: `tipline init` runs in a process of its
        own, and a running app keeps the rules it loaded until it restarts.
        """
        self._rules = None


def install_services(app: Flask, settings: Settings) -> None:
    app.extensions[EXTENSION] = Services(settings)
    if settings.database_url.startswith("sqlite"):
        with app.app_context():
            from tipline.extensions import db  # noqa: PLC0415

            event.listen(db.engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def services(app: Flask | None = None) -> Services:
    """The Services of `app` (default: the current app)."""
    target = app if app is not None else current_app
    svc = target.extensions[EXTENSION]
    assert isinstance(svc, Services)  # noqa: S101 - installed by create_app
    return svc


__all__ = ["QUEUE_NAMES", "Engine", "Services", "install_services", "services"]
