"""`tipline worker`: an rq worker with its scheduler, plus the sweeper thread.

The sweeper does not depend on Redis: with Redis down at start or gone mid-run it keeps
running every due escalation step and every owed send itself, while the rq loop is retried
every few seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import psycopg
from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tipline.alerting import escalation, flood, routing
from tipline.db import own_connection, utcnow
from tipline.extensions import db, dbsession
from tipline.intake import firsttext, spooldrain
from tipline.models import WorkerLease
from tipline.outbox import erase, messages
from tipline.platform import lease, queueing, sweeper
from tipline.platform.services import (
    MEDIA_QUEUE,
    PAGER_QUEUES,
    QUEUE_NAMES,
    Services,
    services,
)
from tipline.triage import classify
from tipline.vault import retention
from workers import jobs, mediaproc
from workers.allowlist import JobWorker

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 30  # rq's default is 600 s: a dead scheduler's lock is retaken this soon
RETRY_REDIS = 3.0  # seconds between attempts to (re)start the rq loop while Redis is away
STEP_GRACE = timedelta(seconds=1)  # the rq timer normally fires within 1 s of the deadline
SEND_GRACE = timedelta(seconds=3)  # send jobs normally start within milliseconds
ROUTE_GRACE = timedelta(seconds=10)  # leave fresh tips to their routing job
DIRECT_SENDS = 20  # sends per pass the sweeper makes itself when Redis is down


class Sweeper(threading.Thread):
    """Runs `sweep_once` every INTERVAL seconds until stopped, whatever Redis is doing."""

    def __init__(self, app: Flask, interval: float = sweeper.INTERVAL) -> None:
        super().__init__(name="tipline-sweeper", daemon=True)
        self.app, self.interval = app, interval
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()

    def run(self) -> None:

        svc = services(self.app)
        while not self.stopping.is_set():
            with self.app.app_context():
                try:
                    release_dead_local_lease(dbsession())
                    # Every worker drains its own host's spool, lease or not: the texts
                    # spooled here are on this disk only (the folder's flock keeps it to one).
                    spooldrain.drain(dbsession(), svc)
                    sweeper.sweep_once(
                        dbsession(),
                        self.holder,
                        utcnow(),
                        lambda tip_id, code: enqueue_route_once(svc, tip_id, code),
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


class Dispatcher(threading.Thread):
    """Turns the tips intake handed off (one LPUSH each) into rq routing jobs, at once.

    Several workers may each run one: Redis gives every id to exactly one of them. With Redis
    away it waits and tries again; the sweeper routes whatever is left marked meanwhile. On
    PostgreSQL it also runs a RouteListener for the tips first texts NOTIFY instead.
    """

    WAIT = 1.0  # seconds one BRPOP blocks; also how soon a stop request is noticed

    def __init__(self, app: Flask) -> None:
        super().__init__(name="tipline-dispatcher", daemon=True)
        self.app = app
        self.stopping = threading.Event()
        self.listener = RouteListener(app, self.stopping) if _postgres(app) else None

    def ready(self, timeout: float) -> bool:
        """True once every hand-off will be heard (on PostgreSQL: once LISTEN is in place)."""
        return self.listener is None or self.listener.listening.wait(timeout)

    def run(self) -> None:
        if self.listener is not None:
            self.listener.start()
        try:
            self._dispatch()
        finally:
            if self.listener is not None:
                self.listener.join(timeout=RouteListener.WAIT + 5)

    def _dispatch(self) -> None:
        svc = services(self.app)
        while not self.stopping.is_set():
            try:
                dispatch_pending(svc, wait=self.WAIT)
            except (RedisError, OSError) as e:
                log.warning(
                    "dispatcher: Redis unavailable (%s); retrying in %.0fs",
                    type(e).__name__,
                    RETRY_REDIS,
                )
                self.stopping.wait(RETRY_REDIS)
            except Exception:
                log.exception("dispatcher pass failed; retrying")
                self.stopping.wait(RETRY_REDIS)


class RouteListener(threading.Thread):
    """LISTENs on `queueing.ROUTE_CHANNEL`: a first text's own statement NOTIFYs its tip at
    commit, and this turns it into the routing job within milliseconds.

    With several workers each hears every notification; a Redis claim lets one enqueue. A
    notification sent while no worker listens is lost, not the tip: on every (re)connect
    the listener first queues whatever is still marked, and the sweeper covers the rest.
    """

    WAIT = 1.0  # seconds between looks at the stop request

    def __init__(self, app: Flask, stopping: threading.Event) -> None:
        super().__init__(name="tipline-route-listener", daemon=True)
        self.app, self.stopping = app, stopping
        self.listening = threading.Event()

    def run(self) -> None:
        svc = services(self.app)
        while not self.stopping.is_set():
            try:
                self._listen(svc)
            except (psycopg.Error, SQLAlchemyError) as e:
                log.warning(
                    "route listener: database unavailable (%s); retrying in %.0fs",
                    type(e).__name__,
                    RETRY_REDIS,
                )
            except (RedisError, OSError) as e:
                log.warning(
                    "route listener: Redis unavailable (%s); retrying in %.0fs",
                    type(e).__name__,
                    RETRY_REDIS,
                )
            except Exception:
                log.exception("route listener failed; retrying")
            finally:
                self.listening.clear()
            self.stopping.wait(RETRY_REDIS)

    def _listen(self, svc: Services) -> None:

        with self.app.app_context():
            conn = own_connection(db.engine)  # held for as long as it listens
        try:
            conn.execute(f"LISTEN {queueing.ROUTE_CHANNEL}")
            self.listening.set()
            dispatch_marked(self.app)  # what was notified while nobody listened
            while not self.stopping.is_set():
                queueing.dispatch_notifications(
                    svc,
                    conn.notifies(timeout=self.WAIT),
                    lambda tip_id: enqueue_route_once(svc, tip_id, ""),
                )
        finally:
            conn.close()


def _postgres(app: Flask) -> bool:
    """Whether first texts are stored (and notified) by `intake.firsttext`'s one statement."""

    with app.app_context():
        return firsttext.supported(db.engine)


def dispatch_marked(app: Flask) -> int:
    """Routing jobs for every tip still marked for routing whose job is not queued or running.

    What a burst worker does besides `dispatch_pending`: on PostgreSQL a first text's
    hand-off is a NOTIFY, heard only by a worker listening at that moment.
    """

    svc = services(app)
    with app.app_context():
        session = dbsession()
        owed = queueing.unrouted(session)
        session.rollback()
    return sum(enqueue_route_once(svc, tip_id, code) for tip_id, code in owed)


def dispatch_pending(svc: Services, wait: float = 0) -> int:
    """Routing jobs for every tip handed off so far (see `queueing.hand_off_route`)."""
    return queueing.dispatch_handoffs(
        svc, lambda tip_id: enqueue_route_once(svc, tip_id, ""), wait=wait
    )


def enqueue_route_once(svc: Services, tip_id: str, code: str) -> bool:
    """Re-enqueue an unrouted tip's job unless it is still queued or running.

    Under a backlog the sweeper sees the same unrouted tips every pass; pushing each again
    would only lengthen the queue it is waiting in.
    """
    if svc.redis_resting():
        return False  # the sweeper's next pass asks again
    try:
        if queueing.job_is_live(svc, f"route-{tip_id}"):
            return False
    except (RedisError, OSError):
        svc.redis_failed()
        return False
    return queueing.enqueue_route_tip(svc, tip_id, code)


def release_dead_local_lease(session: Session) -> bool:
    """Free the sweeper lease of a process on this host that no longer exists (SIGKILL, OOM).

    Without this a restarted worker waits out the whole lease TTL before it sweeps again;
    a holder on another host is left to expire normally.
    """

    row = session.get(WorkerLease, sweeper.LEASE_NAME)
    if row is None or row.expires_at <= utcnow():
        session.rollback()
        return False
    host, _, rest = row.holder.partition(":")
    pid_s = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_s.isdigit() or int(pid_s) == os.getpid():
        session.rollback()
        return False
    try:
        os.kill(int(pid_s), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        lease.release(session, sweeper.LEASE_NAME, row.holder)
        log.warning("sweeper lease of dead process %s released", pid_s)
        return True
    except PermissionError:
        pass  # it exists, under another user
    session.rollback()
    return False


def sweep_hooks() -> dict[str, sweeper.Hook]:
    """Extra passes other parts of tipline register (escalations due, retention, Twilio's
    copies); alerts first, so a slow Twilio never holds up a page."""
    return {"alerts": alerts_pass, "retention": retention_pass, "twilio": twilio_pass}


def twilio_pass(session: Session, now: datetime) -> int:
    """Have Twilio delete final messages whose turn has come (`tipline.outbox.erase`)."""
    svc = services(current_app._get_current_object())  # type: ignore[attr-defined]
    return erase.run(session, svc.vault, svc.settings, now)


def retention_pass(session: Session, now: datetime) -> int:
    """Once a day, the retention rules (`tipline purge`), in bounded batches.

    A sweeper hook, not an rq job: it runs under the sweeper's lease (one worker at a time),
    and a Redis flush or a dead scheduler cannot make a day's purge go missing.
    """
    return retention.run_daily(session, now)


def alerts_pass(session: Session, now: datetime) -> int:
    """Route tips left unrouted, run overdue steps, send owed messages; Redis not required.

    Steps run here directly rather than being re-enqueued, because Redis may be gone. The
    guards in tipline.alerting.escalation make a race with a late timer job harmless.
    """

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    svc = services(app)
    done = 0
    stale = [
        tip_id
        for tip_id, _code in queueing.unrouted(session, quiet_since=now - ROUTE_GRACE, limit=50)
    ]
    session.rollback()

    def clock() -> datetime:
        # Steps are stamped when they really run: a long pass must not hide its lateness.
        return max(now, utcnow())

    for tip_id in stale:
        routed = routing.route_tip(
            session,
            svc.vault,
            svc.rules(session),
            tip_id,
            clock(),
            public_url=svc.settings.public_url,
        )
        if routed is not None and routed.first_step is not None:
            done += jobs.follow(app, routed.first_step)
        if routed is not None and routed.flood is not None:
            jobs.follow_flood(app, routed.flood)  # a flood it started: the notice, the timer
    for alert_id, token in escalation.due(session, now, STEP_GRACE):
        run = escalation.run_step(
            session,
            svc.vault,
            alert_id,
            token,
            clock(),
            public_url=svc.settings.public_url,
            executed_by="sweeper",
        )
        if run.executed:
            log.warning(
                "sweeper ran an overdue step of alert %s (its timer was lost or late)", alert_id
            )
        done += jobs.follow(app, run)
    for flood_id, digests in flood.due(session, now, STEP_GRACE):
        digest = flood.run_digest(
            session, svc.vault, flood_id, digests, clock(), public_url=svc.settings.public_url
        )
        if digest.outbound_ids or digest.ended:
            log.warning("sweeper sent flood %s's digest (its timer was lost or late)", flood_id)
        jobs.follow_flood(app, digest)
    owed = messages.owed(session, now, SEND_GRACE)
    session.commit()
    for outbound_id in messages.requeue_owed(svc, owed)[:DIRECT_SENDS]:
        jobs.deliver(app, outbound_id)  # on this thread's session, like the steps above
    return done


class _Worker(JobWorker):
    """A JobWorker that also honours a SIGTERM that came before it installed its handlers."""

    stop_event: threading.Event | None = None

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        if self.stop_event is not None and self.stop_event.is_set():
            self._stop_requested = True  # checked at the top of rq's work loop


def _asked_to_stop(worker: SimpleWorker) -> bool:
    """rq got SIGTERM/SIGINT: while busy it sets `_stop_requested`, while idle only the date."""
    return bool(worker._stop_requested or worker._shutdown_requested_date is not None)


def stop_handler(stop: threading.Event) -> Callable[[int, object], None]:
    """A SIGTERM/SIGINT handler that sets `stop` in this process, and in any other ends it.

    rq forks its scheduler process while this handler is installed, and the child keeps it
    until it installs its own. A SIGTERM in between (rq's teardown sends one, then waits for
    the child) must end the child, not set an event nobody there looks at: the worker would
    wait for it forever.
    """
    owner = os.getpid()

    def handle(signum: int, _frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop.set()

    return handle


WARM_TEXT = "he has a gun in the cafeteria right now"  # touches rules, concepts and the model


def warm_up(app: Flask) -> None:
    """Pay the first job's cold start before taking jobs: the triage rules and model, a pooled
    database connection, the Twilio client. A failure here is logged and left to the first job
    (the sweeper reports a database that is down); it never keeps the worker from starting."""
    svc = services(app)
    with app.app_context():
        try:
            session = dbsession()
            classify(WARM_TEXT, rules=svc.rules(session))
            session.rollback()
        except SQLAlchemyError as e:
            log.warning(
                "warm-up skipped the database (%s); the first job pays for it", type(e).__name__
            )
        finally:
            db.session.remove()
    jobs.notifier(app)


def run_worker(
    app: Flask, burst: bool = False, media: str = "process", log_format: str = "json"
) -> bool:
    """Run the worker in this process; returns when stopped (or drained, with burst).

    rq's work loop returns (or raises) when Redis goes away; it is started again every
    RETRY_REDIS seconds while the sweeper thread carries on. SIGTERM and SIGINT stop it in
    either state: rq handles them while its loop runs, this function between attempts.

    `media`: "process" (the default) starts the media worker as a child process
    (`workers.mediaproc`) and takes only the pager's queues here; "off" takes no media jobs
    (another host runs them); "only" is the media worker itself. A burst run with "process"
    takes every queue itself, alerts first.
    """
    if media == "only":
        return _run_media(app, burst)
    svc = services(app)
    sweep = Sweeper(app)
    stop = threading.Event()
    handle_signals = _signal_setup(stop)
    handle_signals()
    warm_up(app)
    sweep.start()
    dispatcher = Dispatcher(app)
    child = None
    if not burst:
        dispatcher.start()
        if media == "process":
            child = mediaproc.MediaProcess(mediaproc.command(log_format))
            child.start()
    names = QUEUE_NAMES if burst and media == "process" else PAGER_QUEUES

    def before() -> None:
        if burst:
            dispatch_pending(svc)  # what intake handed off so far is part of the work
            dispatch_marked(app)

    try:
        return _rq_loop(app, names, stop, burst, handle_signals, before)
    finally:
        if child is not None:
            child.stop()
        sweep.stopping.set()
        dispatcher.stopping.set()
        sweep.join(timeout=10)
        if dispatcher.is_alive():
            dispatcher.join(timeout=Dispatcher.WAIT + 5)
        _close_notifier(app)


def _run_media(app: Flask, burst: bool) -> bool:
    """The media worker: rq on the media queue alone; no sweeper, dispatcher or warm-up (the
    pager worker that started it has those)."""
    stop = threading.Event()
    handle_signals = _signal_setup(stop)
    handle_signals()
    watch = mediaproc.ParentWatch.from_env()
    if watch is not None:
        watch.start()
    try:
        return _rq_loop(app, (MEDIA_QUEUE,), stop, burst, handle_signals, lambda: None)
    finally:
        _close_notifier(app)


def _signal_setup(stop: threading.Event) -> Callable[[], None]:
    on_signal = stop_handler(stop)

    def handle_signals() -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, on_signal)

    return handle_signals


def _rq_loop(
    app: Flask,
    names: Sequence[str],
    stop: threading.Event,
    burst: bool,
    handle_signals: Callable[[], None],
    before: Callable[[], None],
) -> bool:
    """rq's work loop on `names` (in priority order), started again while Redis is away."""
    svc = services(app)
    worked = False
    while not stop.is_set():
        worker = None
        try:
            queues = [svc.queue(name) for name in names]
            before()
            with app.app_context():
                worker = _Worker(
                    queues, connection=svc.redis, maintenance_interval=MAINTENANCE_INTERVAL
                )
                worker.stop_event = stop
                worked = (
                    bool(worker.work(burst=burst, with_scheduler=True, logging_level="INFO"))
                    or worked
                )
        except StopRequested:  # a signal between rq's loop and our handlers
            return worked
        except (RedisError, OSError) as e:
            log.warning(
                "rq unavailable (%s); the sweeper carries on, retrying in %.0fs",
                type(e).__name__,
                RETRY_REDIS,
            )
        if burst or stop.is_set() or (worker is not None and _asked_to_stop(worker)):
            return worked
        handle_signals()  # rq's handlers went with its loop
        stop.wait(RETRY_REDIS)
    return worked


def _close_notifier(app: Flask) -> None:
    notifier = app.extensions.get("tipline.notifier")
    if notifier is not None:
        notifier.close()
