"""Faults, with real `tipline worker` processes: a due step fires once, and on time, after the
worker is SIGKILLed mid-wait, after Redis is flushed, and with Redis gone altogether."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from rq import Worker
from sqlalchemy import select

from tests.conftest import post_signed, sms_params
from tests.support.alerting import (
    GUN,
    LINCOLN,
    use_config,
)
from tests.support.fakes import FakeTwilio
from tests.support.policies import policy, step
from tests.support.redisproc import RedisProcess
from tests.support.wait import wait_for
from tipline.cli.assemble import build_app
from tipline.extensions import db
from tipline.models import AlertStep, WorkerLease
from workers.runner import stop_handler

pytestmark = pytest.mark.slow

FAULT_POLICY = policy(
    "fault", step("on-duty:sro", wait="4s"), step("role:district", wait="4s"), repeat=1
)


class Workers:
    """`tipline worker` processes of this test, each in a process group of its own so that
    the rq scheduler child a SIGKILLed worker leaves behind is stopped at the end too."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env, self.logdir, self.procs = env, logdir, []  # type: ignore[var-annotated]

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"worker{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tipline", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group this test created, by its id
            proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("*.log")))


def executed(app: Flask) -> list[tuple[int, int, float, str]]:
    """(round, step, seconds late, by whom) of every executed step."""
    with app.app_context():
        rows = db.session.scalars(select(AlertStep).order_by(AlertStep.id)).all()
        out = [
            (r.round, r.step, (r.executed_at - r.due_at).total_seconds(), r.executed_by)
            for r in rows
        ]
        db.session.remove()
        return out


def sweeper_held_by(app: Flask, pid: int) -> bool:
    with app.app_context():
        lease = db.session.get(WorkerLease, "sweeper")
        held = lease is not None and f":{pid}:" in lease.holder
        db.session.remove()
        return held


def post_tip(app: Flask) -> None:
    resp = post_signed(app.test_client(), "/sms/inbound", sms_params(GUN, to=LINCOLN))
    assert resp.status_code == 200


@pytest.fixture
def setup(
    twilio_app: Flask, twilio_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[dict[str, str], Workers]]:
    config = use_config(twilio_app, tmp_path, FAULT_POLICY)
    env = {**os.environ, **twilio_env, "TIPLINE_CONFIG": str(config), "TIPLINE_LOG_LEVEL": "INFO"}
    workers = Workers(env, tmp_path)
    yield env, workers
    workers.stop_all()


def test_worker_sigkilled_mid_wait_and_restarted_fires_the_step_once(
    twilio_app: Flask, fake_twilio: FakeTwilio, setup: tuple[dict[str, str], Workers]
) -> None:
    _env, workers = setup
    first = workers.start()
    wait_for(lambda: sweeper_held_by(twilio_app, first.pid), 30, "the first worker's sweeper")
    post_tip(twilio_app)
    wait_for(lambda: len(fake_twilio.messages()) == 1, 15, "the first page")
    os.kill(first.pid, signal.SIGKILL)  # mid-wait: step 2 is due 4 s after step 1
    killed_at = time.monotonic()
    first.wait(timeout=10)  # reaped, as init or systemd would
    workers.start()
    wait_for(lambda: len(executed(twilio_app)) >= 2, 25, "the second step")
    assert time.monotonic() - killed_at <= 20
    time.sleep(2.5)  # any late duplicate (the old timer, the sweeper) would land by now
    steps = executed(twilio_app)
    assert [s[:2] for s in steps[:2]] == [(0, 0), (0, 1)], workers.logs()
    assert len([s for s in steps if s[:2] == (0, 1)]) == 1
    assert [m.form["To"] for m in fake_twilio.messages()][:2] == [
        fake_twilio.messages()[0].form["To"],
        "+15550000141",
    ]
    assert len([m for m in fake_twilio.messages() if m.form["To"] == "+15550000141"]) == len(
        [s for s in steps if s[1] == 1]
    )


def test_redis_flushed_then_gone_mid_wait_the_sweeper_fires_each_step_once(
    twilio_app: Flask,
    fake_twilio: FakeTwilio,
    setup: tuple[dict[str, str], Workers],
    own_redis: RedisProcess,
) -> None:
    env, workers = setup
    workers.env = {**env, "TIPLINE_REDIS_URL": own_redis.url}
    web = build_app(
        {
            **{k: v for k, v in env.items() if k.startswith(("TIPLINE_", "TWILIO_"))},
            "TIPLINE_REDIS_URL": own_redis.url,
        },
        TESTING=True,
    )
    try:
        worker = workers.start()
        wait_for(lambda: sweeper_held_by(twilio_app, worker.pid), 30, "the worker's sweeper")
        post_tip(web)
        wait_for(lambda: len(fake_twilio.messages()) == 1, 15, "the first page")
        redis.Redis(unix_socket_path=str(own_redis.socket)).flushdb()  # every timer is lost
        wait_for(lambda: len(executed(twilio_app)) >= 2, 15, "the second step")
        own_redis.stop()  # and now Redis is gone altogether
        wait_for(lambda: len(executed(twilio_app)) >= 3, 15, "the third step, without Redis")
        wait_for(lambda: len(fake_twilio.messages()) >= 3, 10, "its page, sent by the sweeper")
        time.sleep(1.0)
        steps = executed(twilio_app)
        assert [s[:2] for s in steps[:3]] == [(0, 0), (0, 1), (1, 0)], workers.logs()
        for _round, _step, late, by in steps[1:3]:
            assert by == "sweeper"
            assert late <= 2.0 + 2.0
        assert len(fake_twilio.messages()) == 3
        assert worker.poll() is None, "the worker survives Redis going away"
    finally:
        with web.app_context():
            db.engine.dispose()


def test_worker_started_without_redis_sweeps_joins_redis_later_and_stops_on_sigterm(
    twilio_app: Flask, setup: tuple[dict[str, str], Workers], own_redis: RedisProcess
) -> None:
    env, workers = setup
    own_redis.stop()
    workers.env = {**env, "TIPLINE_REDIS_URL": own_redis.url}
    proc = workers.start()
    wait_for(lambda: sweeper_held_by(twilio_app, proc.pid), 30, "the sweeper, with Redis down")
    own_redis.start()
    conn = redis.Redis(unix_socket_path=str(own_redis.socket))
    wait_for(lambda: bool(Worker.all(connection=conn)), 15, "rq's loop, once Redis is back")
    conn.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def _sleep_in_child(running: Any) -> None:
    running.set()
    time.sleep(30)


def test_a_child_forked_with_the_workers_signal_handler_still_ends_on_sigterm() -> None:
    """rq forks its scheduler while the worker's own handler is installed; rq's teardown then
    sends it SIGTERM and waits. Before the child sets handlers of its own, that SIGTERM must
    end it, or the worker never stops."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, stop_handler(stop))
    try:
        fork = multiprocessing.get_context("fork")
        running = fork.Event()
        child = fork.Process(target=_sleep_in_child, args=(running,))
        child.start()
        child_pid = child.pid
        assert child_pid is not None
        # once the child runs Python (as rq's scheduler does before its own handlers)
        assert running.wait(10)
        os.kill(child_pid, signal.SIGTERM)
        child.join(timeout=10)
        assert child.exitcode == -signal.SIGTERM
        assert not stop.is_set()  # the child's signal is not this process's stop request
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(stop.is_set, 5, "this process's own SIGTERM to set the stop request")
    finally:
        signal.signal(signal.SIGTERM, previous)
