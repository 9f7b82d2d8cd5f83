"""`depot redteam MODEL [--probe NAME]... [--generations N] [--json]`: garak's probes against a
model through the depot's own OpenAI-compatible server (one listening on loopback inside this
command, or `--server URL`)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import click
from rich.table import Table

from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.render import json_option, print_json, stderr, stdout
from modeldepot.config import Settings, secret_from_env
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, UsageError

if TYPE_CHECKING:
    from modeldepot.evaluation.garak import Probe

__all__: list[str] = []


@contextlib.contextmanager
def listening(settings: Settings) -> Iterator[tuple[str, str]]:
    """The depot's server over `settings`, listening on a free loopback port in a thread of
    this process for as long as the block runs: its /v1/ root and the one key it accepts
    besides the configured ones. It measures (the policy's [safety] section refuses nothing
    in it)."""
    import uvicorn

    from modeldepot.server import create_app

    secret = f"md-redteam-{secrets.token_urlsafe(24)}"
    keys = ",".join(k for k in (settings.api_keys, secret) if k)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    app_ = create_app(dataclasses.replace(settings, api_keys=keys, measuring=True),
                      bind=("127.0.0.1", port))  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise DepotError("the depot's server did not start for the red-team run")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1/", secret
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()


@app.command()
@click.argument("model", required=False)
@click.option("--probe", "-p", "probes", multiple=True, metavar="NAME",
              help="A garak probe module (dan) or class (dan.DanInTheWild), repeatable; "
              "default: dan, encoding, promptinject, continuation, leakreplay, malwaregen, "
              "web_injection, snowball, lmrc.")  # fmt: skip
@click.option("--generations", "-g", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Outputs per prompt.")  # fmt: skip
@click.option("--max-prompts", type=click.IntRange(1), default=32, show_default=True,
              help="Prompts per probe class at most, sampled with the seed (probes whose "
              "prompts garak does not sample run whole).")  # fmt: skip
@click.option("--max-tokens", type=click.IntRange(1), default=150, show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=None,
    help="Attempts sent at once (default: the server's slots, DEPOT_PARALLEL).",
)
@click.option("--timeout", type=click.FloatRange(1), default=3600.0, show_default=True,
              help="Seconds the whole garak run may take.")  # fmt: skip
@click.option("--server", help="Red-team through this running depot server (base URL) instead "
              "of one run inside this command.")  # fmt: skip
@click.option("--api-key-env", help="Variable holding the --server's API key.")
@click.option(
    "--list",
    "list_probes",
    is_flag=True,
    help="List garak's probes and whether each runs offline; run nothing.",
)
@json_option
@pass_depot
def redteam(depot: Depot, model: str | None, probes: tuple[str, ...], generations: int,
            max_prompts: int, max_tokens: int, seed: int, parallel: int | None, timeout: float,
            server: str | None, api_key_env: str | None, list_probes: bool,
            as_json: bool) -> None:  # fmt: skip
    """Red-team MODEL with garak (in its own environment, `make garak`): jailbreaks, prompt
    injection, encodings, leaked training text, malware, web injection, snowballing and
    toxicity probes whose detectors run offline. Results are stored as safety evaluations of
    the version that answered, with garak's report and hit log."""
    from modeldepot.evaluation import garak
    from modeldepot.evaluation.redteam import RedteamOptions
    from modeldepot.evaluation.redteam import redteam as run

    if list_probes:
        _list(garak.catalogue(depot.settings.garak_program), as_json)
        return
    if not model:
        raise UsageError("name the model to red-team: depot redteam MODEL")
    # Stopped by SIGTERM, the command still ends garak (its own session) and the engines.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    options = RedteamOptions(probes=probes, generations=generations, seed=seed,
                             max_prompts=max_prompts, max_tokens=max_tokens,
                             parallel=parallel or depot.settings.parallel,
                             timeout=timeout)  # fmt: skip

    def started(chosen: list[garak.Probe], unavailable: dict[str, str]) -> None:
        if as_json:
            return
        stderr.print(f"red-teaming {model} with {len(chosen)} probe classes "
                     f"({generations} generation(s) each)", markup=False)  # fmt: skip
        for name, why in unavailable.items():
            stderr.print(f"unavailable: {name}: {why}", markup=False)

    if server:
        key = secret_from_env(api_key_env) or "none"
        root = server.rstrip("/").removesuffix("/v1") + "/v1/"
        result = run(depot, model, options, base_url=root, api_key=key, on_start=started)
    else:
        garak.select(garak.catalogue(depot.settings.garak_program), probes)  # refuse early
        with listening(depot.settings) as (url, key):
            result = run(depot, model, options, base_url=url, api_key=key, on_start=started)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("PROBE", "ATTEMPTS", "HITS", "ATTACK SUCCESS", "95% INTERVAL"):
        table.add_column(column, no_wrap=True)
    for p in result.probes:
        low, high = p.ci95
        table.add_row(p.probe, str(p.attempts), str(p.hits), f"{p.rate:.3f}",
                      f"[{low:.3f}, {high:.3f}]")  # fmt: skip
    stdout.print(table)
    for p in result.probes:
        if p.missing:
            stderr.print(f"{p.probe}: detectors that gave no result: {', '.join(p.missing)}",
                         markup=False)  # fmt: skip
    stderr.print(
        f"garak {result.garak_version}: report in {result.folder}; detectors are "
        "string matches, so read the hit log before trusting a rate",
        markup=False,
    )


def _list(probes: Mapping[str, Probe], as_json: bool) -> None:
    found = list(probes.values())
    if as_json:
        print_json([{"probe": p.name, "active": p.active, "primary_detector": p.primary,
                     "extended_detectors": list(p.extended), "unavailable": p.unavailable}
                    for p in found])  # fmt: skip
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("PROBE", "ACTIVE", "DETECTOR", "OFFLINE"):
        table.add_column(column)
    for p in found:
        table.add_row(p.name, "yes" if p.active else "no", p.primary,
                      "yes" if not p.unavailable else f"no: {p.unavailable}")  # fmt: skip
    stdout.print(table)
