"""The media worker: attachments are taken by a process of their own, never the pager's.

rq runs one job at a time per worker. A media job waits on the sandbox for up to its
wall-clock limit (and on Twilio for a download); in the worker that sends pages, that wait
would hold up every route and send queued behind it. So `tipline worker` takes only the
alerts and default queues itself and starts `tipline worker --media only` as its child: a
second rq worker on the media queue, started again if it dies, stopped with its parent, and
stopping itself if its parent dies without stopping it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

log = logging.getLogger(__name__)

MODES = ("process", "off", "only")  # `tipline worker --media`: start a child, none, or be one
RESTART_WAIT = 5.0  # seconds before a media worker that died is started again
STOP_WAIT = 25.0  # a media job finishing its sandbox run (20 s at most) before SIGKILL
PARENT_POLL = 1.0
PARENT_ENV = "TIPLINE_MEDIA_PARENT"  # set for a media worker this module starts: its parent


def command(log_format: str) -> list[str]:
    """The media worker's command line: this interpreter, the same tipline."""
    return [
        sys.executable,
        "-m",
        "tipline",
        "worker",
        "--media",
        "only",
        "--log-format",
        log_format,
    ]


class MediaProcess(threading.Thread):
    """Starts the media worker and starts it again whenever it exits, until `stop`.

    The child inherits this process's environment and stderr: its log lines (JSON) join the
    worker's own.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(name="tipline-media", daemon=True)
        self.argv = list(argv)
        self.stopping = threading.Event()
        self.started_once = threading.Event()
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            with self._lock:
                if self.stopping.is_set():
                    return
                env = {**os.environ, PARENT_ENV: str(os.getpid())}
                self.proc = subprocess.Popen(self.argv, env=env)  # noqa: S603 - our command
                self.started_once.set()
            code = self.proc.wait()
            if self.stopping.is_set():
                return
            log.warning("media worker exited (%s); starting another in %.0f s", code, RESTART_WAIT)
            self.stopping.wait(RESTART_WAIT)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Stop the child (SIGTERM: rq lets a running job finish), then SIGKILL after `timeout`."""
        with self._lock:
            self.stopping.set()
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.is_alive():
            self.join(timeout=5)


class ParentWatch(threading.Thread):
    """In a media worker `MediaProcess` started: SIGTERM to itself once that parent is gone
    (SIGKILLed, say), so no orphan keeps taking jobs beside the replacement's own child."""

    def __init__(self, parent: int) -> None:
        super().__init__(name="tipline-parent-watch", daemon=True)
        self.parent = parent

    @classmethod
    def from_env(cls) -> ParentWatch | None:
        """The watch, when this process was started by a MediaProcess; else None (a media
        worker an operator runs on its own has no parent to follow)."""
        value = os.environ.get(PARENT_ENV, "")
        return cls(int(value)) if value.isdigit() else None

    def run(self) -> None:
        while os.getppid() == self.parent:
            threading.Event().wait(PARENT_POLL)
        log.warning("media worker: its parent worker is gone; stopping")
        os.kill(os.getpid(), signal.SIGTERM)


__all__ = ["MODES", "PARENT_ENV", "MediaProcess", "ParentWatch", "command"]
