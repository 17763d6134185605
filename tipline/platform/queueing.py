"""Hand-offs to the worker queue: enqueue after commit, never lose the tip if Redis is down.

A request hands a new tip over with one LPUSH of its id (`hand_off_route`): an rq enqueue
costs several times that (a job hash, a pipeline, pickling) and the webhook must stay lean.
The worker's dispatcher (`dispatch_handoffs`) turns each id into the routing job within
milliseconds. On PostgreSQL a first text's one statement (`tipline.intake.firsttext`) does without
even that: it NOTIFYs ROUTE_CHANNEL, which the server delivers at commit to every worker
listening (`dispatch_notifications`). Whatever is lost on the way is still marked
`needs_routing` in the database, and the sweeper routes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from psycopg import Notify
from redis.exceptions import RedisError
from rq.job import Job
from rq.utils import utcparse
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.db import utcnow
from tipline.models import Tip
from tipline.platform.services import (
    ALERTS_QUEUE,
    MEDIA_QUEUE,
    JobKind,
    Services,
)

log = logging.getLogger(__name__)

ACTIVE_JOB = frozenset({"queued", "scheduled", "started", "deferred"})  # rq states still to run
STARTED_STALE = timedelta(seconds=75)  # a running job's heartbeat this old: its worker died
HANDOFF_KEY = "tipline:route-handoff"  # a Redis list of tip ids waiting for their routing job
DISPATCH_BATCH = 100
ROUTE_CHANNEL = "tipline_route"  # PostgreSQL NOTIFY channel; the payload is a tip id
CLAIM_PREFIX = "tipline:route-notified:"  # one worker of several turns a notification into a job
CLAIM_TTL = 300


def hand_off_route(svc: Services, tip_id: str, code: str = "") -> bool:
    """Tell the workers a committed tip needs routing; False (and a log line) if Redis is down."""
    return attempt(
        svc,
        lambda: svc.redis.lpush(HANDOFF_KEY, tip_id),
        f"tip {code or tip_id} stays marked for the sweeper",
    )


def dispatch_handoffs(svc: Services, enqueue: Callable[[str], object], wait: float = 0) -> int:
    """Pass handed-off tip ids to `enqueue`, oldest first; how many there were.

    With `wait`, blocks up to that many seconds for the first one. Redis errors propagate:
    the caller decides how long to wait before trying again.
    """
    ids: list[bytes | str] = []
    if wait > 0:
        first = svc.redis.brpop([HANDOFF_KEY], timeout=wait)
        if first is None:
            return 0
        ids.append(first[1])
    more = svc.redis.rpop(HANDOFF_KEY, DISPATCH_BATCH)
    if isinstance(more, list):
        ids.extend(more)
    for raw in ids:
        enqueue(raw.decode() if isinstance(raw, bytes) else raw)
    return len(ids)


def dispatch_notifications(
    svc: Services, notifies: Iterable[Notify], enqueue: Callable[[str], object]
) -> int:
    """Pass the tip ids notified on ROUTE_CHANNEL to `enqueue`; how many this worker claimed.

    Every listening worker hears every notification; a Redis claim lets exactly one of them
    enqueue. Redis errors propagate: the tip stays marked and the sweeper routes it.
    """
    claimed = 0
    for note in notifies:
        if note.channel != ROUTE_CHANNEL:
            continue
        if svc.redis.set(CLAIM_PREFIX + note.payload, 1, nx=True, ex=CLAIM_TTL):
            enqueue(note.payload)
            claimed += 1
    return claimed


def unrouted(
    session: Session, *, quiet_since: datetime | None = None, limit: int = 500
) -> list[tuple[str, str]]:
    """(id, code) of tips still marked "needs routing", oldest activity first. With
    `quiet_since`, only tips with no activity since then: fresh ones are left to their hand-off.
    The one selection the sweeper, a burst worker and the worker's own pass all use."""
    stmt = select(Tip.id, Tip.code).where(Tip.needs_routing.is_(True))
    if quiet_since is not None:
        stmt = stmt.where(Tip.last_activity_at < quiet_since)
    rows = session.execute(stmt.order_by(Tip.last_activity_at).limit(limit)).all()
    return [(str(tip_id), str(code)) for tip_id, code in rows]


def enqueue_route_tip(svc: Services, tip_id: str, code: str = "") -> bool:
    """Queue the routing job for a committed tip; False (and a log line) when Redis is down.

    The tip's `needs_routing` mark is already committed, so the worker's sweeper routes it
    once Redis is back: nothing is lost, it is only later.
    """
    return attempt(
        svc,
        lambda: svc.queue(ALERTS_QUEUE).enqueue(
            svc.job(JobKind.ROUTE_TIP),
            tip_id,
            job_id=f"route-{tip_id}",
            result_ttl=0,
            failure_ttl=86400,
        ),
        f"tip {code or tip_id} stays marked for the sweeper",
    )


def enqueue_fetch_media(svc: Services, attachment_id: str) -> bool:
    """Queue the media worker's download of an MMS attachment from Twilio, or its check of a
    web upload; False (and a log line) when Redis is down: the sweeper enqueues it later."""
    return attempt(
        svc,
        lambda: svc.queue(MEDIA_QUEUE).enqueue(
            svc.job(JobKind.FETCH_MEDIA),
            attachment_id,
            job_id=f"media-{attachment_id}",
            failure_ttl=86400,
        ),
        f"attachment {attachment_id} waits for the sweeper",
    )


def enqueue_reveal(svc: Services, reveal_id: str) -> bool:
    """Queue the worker's decryption of an approved break-glass request (one job per request;
    the asker's next look at the tip queues it again if Redis was down)."""
    return attempt(
        svc,
        lambda: svc.queue(ALERTS_QUEUE).enqueue(
            svc.job(JobKind.REVEAL_NUMBER),
            reveal_id,
            job_id=f"reveal-{reveal_id}",
            result_ttl=0,
            failure_ttl=86400,
        ),
        f"break-glass request {reveal_id} waits until the asker looks again",
    )


def job_is_live(svc: Services, job_id: str, now: datetime | None = None) -> bool:
    """True while rq still has the job to run (queued, scheduled, running); Redis errors
    propagate to the caller.

    A running job's work horse writes a heartbeat at least every 30 s (rq's job monitoring
    interval). One whose heartbeat is older than `STARTED_STALE` died with its worker (SIGKILL,
    OOM): rq would only notice when its timeout runs out, minutes on, so it counts as lost and
    the caller queues it again (every job is idempotent; a send claims its row first).
    """
    return job_id in live_jobs(svc, [job_id], now)


def live_jobs(svc: Services, job_ids: Sequence[str], now: datetime | None = None) -> set[str]:
    """`job_is_live` for many jobs in one round trip (the sweeper asks about every send that
    waits; one fetch each stole the pager's time in a burst). Redis errors propagate."""
    if not job_ids:
        return set()
    pipe = svc.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(Job.key_for(job_id), "status", "last_heartbeat", "started_at")
    at = now or utcnow()
    live = set()
    for job_id, (status, beat, started) in zip(job_ids, pipe.execute(), strict=True):
        state = status.decode() if status else None
        if state == "started":
            stamp = beat or started
            if stamp is not None and at - _aware(utcparse(stamp.decode())) < STARTED_STALE:
                live.add(job_id)
        elif state in ACTIVE_JOB:
            live.add(job_id)
    return live


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def attempt(svc: Services, push: Callable[[], object], waits: str) -> bool:
    """One push to Redis; False, and a log line saying what waits, when Redis is down.

    After a failure Redis is left alone for a few seconds (`Services.redis_resting`): a
    Redis that hangs would otherwise cost every hand-off its whole socket timeout.
    """
    if svc.redis_resting():
        log.warning("queue unavailable (resting after a failure); %s", waits)
        return False
    try:
        push()
    except (RedisError, OSError) as e:
        svc.redis_failed()
        log.warning("queue unavailable (%s); %s", type(e).__name__, waits)
        return False
    return True
