"""Only tipline's own jobs run in the worker, whatever a job in Redis names.

rq imports whatever dotted name a job carries (its function and its callbacks). Anyone who can
write to Redis could plant a job naming `os.system` in a worker that holds the master keys, so
the worker's job class refuses every name that is not one of `workers.JOBS`, before importing it.
Jobs travel as JSON (`tipline.platform.services.SERIALIZER`), so reading one runs no code either.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import SimpleWorker
from rq.job import Job

from tipline.platform.services import SERIALIZER
from workers import JOBS

log = logging.getLogger(__name__)

ALLOWED: frozenset[str] = frozenset(f"{f.__module__}.{f.__qualname__}" for f in JOBS.values())


PUBSUB_POLL = 0.5  # seconds; bounds how long a worker's stop waits for its command thread


class ForbiddenJob(RuntimeError):
    """A job named a function that is not one of tipline's jobs; it was not imported."""


class AllowlistJob(Job):
    """An rq Job that resolves only the functions in ALLOWED and never a callback."""

    @property
    def func(self) -> Any:
        name = self.func_name
        if self.instance is not None or name not in ALLOWED:
            raise ForbiddenJob(f"job {self.id} names a function that is not a tipline job")
        return super().func

    # tipline's jobs have no callbacks: a planted callback name is never imported.
    @property
    def success_callback(self) -> None:
        return self._refuse_callback(self._success_callback_name)

    @property
    def failure_callback(self) -> None:
        return self._refuse_callback(self._failure_callback_name)

    @property
    def stopped_callback(self) -> None:
        return self._refuse_callback(self._stopped_callback_name)

    def _refuse_callback(self, name: str | None) -> None:
        if name:
            log.warning("job %s carries a callback; ignored, not imported", self.id)


class JobWorker(SimpleWorker):
    """A SimpleWorker that reads jobs as JSON and runs only tipline's jobs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", SERIALIZER)
        kwargs.setdefault("job_class", AllowlistJob)
        super().__init__(*args, **kwargs)

    def subscribe(self) -> None:
        """rq's subscription to its command channel, with a thread that looks up every
        PUBSUB_POLL seconds rather than rq's 60. redis-py 8.2 joins that thread on stop, and a
        thread that had already seen the unsubscribe waits out its whole poll first: every
        worker stop (SIGTERM, a burst run's end, a restart) took up to 60 s."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL, daemon=True, exception_handler=self._pubsub_exception_handler
        )


__all__ = ["ALLOWED", "PUBSUB_POLL", "AllowlistJob", "ForbiddenJob", "JobWorker"]
