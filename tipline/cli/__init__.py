"""The `tipline` console command.

Subcommands are loaded when they run (click's lazy group): `tipline triage` imports the triage
package and nothing of the web app, the worker or the database.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from tipline.cli.base import TiplineGroup

# name -> "module:attribute", in the order `tipline --help` lists them
COMMANDS = {
    "init": "tipline.cli.admin:init",
    "create-user": "tipline.cli.admin:create_user",
    "reset-second-factor": "tipline.cli.admin:reset_second_factor",
    "rotate-key": "tipline.cli.admin:rotate_key",
    "purge": "tipline.cli.admin:purge",
    "audit": "tipline.cli.audit_cmd:audit",
    "serve": "tipline.cli.run:serve",
    "worker": "tipline.cli.run:worker",
    "dev": "tipline.cli.run:dev",
    "triage": "tipline.cli.triage_cmd:triage_cmd",
    "export-corrections": "tipline.cli.admin:export_corrections",
    "oncall": "tipline.cli.oncall_cmd:oncall",
    "check": "tipline.cli.check_cmd:check",
}


class LazyGroup(TiplineGroup):
    """Imports a subcommand's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: Any = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)  # noqa: S101 - a wrong table entry is a bug
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="tipline")
def main() -> None:
    """Anonymous tip line and alert backend for schools."""


__all__ = ["COMMANDS", "main"]
