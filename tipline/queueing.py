"""Hand-offs to the worker queue: enqueue after commit, never lose the tip if Redis is down."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from tipline.services import ALERTS_QUEUE, DEFAULT_QUEUE, Services

log = logging.getLogger(__name__)


def enqueue_route_tip(svc: Services, tip_id: str, code: str = "") -> bool:
    """Queue the routing job for a committed tip; False (and a log line) when Redis is down.

    The tip's `needs_routing` mark is already committed, so the worker's sweeper routes it
    once Redis is back: nothing is lost, it is only later.
    """
    from workers import jobs  # noqa: PLC0415 - workers import tipline, not the other way at load

    try:
        svc.queue(ALERTS_QUEUE).enqueue(
            jobs.route_tip, tip_id, job_id=f"route-{tip_id}", result_ttl=0, failure_ttl=86400
        )
    except (RedisError, OSError) as e:
        log.warning(
            "queue unavailable (%s); tip %s stays marked for the sweeper",
            type(e).__name__,
            code or tip_id,
        )
        return False
    return True


def enqueue_fetch_media(svc: Services, attachment_id: str) -> bool:
    """Queue the worker's download of an MMS attachment from Twilio."""
    from workers import jobs  # noqa: PLC0415

    try:
        svc.queue(DEFAULT_QUEUE).enqueue(
            jobs.fetch_media, attachment_id, job_id=f"media-{attachment_id}", failure_ttl=86400
        )
    except (RedisError, OSError) as e:
        log.warning(
            "queue unavailable (%s); attachment %s waits for the sweeper",
            type(e).__name__,
            attachment_id,
        )
        return False
    return True
