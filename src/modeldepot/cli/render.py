"""How the command line prints: sizes, tables, JSON, progress bars, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from modeldepot.describe.view import human_size
from modeldepot.formats.base import format_params
from modeldepot.registry import ModelVersion
from modeldepot.store import Progress as ProgressCallback

__all__ = [
    "bytes_progress",
    "human_size",
    "json_option",
    "path_size",
    "print_json",
    "report",
    "stderr",
    "stdout",
    "version_table",
    "working",
]

# Piped output keeps whole lines (no wrapping or ellipsis at 80 columns) so scripts can cut it.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 400)
stderr = Console(stderr=True, highlight=False)


def path_size(path: Path) -> int | None:
    """Bytes of a file, or of the files under a folder (links not followed); None when the
    path does not exist."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return None


def print_json(data: Any) -> None:
    stdout.out(json.dumps(data, indent=2, default=str), highlight=False)


def report(as_json: bool, data: Any, text: str) -> None:
    """What a command did: `data` as JSON with --json, else `text` for a person."""
    if as_json:
        print_json(data)
    else:
        stdout.print(text, markup=False)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
"""The --json flag every listing and every state-changing command has."""


def version_table(versions: list[ModelVersion]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns: tuple[str, ...] = (
        "NAME",
        "DIGEST",
        "SIZE",
        "FORMAT",
        "ARCH",
        "PARAMS",
        "QUANT",
        "LICENCE",
        "STATUS",
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    for v in versions:
        info = v.info
        table.add_row(
            str(v.reference),
            v.digest.removeprefix("sha256:")[:12],
            human_size(v.size),
            info.format,
            info.architecture or "-",
            format_params(info.parameters) if info.parameters else "-",
            info.quantization or "-",
            info.license or "-",
            f"{v.status} (exception)" if v.exception else v.status,
        )
    return table


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner on stderr while something without a measurable progress runs (a model
    loading, files hashed by the signing library); silent when stderr is not a terminal."""
    if not stderr.is_terminal:
        yield
        return
    with stderr.status(what):
        yield


@contextmanager
def bytes_progress(description: str, total: int | None) -> Iterator[ProgressCallback]:
    """A transient progress bar on stderr (silent when stderr is not a terminal)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
