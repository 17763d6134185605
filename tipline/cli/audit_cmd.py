"""`tipline audit verify`: walk the audit log's hash chain."""

from __future__ import annotations

import sys

import click

from tipline.cli.assemble import app_context
from tipline.extensions import dbsession
from tipline.vault.audit import unsealed_count, verify_chain


@click.group("audit")
def audit() -> None:
    """The audit log."""


@audit.command("verify")
def verify() -> None:
    """Walk the audit log's hash chain; exit 0 when whole, else 1 naming the first broken entry."""

    with app_context():
        session = dbsession()
        check = verify_chain(session)
        pending = unsealed_count(session)
    if not check.ok:
        click.echo(
            f"tipline: audit chain broken at entry {check.broken_id} "
            f"(number {check.broken_at} in the chain): it {check.reason}; "
            f"{check.checked - 1} entries before it verified",
            err=True,
        )
        sys.exit(1)
    line = f"audit chain whole: {check.checked} entries verified"
    if pending:
        line += f"; {pending} newer entries not chained yet (the worker chains them)"
    click.echo(line)
