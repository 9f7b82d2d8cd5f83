"""`depot data check FILE`: fine-tuning data checked before any training."""

from __future__ import annotations

from pathlib import Path

import click

from modeldepot.cli.app import CommandError, app
from modeldepot.cli.render import json_option, print_json, stderr, stdout
from modeldepot.customise import check_data

__all__: list[str] = []


@app.group()
def data() -> None:
    """Fine-tuning data: OpenAI chat format, prompt/completion, or text (JSONL)."""


@data.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def check(path: Path, as_json: bool) -> None:
    """Check every record of a JSONL training file; exit 1 naming each bad one by line."""
    report = check_data(path)
    if as_json:
        print_json(report.to_dict())
    else:
        for error in report.errors:
            stderr.print(f"  {error}", markup=False, soft_wrap=True)
        if report.ok:
            roles = ", ".join(f"{n} {r}" for r, n in sorted(report.roles.items()))
            summary = (
                f"{path}: {report.examples} {report.format} examples, "
                f"{report.trained_messages} trained on, {report.characters:,} characters"
            )
            stdout.print(summary + (f" ({roles})" if roles else ""), markup=False)
    if not report.ok:
        count = len(report.errors)
        raise CommandError(f"{path}: {count} problem{'s' if count != 1 else ''}", 1)
