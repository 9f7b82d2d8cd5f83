"""`depot ps` and `depot stop MODEL`: what the running `depot serve` of this home has loaded,
and unloading a model from it (as `ollama ps` and `ollama stop` do)."""

from __future__ import annotations

from typing import Any

import click

from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.daemon import RunningServer, running_server
from modeldepot.cli.render import print_json, stderr, stdout
from modeldepot.depot import Depot
from modeldepot.describe.view import human_size
from modeldepot.errors import DepotError

__all__: list[str] = []


def _server(depot: Depot) -> RunningServer:
    server = running_server(depot.settings.home)
    if server is None:
        raise DepotError(f"no depot serve of {depot.settings.home} is running")
    return server


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def ps(depot: Depot, as_json: bool) -> None:
    """Models the running server has loaded: engine, memory, requests in flight, idle time."""
    loaded: list[dict[str, Any]] = _server(depot).call("GET", "/depot/api/ps")
    if as_json:
        print_json(loaded)
        return
    if not loaded:
        stderr.print("no model is loaded")
        return
    stdout.print(f"{'NAME':<32} {'ENGINE':<12} {'KIND':<9} {'PID':>7} {'MEMORY':>9} "
                 f"{'ESTIMATE':>9} {'ACTIVE':>6}  IDLE", markup=False)  # fmt: skip
    for m in loaded:
        resident, estimate = human_size(m["resident_memory"]), human_size(m["memory_estimate"])
        stdout.print(f"{m['name']:<32} {m.get('engine', ''):<12} {m['kind']:<9} {m['pid']:>7} "
                     f"{resident:>9} {estimate:>9} {m['active_requests']:>6}  "
                     f"{m['idle_seconds']:.0f} s", markup=False)  # fmt: skip


@app.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def stop(depot: Depot, model: str, as_json: bool) -> None:
    """Unload MODEL from the running server (its engines stop; the next request loads it)."""
    stopped: list[dict[str, Any]] = _server(depot).call("POST", "/depot/api/stop", {"model": model})
    if as_json:
        print_json(stopped)
    elif stopped:
        for m in stopped:
            stdout.print(f"stopped {m['name']} ({m['kind']}, pid {m['pid']})", markup=False)
    else:
        stderr.print(f"{model} is not loaded")
