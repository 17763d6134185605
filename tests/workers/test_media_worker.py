"""`tipline worker` takes attachments in a media worker process of its own, and that process
lives and dies with it: checked uploads are stored, SIGTERM stops both, and a media worker
whose parent was SIGKILLed stops by itself (no orphan keeps taking jobs)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from PIL import Image
from rq import Worker

from tests.support.media import attachment_state
from tests.support.wait import wait_for
from tests.support.web import post_tip
from tipline.platform.services import MEDIA_QUEUE, services

pytestmark = pytest.mark.slow


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 24), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def media_workers(app: Flask) -> list[Worker]:
    conn: redis.Redis = services(app).redis
    return [w for w in Worker.all(connection=conn) if w.queue_names() == [MEDIA_QUEUE]]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for whoever adopted it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def worker(app: Flask, env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tipline", "worker"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    yield proc
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test created, by its id
    proc.wait(timeout=10)


def test_worker_checks_uploads_in_its_media_process_and_stops_it_on_sigterm(
    app: Flask, worker: subprocess.Popen[bytes]
) -> None:
    wait_for(lambda: len(media_workers(app)) == 1, 60, "the media worker")
    [media] = media_workers(app)
    assert media.pid not in (None, worker.pid)
    resp = post_tip(app.test_client(), "see attached", attachment=(picture(), "p.png", "image/png"))
    assert resp.status_code == 200
    wait_for(lambda: attachment_state(app) == "stored", 60, "the upload, checked and stored")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=40) == 0
    assert media.pid is not None
    wait_for(lambda: not alive(media.pid or 0), 10, "the media worker to stop with its parent")


def test_a_media_worker_whose_parent_was_killed_stops_by_itself(
    app: Flask, worker: subprocess.Popen[bytes]
) -> None:
    wait_for(lambda: len(media_workers(app)) == 1, 60, "the media worker")
    [media] = media_workers(app)
    assert media.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    wait_for(lambda: not alive(media.pid or 0), 30, "the orphaned media worker to stop")
