"""The `depot` command group: builds the depot from the environment and turns errors into
messages and exit codes (1: refused input, 2: usage error)."""

from __future__ import annotations

from typing import Any

import click

from modeldepot._version import __version__
from modeldepot.cli import logs
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError

__all__ = ["DepotGroup", "app", "pass_depot"]


class CommandError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.secho(f"error: {self.message}", err=True, fg="red")


class DepotGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DepotError as exc:
            raise CommandError(str(exc), exc.exit_code) from None
        except OSError as exc:  # disk full, permissions: say so plainly
            where = f": {exc.filename}" if exc.filename else ""
            raise CommandError(f"{exc.strerror or exc}{where}", 1) from None


@click.group(cls=DepotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="depot")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log what is done on stderr: -v INFO, -vv DEBUG (or DEPOT_LOG_LEVEL).",
)
@click.pass_context
def app(ctx: click.Context, verbose: int) -> None:
    """modeldepot: receive, verify, describe, evaluate and serve open models.

    Everything lives under DEPOT_HOME (default ~/.modeldepot); the registry is SQLite there
    unless DEPOT_DATABASE_URL names another database.
    """
    settings = Settings.from_env()
    chosen = ("DEBUG" if verbose > 1 else "INFO") if verbose else settings.log_level
    logs.configure(chosen or "WARNING", chosen=chosen is not None)
    ctx.obj = ctx.with_resource(Depot(settings))


pass_depot = click.make_pass_decorator(Depot)
