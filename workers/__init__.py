"""rq jobs and the worker process for tipline: the queue side of the domain's `JobKind`s."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from tipline.platform.services import JobKind, services
from workers import context, jobs

JOBS: dict[JobKind, Callable[..., object]] = {
    JobKind.ROUTE_TIP: jobs.route_tip,
    JobKind.ESCALATE: jobs.escalate,
    JobKind.SEND: jobs.send,
    JobKind.FETCH_MEDIA: jobs.fetch_media,
    JobKind.REVEAL_NUMBER: jobs.reveal_number,
    JobKind.FLOOD_DIGEST: jobs.flood_digest,
}


def install(app: Flask) -> Flask:
    """Give `app` the functions that run each kind of job, and jobs an app to run in."""
    services(app).jobs.update(JOBS)
    context.use(app)
    return app


__all__ = ["JOBS", "install"]
