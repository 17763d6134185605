"""`tipline dev`: the whole system on one laptop, and everything it started stopped on exit."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.cli.assemble import build_app
from tipline.district.config import load_district
from tipline.extensions import db, dbsession
from tipline.models import School
from tipline.platform.redisconn import start_embedded
from tipline.platform.services import services
from tipline.settings import load_settings
from tipline.staff.accounts import upsert_user

DEMO_ADMIN = "admin@example.org"


def _demo_admin(app_env: dict[str, str]) -> str:
    """Create or reset the demo admin login; returns the new password (printed once)."""

    password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
    app = build_app(app_env)
    with app.app_context():
        slugs = [s.slug for s in _schools(dbsession())]
        upsert_user(
            dbsession(),
            services(app).vault,
            email=DEMO_ADMIN,
            role="admin",
            password=password,
            schools=slugs,
        )
        db.session.commit()
        db.engine.dispose()
    return password


def _schools(session: Session) -> Sequence[School]:
    return session.scalars(select(School).where(School.active)).all()


def run_dev(port: int = 5000) -> int:
    """Start embedded Redis, init, web and worker; stop them all on Ctrl-C or SIGTERM."""

    env = dict(os.environ)
    settings = load_settings(env)  # creates instance/ secrets with mode 0600 on first run
    instance = settings.instance_path
    env["TIPLINE_INSTANCE"] = str(instance)
    env["TIPLINE_CONFIG"] = str(settings.config_path)
    # The printed demo login signs in with its password alone; nowhere else does.
    env["TIPLINE_DEV_MODE"] = "1"
    redis_server = None
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Also when started with SIGINT ignored (a shell's `tipline dev &` does that): Ctrl-C, or
    # SIGINT to the group, must stop everything the same way, not only the children.
    signal.signal(signal.SIGINT, stop)
    try:
        if not env.get("TIPLINE_REDIS_URL"):
            redis_server = start_embedded(instance)
            env["TIPLINE_REDIS_URL"] = f"unix://{redis_server.socket_file}"
        tipline_cmd = [sys.executable, "-m", "tipline"]
        subprocess.run([*tipline_cmd, "init"], env=env, check=True)
        password = _demo_admin(env)
        click.echo(f"demo admin: {DEMO_ADMIN} password: {password}", color=False)
        sys.stdout.flush()
        # Plain text: console mode's SMS lines are the demo's phone screen, not logs to scrub.
        children.append(subprocess.Popen([*tipline_cmd, "worker", "--log-format", "text"], env=env))
        children.append(
            subprocess.Popen(
                [
                    *tipline_cmd,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "2",
                    "--log-format",
                    "text",
                ],
                env=env,
            )
        )
        click.echo(
            f"tipline dev: http://127.0.0.1:{port}/tip/{_first_slug(env)} "
            f"(instance {instance}); Ctrl-C stops everything"
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1  # a child died on its own
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as e:
        return e.returncode or 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_children(children)
        if redis_server is not None:
            redis_server.shutdown()
        click.echo("tipline dev: stopped")


def _first_slug(env: dict[str, str]) -> str:

    return load_district(Path(env["TIPLINE_CONFIG"])).schools[0].slug


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
