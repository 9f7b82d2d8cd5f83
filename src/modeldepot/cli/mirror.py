"""`depot mirror ...`: the upstream hubs `depot pull hf://...` and `ollama://...` go through."""

from __future__ import annotations

import click

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import json_option, print_json, report, stdout
from modeldepot.depot import Depot
from modeldepot.registry.mirrors import Mirror

__all__: list[str] = []


@app.group()
def mirror() -> None:
    """Upstream hubs models are pulled through (Hugging Face, Ollama, another depot), each
    model scanned, judged by the policy and signed before it is visible."""


@mirror.command("add")
@click.argument("name")
@click.option("--hf", "hf_url", help="A Hugging Face Hub: https://huggingface.co, or "
              "another depot's http://HOST:PORT/hf.")  # fmt: skip
@click.option("--ollama", "ollama_url", help="An Ollama registry: https://registry.ollama.ai.")
@click.option("--depot", "depot_url", help="Another depot, over its own API: http://HOST:PORT.")
@click.option("--api-key-env", help="Environment variable holding the upstream's token.")
@click.option("--on-demand", is_flag=True,
              help="Fetch a model a client asks for and this depot lacks.")  # fmt: skip
@json_option
@pass_depot
def mirror_add(depot: Depot, name: str, hf_url: str | None, ollama_url: str | None,
               depot_url: str | None, api_key_env: str | None, on_demand: bool,
               as_json: bool) -> None:  # fmt: skip
    """Add (or change) the mirror NAME: one of --hf, --ollama, --depot."""
    given = [(kind, url) for kind, url in (("hf", hf_url), ("ollama", ollama_url),
                                           ("depot", depot_url)) if url]  # fmt: skip
    if len(given) != 1:
        raise CommandError("give exactly one of --hf URL, --ollama URL, --depot URL", 2)
    kind, url = given[0]
    added = depot.mirrors.add(Mirror(name, kind, url, api_key_env, on_demand))
    demand = ", on demand" if added.on_demand else ""
    report(as_json, added.to_dict(), f"{added.name} -> {added.url} ({added.kind}{demand})")


@mirror.command("list")
@json_option
@pass_depot
def mirror_list(depot: Depot, as_json: bool) -> None:
    """List mirrors."""
    mirrors = depot.mirrors.mirrors()
    if as_json:
        print_json([m.to_dict() for m in mirrors])
        return
    for m in mirrors:
        key = f" key from ${m.api_key_env}" if m.api_key_env else ""
        demand = " on demand" if m.on_demand else ""
        stdout.print(f"{m.name}  {m.kind}  {m.url}{key}{demand}", markup=False)


@mirror.command("rm")
@click.argument("name")
@json_option
@pass_depot
def mirror_rm(depot: Depot, name: str, as_json: bool) -> None:
    """Remove a mirror (what was pulled through it stays)."""
    depot.mirrors.remove(name)
    report(as_json, {"removed": name}, f"removed {name}")
