"""What every `tipline` command shares: known failures as one line, never a traceback.

Kept light: `tipline triage` loads this and its own module only, not the app."""

from __future__ import annotations

import sys
from typing import Any

import click
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
