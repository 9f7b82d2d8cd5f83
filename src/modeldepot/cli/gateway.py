"""`depot remote ...` and `depot alias ...`: models elsewhere, and names with fallback."""

from __future__ import annotations

import click

from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.render import json_option, print_json, report, stdout
from modeldepot.depot import Depot
from modeldepot.registry.gateway import Remote

__all__: list[str] = []


@app.group()
def remote() -> None:
    """Remote OpenAI-compatible models (a proprietary API, another depot), served like local
    ones."""


@remote.command("add")
@click.argument("name")
@click.option("--base-url", required=True, help="e.g. https://api.example.com/v1")
@click.option("--model", "upstream_model", required=True, help="The model's name upstream.")
@click.option("--api-key-env", help="Environment variable holding the upstream API key.")
@json_option
@pass_depot
def remote_add(depot: Depot, name: str, base_url: str, upstream_model: str,
               api_key_env: str | None, as_json: bool) -> None:  # fmt: skip
    """Register (or update) a remote model NAME."""
    added = depot.gateway.add_remote(Remote(name, base_url, upstream_model, api_key_env))
    report(as_json, vars(added), f"{added.name} -> {added.base_url} ({added.upstream_model})")


@remote.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def remote_list(depot: Depot, as_json: bool) -> None:
    """List remote models."""
    remotes = depot.gateway.remotes()
    if as_json:
        print_json([vars(r) for r in remotes])
        return
    for r in remotes:
        key = f" key from ${r.api_key_env}" if r.api_key_env else ""
        stdout.print(f"{r.name}  {r.base_url}  {r.upstream_model}{key}", markup=False)


@remote.command("rm")
@click.argument("name")
@json_option
@pass_depot
def remote_rm(depot: Depot, name: str, as_json: bool) -> None:
    """Remove a remote model."""
    depot.gateway.remove_remote(name)
    report(as_json, {"removed": name}, f"removed {name}")


@app.group()
def alias() -> None:
    """Names served by the first of their targets that answers (fallback on failure)."""


@alias.command("set")
@click.argument("name")
@click.argument("target")
@click.option("--fallback", "fallbacks", multiple=True, help="Tried in order when TARGET fails.")
@json_option
@pass_depot
def alias_set(depot: Depot, name: str, target: str, fallbacks: tuple[str, ...],
              as_json: bool) -> None:  # fmt: skip
    """Point NAME at TARGET, then each --fallback in turn."""
    made = depot.gateway.set_alias(name, [target, *fallbacks])
    report(as_json, {"name": made.name, "targets": list(made.targets)},
           f"{made.name} -> {' -> '.join(made.targets)}")  # fmt: skip


@alias.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def alias_list(depot: Depot, as_json: bool) -> None:
    """List aliases."""
    aliases = depot.gateway.aliases()
    if as_json:
        print_json([{"name": a.name, "targets": list(a.targets)} for a in aliases])
        return
    for a in aliases:
        stdout.print(f"{a.name} -> {' -> '.join(a.targets)}", markup=False)


@alias.command("rm")
@click.argument("name")
@json_option
@pass_depot
def alias_rm(depot: Depot, name: str, as_json: bool) -> None:
    """Remove an alias."""
    depot.gateway.remove_alias(name)
    report(as_json, {"removed": name}, f"removed {name}")
