"""Two web and two worker processes under a burst of 500 texts; one of each killed mid-burst.

The processes are the real commands (`tipline serve`, `tipline worker`), killed with SIGKILL
(their whole process group: gunicorn's worker and rq's work horse with them). Twilio is the fake
REST server; a text whose webhook died with its process is sent again with the same MessageSid
to the other web process, as Twilio's fallback URL would. Afterwards: every text is in the
database exactly once, every tip routed, nothing left owed, and no message went out twice.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import sign, sms_params
from tests.support.fakes import FakeTwilio
from tests.support.wait import wait_for
from tipline.extensions import db
from tipline.models import Delivery, InboundSid, OutboundMessage, Tip

pytestmark = pytest.mark.slow

TEXTS = 500
NAMES = ["Jaylen", "Marcus", "Devon", "Maya", "Luis", "Emma", "Noah", "Zoe", "Omar", "Ines"]
PLACES = ["gym", "cafeteria", "east stairwell", "bus loop", "library", "band room", "B hall"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def text_for(i: int) -> str:
    """One critical text in five (each a distinct event), the rest ordinary tips."""
    name, place = NAMES[i % len(NAMES)], PLACES[(i // len(NAMES)) % len(PLACES)]
    if i % 5 == 0:
        return f"{name} has a gun in the {place} right now and says he will shoot, report {i}"
    return f"kids are vaping in the {place} bathroom again, report {i}"


class Proc:
    """A command in a process group of its own, so SIGKILL takes its children too."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@contextmanager
def stack(env: dict[str, str], tmp: Path) -> Iterator[tuple[list[int], list[Proc], list[Proc]]]:
    ports = [free_port(), free_port()]
    serve = [sys.executable, "-m", "tipline", "serve", "--workers", "1", "--port"]
    webs = [Proc([*serve, str(p)], env, tmp / f"web{p}.log") for p in ports]
    workers = [
        Proc([sys.executable, "-m", "tipline", "worker"], env, tmp / f"worker{n}.log")
        for n in range(2)
    ]
    try:
        for port in ports:
            wait_for(lambda port=port: livez(port), 60, f"tipline serve on {port}")
        yield ports, webs, workers
    finally:
        for proc in webs + workers:
            proc.stop()


def livez(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def deliver(params: dict[str, str], ports: list[int], first: int) -> int:
    """Post one signed text, to the other web process when the first one is gone."""
    headers = {"X-Twilio-Signature": sign("/sms/inbound", params)}
    for attempt in range(20):
        port = ports[(first + attempt) % len(ports)]
        try:
            resp = requests.post(
                f"http://127.0.0.1:{port}/sms/inbound", data=params, headers=headers, timeout=15
            )
        except requests.RequestException:
            continue
        if resp.status_code == 200:
            return attempt
    raise AssertionError(f"text {params['MessageSid']} was never answered")


def owed_rows(app: Flask) -> list[tuple[object, ...]]:
    """What is still owed, for the failure message: kinds and times only."""
    with app.app_context():
        rows = db.session.execute(
            select(
                OutboundMessage.channel,
                OutboundMessage.purpose,
                OutboundMessage.status,
                OutboundMessage.attempts,
                OutboundMessage.created_at,
                OutboundMessage.updated_at,
                Delivery.due_at,
                Delivery.round,
                Delivery.step,
            )
            .join(Delivery, Delivery.outbound_id == OutboundMessage.id)
            .where(OutboundMessage.status.in_(("pending", "sending")))
        ).all()
        return [tuple(row) for row in rows]


def test_a_burst_survives_losing_a_web_and_a_worker_process(
    twilio_app: Flask, twilio_env: dict[str, str], fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    env = {**os.environ, **twilio_env, "TIPLINE_LOG_LEVEL": "INFO"}
    texts = [sms_params(text_for(i), from_=f"+1555{7000000 + i:07d}") for i in range(TEXTS)]
    resent = Counter[int]()
    with stack(env, tmp_path) as (ports, webs, workers):
        sent = iter(enumerate(texts))
        lock = threading.Lock()

        def client() -> None:
            while True:
                with lock:
                    item = next(sent, None)
                if item is None:
                    return
                i, params = item
                if i == 150:
                    webs[0].kill()  # mid-burst: its in-flight webhook dies with it
                if i == 250:
                    workers[0].kill()  # its work horse too, mid-job if it had one
                retries = deliver(params, ports, i % 2)
                with lock:
                    resent[retries] += 1

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert resent[0] < TEXTS, "the killed web process was still answering"

        def settled() -> bool:
            with twilio_app.app_context():
                tips = db.session.scalar(select(func.count()).select_from(Tip))
                unrouted = db.session.scalar(
                    select(func.count()).select_from(Tip).where(Tip.needs_routing.is_(True))
                )
                owed = db.session.scalar(
                    select(func.count())
                    .select_from(OutboundMessage)
                    .where(OutboundMessage.status.in_(("pending", "sending")))
                )
                db.session.remove()
            state[:] = [tips, unrouted, owed]
            return state == [TEXTS, 0, 0]

        state: list[int | None] = []
        with suppress(AssertionError):
            wait_for(settled, 150, "every tip stored, routed and its messages sent")
        assert state == [TEXTS, 0, 0], f"(tips, unrouted, owed) = {state}: {owed_rows(twilio_app)}"

    with twilio_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InboundSid)) == TEXTS
        codes = db.session.scalars(select(Tip.code)).all()
        assert len(set(codes)) == TEXTS
    created = [(m.form.get("To"), m.form.get("Body")) for m in fake_twilio.messages()]
    assert created, "the burst paged someone"
    twice = [pair for pair, n in Counter(created).items() if n > 1]
    assert twice == [], f"sent twice: {twice[:3]}"
