"""The `tipline` console command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError as SQLProgrammingError

from tipline.errors import TiplineError


class TiplineGroup(click.Group):
    """Turns known failures into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TiplineError as e:
            click.echo(f"tipline: {e}", err=True)
            sys.exit(2)
        except (OperationalError, SQLProgrammingError) as e:
            reason = str(e.orig).strip().splitlines()[0] if e.orig else type(e).__name__
            click.echo(
                f"tipline: database unavailable or not initialized ({reason}); "
                "check TIPLINE_DATABASE_URL and run `tipline init`",
                err=True,
            )
            sys.exit(1)
        except ConnectionError as e:
            click.echo(f"tipline: service unavailable: {e}", err=True)
            sys.exit(1)


@contextmanager
def app_context() -> Iterator[Flask]:
    """The app from the environment, in an app context; its connections closed on the way out."""
    from tipline.cli.assemble import build_app  # noqa: PLC0415
    from tipline.extensions import db  # noqa: PLC0415

    app = build_app()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


@click.group(cls=TiplineGroup)
@click.version_option(package_name="tipline")
def main() -> None:
    """Anonymous tip line and alert backend for schools."""


def _register() -> None:
    from tipline.cli import admin, run  # noqa: PLC0415 - commands import the app lazily
    from tipline.cli.oncall_cmd import oncall  # noqa: PLC0415
    from tipline.cli.triage_cmd import triage_cmd  # noqa: PLC0415

    for cmd in (
        admin.init,
        admin.create_user,
        admin.rotate_key,
        admin.purge,
        run.serve,
        run.worker,
        run.dev,
        triage_cmd,
        admin.export_corrections,
        oncall,
    ):
        main.add_command(cmd)


_register()
