"""Prometheus metrics for `/metrics`: counters kept by the web processes, state read at scrape.

Under gunicorn each worker process keeps its counters in PROMETHEUS_MULTIPROC_DIR, and a
scrape (answered by any one worker) adds them all up; `tipline serve` empties that directory
before the app starts and marks each dead worker's files. Everything the worker processes do
(pages, deliveries, escalation lateness), and the queue depth and the sweeper's heartbeat, are
read from the database and Redis at scrape time, so no worker process has to be scraped. No
label ever holds a tip, a code or a number: only fixed words.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tipline.models import AlertStep, Flood, OutboundMessage, Tip, WorkerLease
from tipline.platform.services import QUEUE_NAMES, SERIALIZER, Services

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENESS_WINDOW = timedelta(hours=1)

SMS_INBOUND = Counter(
    "tipline_sms_inbound",
    "Inbound SMS webhooks answered by this web process, by what they became",
    ["kind"],
)


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty the directory of counter files (an earlier run's would be added up again); use it.

    Only prometheus-client's own `*.db` files go: the directory may be one an operator named.
    """
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    # Counters' values are created per label set on first use: from now on in the directory.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def mark_process_dead(pid: int) -> None:
    """A gunicorn worker exited: its live gauges go; its counters stay in the sum."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class ScrapeTime(Collector):
    """State read when Prometheus asks: tips, pages, deliveries, lateness, queues, sweeper."""

    def __init__(self, session: Session, svc: Services, now: datetime) -> None:
        self.session, self.svc, self.now = session, svc, now

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "tipline_spool_size",
            "Texts this host took while the database was down, not stored yet",
            value=self.svc.spool.size(),
        )
        try:
            yield from self._from_database()
        except SQLAlchemyError:  # the database is down: what does not need it still shows
            with contextlib.suppress(SQLAlchemyError):
                self.session.rollback()
        yield self._queue_depth()

    def _from_database(self) -> Iterator[Metric]:
        s = self.session
        tips = GaugeMetricFamily("tipline_tips", "Tips stored, by status", labels=["status"])
        for status, n in s.execute(select(Tip.status, func.count()).group_by(Tip.status)):
            tips.add_metric([str(status)], n)
        yield tips

        pages = GaugeMetricFamily(
            "tipline_pages", "Alert messages to staff, by channel", labels=["channel"]
        )
        deliveries = GaugeMetricFamily(
            "tipline_deliveries", "Outgoing messages, by delivery status", labels=["status"]
        )
        rows = s.execute(
            select(
                OutboundMessage.purpose,
                OutboundMessage.channel,
                OutboundMessage.status,
                func.count(),
            ).group_by(OutboundMessage.purpose, OutboundMessage.channel, OutboundMessage.status)
        ).all()
        by_channel: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for purpose, channel, status, n in rows:
            if purpose == "alert":
                by_channel[channel] = by_channel.get(channel, 0) + n
            by_status[status] = by_status.get(status, 0) + n
        for channel, n in sorted(by_channel.items()):
            pages.add_metric([channel], n)
        for status, n in sorted(by_status.items()):
            deliveries.add_metric([status], n)
        yield pages
        yield deliveries

        steps = s.execute(
            select(AlertStep.executed_at, AlertStep.due_at).where(
                AlertStep.executed_at >= self.now - LATENESS_WINDOW
            )
        ).all()
        late = [max(0.0, (done - due).total_seconds()) for done, due in steps]
        yield GaugeMetricFamily(
            "tipline_escalation_lateness_max_seconds",
            "Largest delay between a step's due time and its run, over the last hour",
            value=max(late, default=0.0),
        )
        yield GaugeMetricFamily(
            "tipline_escalation_steps_last_hour",
            "Escalation steps run in the last hour",
            value=len(late),
        )

        floods = GaugeMetricFamily(
            "tipline_floods",
            "Schools' floods of new tips (flood mode): open now, and ended",
            labels=["state"],
        )
        open_now = s.scalar(select(func.count()).where(Flood.ended_at.is_(None))) or 0
        ended = s.scalar(select(func.count()).where(Flood.ended_at.is_not(None))) or 0
        floods.add_metric(["active"], open_now)
        floods.add_metric(["ended"], ended)
        yield floods

        beat = s.scalar(select(WorkerLease.heartbeat_at).where(WorkerLease.name == "sweeper"))
        s.rollback()
        yield GaugeMetricFamily(
            "tipline_sweeper_heartbeat_age_seconds",
            "Seconds since the sweeper's last heartbeat (-1: never)",
            value=(self.now - beat).total_seconds() if beat is not None else -1.0,
        )

    def _queue_depth(self) -> Metric:
        depth = GaugeMetricFamily(
            "tipline_queue_depth",
            "Jobs waiting in each rq queue (-1: Redis down)",
            labels=["queue"],
        )
        for name in QUEUE_NAMES:
            try:
                n = Queue(name, connection=self.svc.redis, serializer=SERIALIZER).count
            except (RedisError, OSError):
                n = -1
            depth.add_metric([name], n)
        return depth


def exposition(session: Session, svc: Services, now: datetime) -> bytes:
    """The text exposition of every tipline metric, for one scrape."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(SMS_INBOUND)
    registry.register(ScrapeTime(session, svc, now))
    return generate_latest(registry)


__all__ = ["SMS_INBOUND", "exposition", "mark_process_dead", "prepare_multiprocess_dir"]
