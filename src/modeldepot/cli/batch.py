"""`depot batch run INPUT.jsonl -o OUTPUT.jsonl`: OpenAI's batch format, answered by the depot
(in this process, or a running server with `--server`), like vLLM's `run-batch`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import json_option, print_json, stderr, stdout
from modeldepot.depot import Depot

__all__: list[str] = []


@app.group()
def batch() -> None:
    """Batches of requests in OpenAI's Batch API format (JSONL)."""


@batch.command("run")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="Where the results go (JSONL, one line per request, in the input's order).",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(path_type=Path),
    help="Where failed requests go (default: beside the output, .errors.jsonl).",
)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--server", help="A running depot server's base URL (default: in this process).")
@click.option("--api-key-env", help="Variable holding the server's API key.")
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Spread the requests over this Ray cluster (with --server).",
)
@json_option
@pass_depot
def run(depot: Depot, source: Path, output: Path, errors_path: Path | None, concurrency: int,
        server: str | None, api_key_env: str | None, ray_address: str | None,
        as_json: bool) -> None:  # fmt: skip
    """Answer every request of SOURCE (lines of {custom_id, method, url, body}); each bad line
    is refused before any request is sent."""
    from modeldepot.config import secret_from_env
    from modeldepot.connection import over_http
    from modeldepot.server.batches import MAX_BYTES, check_batch, run_lines, run_on_ray, sender
    from modeldepot.server.inprocess import in_process

    try:
        with open(source, "rb") as f:
            data = f.read(MAX_BYTES + 1)  # one byte more tells a file that is too big
    except FileNotFoundError:
        raise CommandError(f"{source}: no such file", 1) from None
    lines = check_batch(data)
    key = secret_from_env(api_key_env)
    connect = over_http(server, key) if server else in_process(depot.settings)
    errors_path = errors_path or output.with_suffix(".errors.jsonl")

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with connect as client:
            return await run_lines(lines, sender(client), concurrency)

    if ray_address:
        if not server:
            raise CommandError("--ray needs --server URL: the Ray workers ask that server", 2)
        outputs, failures = run_on_ray(ray_address, server, key, lines, concurrency)
    else:
        outputs, failures = asyncio.run(main())
    tmp = output.with_name(output.name + ".partial")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in outputs))
    tmp.replace(output)
    if failures:
        errors_path.write_text("".join(json.dumps(r) + "\n" for r in failures))
    summary = {
        "requests": len(lines),
        "completed": len(outputs),
        "failed": len(failures),
        "output": str(output),
        "errors": str(errors_path) if failures else None,
    }
    if as_json:
        print_json(summary)
    else:
        stdout.print(f"{len(outputs)} of {len(lines)} requests answered -> {output}",
                     markup=False, highlight=False)  # fmt: skip
        if failures:
            stderr.print(f"{len(failures)} failed -> {errors_path}", markup=False)
    if failures:
        raise CommandError(f"{len(failures)} of {len(lines)} requests failed", 1)
