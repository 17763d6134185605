"""A worker stops within a second, whatever its command-channel thread was doing.

rq subscribes each worker to a command channel served by a redis-py thread; redis-py 8.2
joins that thread when the worker stops. With rq's 60 s poll, a thread that had already seen
the unsubscribe sat out the rest of it: SIGTERM, a burst run's end or a restart of `tipline
worker` (and the media worker it starts) could take a minute, and an orphaned media worker
kept its queue that long.
"""

from __future__ import annotations

import time

from flask import Flask

from tests.support.wait import wait_for
from tipline.platform.services import QUEUE_NAMES, services
from workers.allowlist import JobWorker


def test_a_worker_whose_command_thread_already_saw_the_unsubscribe_stops_at_once(
    app: Flask,
) -> None:
    svc = services(app)
    worker = JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis)
    worker.subscribe()
    wait_for(lambda: worker.pubsub.subscribed, 5, "the worker subscribed")
    # The unsubscribe is read by the thread before the worker asks it to stop: the order
    # that made the stop wait out the thread's whole poll.
    worker.pubsub.unsubscribe()
    wait_for(lambda: not worker.pubsub.subscribed, 5, "the thread read the unsubscribe")
    time.sleep(0.2)  # the thread is back in its wait for a subscription
    started = time.monotonic()
    worker.unsubscribe()
    worker.pubsub_thread.join(timeout=30)
    assert not worker.pubsub_thread.is_alive()
    assert time.monotonic() - started < 5  # with rq's own poll: 60 s


def test_a_burst_worker_on_empty_queues_returns_promptly_every_time(app: Flask) -> None:
    svc = services(app)
    started = time.monotonic()
    with app.app_context():
        for _ in range(5):
            JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis).work(burst=True)
    assert time.monotonic() - started < 30  # one slow stop used to cost up to 60 s
