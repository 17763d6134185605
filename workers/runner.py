"""`tipline worker`: an rq worker with its scheduler, plus the sweeper thread."""

from __future__ import annotations

import logging
import os
import socket
import threading

from flask import Flask
from rq import SimpleWorker
from sqlalchemy.exc import SQLAlchemyError

from tipline import queueing, sweeper
from tipline.db import utcnow
from tipline.services import QUEUE_NAMES, services

log = logging.getLogger(__name__)


class Sweeper(threading.Thread):
    """Runs `sweep_once` every INTERVAL seconds until stopped, whatever Redis is doing."""

    def __init__(self, app: Flask, interval: float = sweeper.INTERVAL) -> None:
        super().__init__(name="tipline-sweeper", daemon=True)
        self.app, self.interval = app, interval
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()

    def run(self) -> None:
        from tipline.extensions import db, dbsession  # noqa: PLC0415

        svc = services(self.app)
        while not self.stopping.is_set():
            with self.app.app_context():
                try:
                    sweeper.sweep_once(
                        dbsession(),
                        self.holder,
                        utcnow(),
                        lambda tip_id, code: queueing.enqueue_route_tip(svc, tip_id, code),
                        lambda att_id: queueing.enqueue_fetch_media(svc, att_id),
                        hooks=sweep_hooks(),
                    )
                except SQLAlchemyError as e:
                    log.warning("sweeper: database unavailable (%s); retrying", type(e).__name__)
                    db.session.rollback()
                except Exception:
                    log.exception("sweeper pass failed; retrying")
                    db.session.rollback()
                finally:
                    db.session.remove()
            self.stopping.wait(self.interval)


def sweep_hooks() -> dict[str, sweeper.Hook]:
    """Extra passes other parts of tipline register (escalations due, retention)."""
    return {}


def run_worker(app: Flask, burst: bool = False) -> bool:
    """Run the worker in this process; returns when stopped (or drained, with burst)."""
    svc = services(app)
    sweep = Sweeper(app)
    sweep.start()
    try:
        queues = [svc.queue(name) for name in QUEUE_NAMES]
        with app.app_context():
            worker = SimpleWorker(queues, connection=svc.redis)
            return bool(
                worker.work(
                    burst=burst, with_scheduler=True, logging_level="INFO", max_idle_time=None
                )
            )
    finally:
        sweep.stopping.set()
        sweep.join(timeout=10)
