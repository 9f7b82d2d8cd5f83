"""The `depot` command line: one small module per command group over one service call each."""

from __future__ import annotations

from modeldepot.cli import (
    batch,
    customise,
    evaluate,
    gateway,
    keys,
    mirror,
    models,
    ps,
    redteam,
    run,
    serve,
    store,
    trust,
)
from modeldepot.cli.app import app

__all__ = ["app", "main"]
_COMMAND_MODULES = (
    batch, customise, evaluate, gateway, keys, mirror, models, ps, redteam, run, serve, store,
    trust,
)  # fmt: skip


def main() -> None:
    app(prog_name="depot")
