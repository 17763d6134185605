"""Process commands: serve, worker, dev."""

from __future__ import annotations

import click

from tipline.cli.assemble import build_app
from tipline.cli.devmode import run_dev
from tipline.cli.webserver import run_gunicorn
from tipline.platform.logs import use_json_logs
from workers.mediaproc import MODES as MEDIA_MODES
from workers.runner import run_worker

# `tipline dev` asks for text: its console-mode SMS lines are meant to be read as they are.
LOG_FORMAT = click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one scrubbed JSON object per line (production); text: plain lines",
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
@LOG_FORMAT
def serve(host: str, port: int, workers: int, threads: int, log_format: str) -> None:
    """Production web server (gunicorn)."""

    if log_format == "json":
        use_json_logs()
    run_gunicorn(host, port, workers, threads)


@click.command()
@click.option("--burst", is_flag=True, help="process what is queued, then exit")
@click.option(
    "--media",
    type=click.Choice(MEDIA_MODES),
    default="process",
    show_default=True,
    help="attachments: process = a media worker process of its own, started and watched by "
    "this one; off = none here (run `--media only` elsewhere); only = be that media worker",
)
@LOG_FORMAT
def worker(burst: bool, media: str, log_format: str) -> None:
    """rq worker with the scheduler and the sweeper: alerts, escalations, housekeeping."""

    if log_format == "json":
        use_json_logs()
    run_worker(build_app(async_commit=True), burst=burst, media=media, log_format=log_format)


@click.command()
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def dev(port: int) -> None:
    """Everything on one laptop: web, worker, SQLite, embedded Redis, console SMS."""

    raise SystemExit(run_dev(port))
