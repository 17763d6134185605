"""gunicorn, embedded, serving the app factory."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from tipline.cli.assemble import build_app
from tipline.platform.metrics import MULTIPROC_ENV, mark_process_dead, prepare_multiprocess_dir
from tipline.platform.services import services

YOUNG_GC_THRESHOLD = 20_000  # allocations between collections of the youngest generation
SHM = "/dev/shm"  # noqa: S108 - a directory gunicorn only creates unlinked files in


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's error log through the root logger: JSON lines (`platform.logs`), scrubbed.

    Its own handler would write plain text with the bind address; no access log at all.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


class TiplineServer(BaseApplication):  # type: ignore[misc]
    """gunicorn without a config file: the options given here, no access log (no IPs logged)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        app = build_app()
        # The app, its modules and settings live as long as the worker: frozen, the cyclic
        # collector no longer walks them every time requests' garbage sets it off.
        gc.collect()
        gc.freeze()
        # The youngest generation is collected every 700 allocations by default: several
        # times within one request, each time walking (and promoting) objects the request
        # still holds and is about to drop. Every few requests instead: a webhook's objects
        # are mostly gone by then (about 2% of a webhook's instructions; memory stays bounded).
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
        return app


def _child_exit(_server: Any, worker: Any) -> None:
    mark_process_dead(worker.pid)


def run_gunicorn(host: str, port: int, workers: int, threads: int = 1) -> None:
    app = build_app()  # fail fast, in the parent, on bad settings
    # Before any worker starts: the counters of every worker add up in this one directory.
    configured = os.environ.get(MULTIPROC_ENV)
    prepare_multiprocess_dir(
        Path(configured) if configured else services(app).settings.instance_path / "metrics"
    )
    TiplineServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "accesslog": None,
            "child_exit": _child_exit,
            "logger_class": JsonLogger,
            "timeout": 30,
            "graceful_timeout": 10,
            "keepalive": 5,
            "preload_app": False,
            "proc_name": "tipline-web",
            "forwarded_allow_ips": "127.0.0.1",
            # Each worker touches its heartbeat file once per request; on a disk-backed /tmp
            # that is inode and journal work. gunicorn's docs advise memory for it.
            "worker_tmp_dir": SHM if os.access(SHM, os.W_OK | os.X_OK) else None,
        }
    ).run()
