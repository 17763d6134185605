"""Per-app collaborators (vault, Redis, queues, triage rules), injected via app.extensions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, current_app
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tipline.extensions import db
from tipline.models import TRIAGE_SETTING, Setting
from tipline.platform.redisconn import connect
from tipline.platform.spool import Spool
from tipline.settings import Settings
from tipline.triage import TriageRulesError, load_rules
from tipline.vault.keyring import Vault

if TYPE_CHECKING:
    from tipline.triage import RuleSet

log = logging.getLogger(__name__)

EXTENSION = "tipline"
RULES_TTL = 5.0  # seconds before a process looks for new district triage words
REDIS_REST = 5.0  # seconds optional Redis calls are skipped after one failed (see redis_resting)
ALERTS_QUEUE = "alerts"
DEFAULT_QUEUE = "default"
# Attachments: the MMS download and the sandbox's check. Its own queue, taken by a process of
# its own (`tipline worker` starts one), so a slow file never delays a page.
MEDIA_QUEUE = "media"
PAGER_QUEUES = (ALERTS_QUEUE, DEFAULT_QUEUE)  # the worker that sends pages, alerts first
QUEUE_NAMES = (*PAGER_QUEUES, MEDIA_QUEUE)  # every queue, in the order a lone worker takes them
# Jobs travel as JSON, never pickles: unpickling what is in Redis would run whatever it names.
SERIALIZER = JSONSerializer


class JobKind(StrEnum):
    """The kinds of work the domain hands to the queue; `workers/` maps each to its rq job.

    The domain names a kind, never a function in `workers/`: the worker package depends on the
    domain, not the other way round, and it is the one place that knows what runs a kind.
    """

    ROUTE_TIP = "route_tip"  # (tip_id,)
    ESCALATE = "escalate"  # (alert_id, token)
    SEND = "send"  # (outbound_id,)
    FETCH_MEDIA = "fetch_media"  # (attachment_id,): an MMS download or a web upload's check
    REVEAL_NUMBER = "reveal_number"  # (reveal_id,): break-glass, decrypted in the worker only
    FLOOD_DIGEST = "flood_digest"  # (flood_id, digests sent so far)


class JobsMissing(RuntimeError):
    """The app was built without its jobs: `tipline.cli.build_app` installs them."""


class Services:
    """What views, jobs and commands need besides the database session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vault = Vault(settings.master_keys)
        self._lock = threading.Lock()
        self._embedded: Any = None
        self._rules: RuleSet | None = None
        self._rules_value: Any = None  # the `[triage]` setting they were compiled from
        self._rules_checked = 0.0
        self.clock = time.monotonic  # when to look at the setting again (tests move it on)
        self._redis_down_until = 0.0
        self.jobs: dict[JobKind, Callable[..., object]] = {}  # installed by workers.install

    def job(self, kind: JobKind) -> Callable[..., object]:
        """The function that runs `kind` on the queue, as installed by `workers.install`."""
        try:
            return self.jobs[kind]
        except KeyError:
            raise JobsMissing(
                f"no job installed for {kind}: build the app with build_app"
            ) from None

    # -- a failing Redis is left alone for a moment ------------------------------------------
    def redis_resting(self) -> bool:
        """True for REDIS_REST seconds after a Redis call failed: skip the optional ones.

        A Redis that hangs (stopped, swapping, a slow save) costs each call its whole socket
        timeout; hand-offs are optional (the database keeps the mark, the sweeper routes), so
        after one failure the next ones do not wait that long again.
        """
        return self.clock() < self._redis_down_until

    def redis_failed(self) -> None:
        self._redis_down_until = self.clock() + REDIS_REST

    @cached_property
    def redis(self) -> redis.Redis:
        with self._lock:
            conn, self._embedded = connect(self.settings.redis_url, self.settings.instance_path)
            return conn

    @cached_property
    def spool(self) -> Spool:
        """This host's spool of texts taken while the database was down."""
        directory = self.settings.spool_dir or self.settings.instance_path / "spool"
        return Spool(directory, self.vault.keyring)

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        return Queue(name, connection=self.redis, serializer=SERIALIZER)

    def rules(self, session: Session) -> RuleSet:
        """Triage rules: the packaged defaults plus the district's `[triage]` words (from init).

        Compiled once, every phrase at once (about 0.2 s, so no tip pays for a phrase's first
        use); the setting is looked at again every RULES_TTL seconds, so words a
        district adds with `tipline init` reach running web and worker processes without a
        restart. Words that no longer compile (a rule file gone) keep the rules in use.
        """
        now = self.clock()
        if self._rules is not None and now - self._rules_checked < RULES_TTL:
            return self._rules

        setting = session.get(Setting, TRIAGE_SETTING)
        value = setting.value if setting and setting.value else None
        self._rules_checked = now
        if self._rules is None:
            self._rules = _warm(load_rules(value))
        elif value != self._rules_value:
            try:
                self._rules = _warm(load_rules(value))
            except TriageRulesError as e:
                log.warning("district triage words not reloaded, the previous ones stay: %s", e)
                return self._rules
        self._rules_value = value
        return self._rules

    def rules_in_hand(self, district_words: Any = None) -> RuleSet:
        """The rules this process has compiled, without the database (the spool's triage);
        else the packaged ones plus `district_words` (the config file's `[triage]`)."""
        if self._rules is not None:
            return self._rules
        try:
            return load_rules(district_words or None)
        except TriageRulesError:
            return load_rules(None)

    def forget_rules(self) -> None:
        """Drop the cached rules, so the next `rules` call compiles the setting again."""
        self._rules = None


def _warm(rules: RuleSet) -> RuleSet:
    rules.warm()
    return rules


def install_services(app: Flask, settings: Settings) -> None:
    app.extensions[EXTENSION] = Services(settings)
    if settings.database_url.startswith("sqlite"):
        with app.app_context():
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


__all__ = [
    "MEDIA_QUEUE",
    "PAGER_QUEUES",
    "QUEUE_NAMES",
    "SERIALIZER",
    "Engine",
    "JobKind",
    "JobsMissing",
    "Services",
    "install_services",
    "services",
]
