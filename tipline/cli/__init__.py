"""The `tipline` console command."""

from __future__ import annotations

import click

from tipline.cli import admin, run
from tipline.cli.base import TiplineGroup, app_context
from tipline.cli.check_cmd import check
from tipline.cli.oncall_cmd import oncall
from tipline.cli.triage_cmd import triage_cmd


@click.group(cls=TiplineGroup)
@click.version_option(package_name="tipline")
def main() -> None:
    """Anonymous tip line and alert backend for schools."""


for _cmd in (
    admin.init,
    admin.create_user,
    admin.reset_second_factor,
    admin.rotate_key,
    admin.purge,
    run.serve,
    run.worker,
    run.dev,
    triage_cmd,
    admin.export_corrections,
    oncall,
    check,
):
    main.add_command(_cmd)

__all__ = ["app_context", "main"]
