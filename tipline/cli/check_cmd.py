"""`tipline check`: does this deployment hold together? One line per problem, exit 1 if any."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from tipline.cli.assemble import build_app
from tipline.district.config import load_district
from tipline.errors import TiplineError
from tipline.extensions import db
from tipline.models import School
from tipline.outbox.notifier import Notifier, SendError
from tipline.platform.services import services

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@click.command("check")
def check() -> None:
    """Verify configuration, database, Redis and each school number's webhook at Twilio."""
    try:
        app = build_app()
    except TiplineError as e:
        click.echo(f"configuration: {e}", err=True)
        sys.exit(1)
    problems = find_problems(app)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        sys.exit(1)
    click.echo("ok: configuration, database, Redis and Twilio numbers")


def package_head() -> str | None:
    """The migration head this package carries."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def schema_problems(conn: Connection) -> list[str]:
    """The database's Alembic revision against the package's head: one line when they differ."""
    current = MigrationContext.configure(conn).get_current_revision()
    head = package_head()
    if current == head:
        return []
    return [
        f"database: schema at revision {current or 'none'}, this package's migrations end at "
        f"{head}; run `tipline init`"
    ]


def find_problems(app: Flask) -> list[str]:
    """Every problem found, one line each; empty when the deployment holds."""
    svc = services(app)
    settings = svc.settings
    problems: list[str] = []
    numbers: list[tuple[str, str]] = []
    try:
        district = load_district(settings.config_path)
        numbers = [(school.slug, school.sms_number) for school in district.schools]
    except TiplineError as e:
        problems.append(f"configuration: {e}")

    with app.app_context():
        try:
            db.session.scalar(select(func.count()).select_from(School))
            problems += schema_problems(db.session.connection())
        except SQLAlchemyError as e:
            reason = str(getattr(e, "orig", None) or type(e).__name__).strip().splitlines()[0]
            problems.append(
                f"database: unavailable or not initialized ({reason}); run `tipline init`"
            )
        finally:
            db.session.remove()
            db.engine.dispose()

    try:
        svc.redis.ping()
    except Exception as e:  # any failure to reach it is the finding
        problems.append(f"redis: unavailable ({type(e).__name__})")

    if not settings.twilio_enabled:
        problems.append("twilio: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN unset (console mode)")
        return problems
    expected = f"{settings.public_url}/sms/inbound"
    notifier = Notifier(settings)
    try:
        for slug, number in numbers:
            try:
                urls = notifier.messaging_webhooks(number)
            except SendError as e:
                problems.append(f"twilio: cannot look up {number} ({slug}): {e}")
                continue
            if not urls:
                problems.append(f"twilio: {number} ({slug}) is not a number of this account")
            for url in urls:
                if url != expected:
                    problems.append(
                        f"twilio: {number} ({slug}) messaging webhook is {url or 'unset'!r}, "
                        f"expected {expected!r}"
                    )
    finally:
        notifier.close()
    return problems
