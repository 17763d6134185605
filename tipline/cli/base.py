"""What every `tipline` command shares: one-line failures, and the assembled app in a context."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError as SQLProgrammingError

from tipline.cli.assemble import build_app
from tipline.errors import TiplineError
from tipline.extensions import db


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
    app = build_app()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
