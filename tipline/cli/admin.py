"""Administration commands: init, create-user, reset-second-factor, rotate-key, purge."""

from __future__ import annotations

import json
import os
import sys

import click
from flask_migrate import upgrade
from sqlalchemy import select

from tipline.cli.assemble import app_context
from tipline.district.config import load_district
from tipline.district.oncall import coverage_gaps
from tipline.district.sync import sync_district
from tipline.errors import ConfigError, TiplineError
from tipline.extensions import db, dbsession
from tipline.models import User
from tipline.platform.services import services
from tipline.staff.accounts import reset_second_factor as reset_factor
from tipline.staff.accounts import upsert_user
from tipline.staff.corrections import corrected_examples
from tipline.vault.retention import apply_retention


@click.command()
def init() -> None:
    """Create or upgrade the schema and load the configuration file (safe to run again)."""

    with app_context() as app:
        svc = services(app)
        settings = svc.settings
        district = load_district(settings.config_path)  # validate before touching the database
        upgrade()
        if svc.vault.ensure_lookup_key(dbsession()):
            click.echo(
                f"created the lookup key (wrapped by master key {svc.vault.keyring.current_id!r})"
            )
        report = sync_district(dbsession(), district)
        db.session.commit()
    for line in report.lines():
        click.echo(line)
    for warning in coverage_gaps(district):
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"tipline: database ready; configuration {settings.config_path} loaded "
        f"({len(district.schools)} schools, {len(district.staff)} staff, "
        f"{len(district.shifts)} shifts, {len(district.policies)} policies)"
    )


@click.command("create-user")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "sro", "counselor", "district"]))
@click.option("--school", "schools", multiple=True, help="school slug (repeatable)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--totp-secret", default=None, help="enroll TOTP with this base32 secret")
@click.option("--staff", "staff_key", default=None, help="link to a staff id of the config")
def create_user(
    email: str,
    role: str,
    schools: tuple[str, ...],
    password_stdin: bool,
    totp_secret: str | None,
    staff_key: str | None,
) -> None:
    """Create or update a staff login for the admin view."""

    if not password_stdin:
        raise ConfigError("--password-stdin is required (passwords never go on the command line)")
    password = sys.stdin.readline().rstrip("\r\n")
    with app_context() as app:
        user, created = upsert_user(
            dbsession(),
            services(app).vault,
            email=email,
            role=role,
            password=password,
            schools=list(schools),
            totp_secret=totp_secret,
            staff_key=staff_key,
        )
        db.session.commit()
        click.echo(f"{'created' if created else 'updated'} user {user.email} ({user.role})")


@click.command("reset-second-factor")
@click.argument("email")
def reset_second_factor(email: str) -> None:
    """Forget a login's second factor and recovery codes and end its sessions (audited)."""

    with app_context() as app:
        session = dbsession()
        user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
        if user is None:
            raise ConfigError(f"no login with email {email.strip().lower()!r}")
        reset_factor(session, services(app).vault, user, "cli")
        db.session.commit()
        click.echo(f"reset the second factor of {user.email}; it enrolls again at next sign-in")


@click.command("rotate-key")
def rotate_key() -> None:
    """Re-wrap every stored data key under the current (first) master key."""

    with app_context() as app:
        vault = services(app).vault
        count = vault.rotate(dbsession())
        db.session.commit()
    click.echo(f"re-wrapped {count} keys under master key {vault.keyring.current_id!r}")


@click.command()
@click.option("--dry-run", is_flag=True, help="say what would go; change nothing")
def purge(dry_run: bool) -> None:
    """Apply the retention rules now (also runs daily in the worker)."""

    with app_context():
        result = apply_retention(dbsession(), dry_run=dry_run)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    click.echo(result.describe())


@click.command("export-corrections")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="file to write (mode 0600); default: standard output",
)
def export_corrections(output: str | None) -> None:
    """Write staff-corrected tips as JSON lines for `tipline triage --eval` (contains tip text)."""

    click.echo(
        "warning: the export holds tip text in the clear; retention (tipline purge) cannot "
        "reach it: keep it off shared disks and delete it once used",
        err=True,
    )
    with app_context() as app:
        lines = [
            json.dumps(example, ensure_ascii=False)
            for example in corrected_examples(dbsession(), services(app).vault)
        ]
    text = "".join(line + "\n" for line in lines)
    if output is None:
        click.echo(text, nl=False)
    else:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    click.echo(f"exported {len(lines)} corrected tips", err=True)


__all__ = [
    "TiplineError",
    "create_user",
    "export_corrections",
    "init",
    "purge",
    "reset_second_factor",
    "rotate_key",
]
