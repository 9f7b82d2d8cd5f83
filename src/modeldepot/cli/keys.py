"""`depot key create|list|revoke`: API keys of the HTTP server; `depot usage`: what they served."""

from __future__ import annotations

import click

from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.render import json_option, print_json, report, stderr, stdout
from modeldepot.depot import Depot

__all__: list[str] = []


@app.group()
def key() -> None:
    """API keys: who may call `depot serve`, for which models, how much."""


@key.command("create")
@click.argument("name")
@click.option(
    "--models",
    default="*",
    show_default=True,
    help="Comma-separated globs of model names the key may use, e.g. 'smollm2*'.",
)
@click.option("--rpm", type=int, help="Requests per minute allowed.")
@click.option("--tpd", type=int, help="Tokens (prompt + completion) per day allowed.")
@click.option("--private", is_flag=True, help="Requests with this key never reach remote models.")
@click.option(
    "--admin",
    is_flag=True,
    help="May govern in the web UI: release and hold versions, manage keys.",
)
@json_option
@pass_depot
def create(depot: Depot, name: str, models: str, rpm: int | None, tpd: int | None,
           private: bool, admin: bool, as_json: bool) -> None:  # fmt: skip
    """Create a key; its secret is printed once, only its hash is stored."""
    created, secret = depot.keys.create(name, models=models, rpm=rpm, tpd=tpd, private=private,
                                        admin=admin)  # fmt: skip
    if as_json:
        print_json({**vars(created), "secret": secret})
        return
    stderr.print(f"key {created.name!r} for models {created.models!r}; keep the secret now:")
    stdout.out(secret)


@key.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def list_(depot: Depot, as_json: bool) -> None:
    """List keys (never their secrets)."""
    keys = depot.keys.all()
    if as_json:
        print_json([vars(k) for k in keys])
        return
    for k in keys:
        state = "revoked" if k.revoked_at else "active"
        limits = ", ".join(
            part for part in (f"{k.rpm} rpm" if k.rpm else "", f"{k.tpd} tokens/day" if k.tpd
                              else "", "private" if k.private else "") if part
        )  # fmt: skip
        stdout.print(f"{k.name}  {k.prefix}...  {k.models}  {state}  {limits}", markup=False)


@key.command("revoke")
@click.argument("name")
@json_option
@pass_depot
def revoke(depot: Depot, name: str, as_json: bool) -> None:
    """Revoke a key: requests with it are refused from now on."""
    depot.keys.revoke(name)
    report(as_json, {"revoked": name}, f"revoked {name}")


@app.command()
@click.option("--key", "key_name", help="Only this key's requests.")
@click.option("--limit", type=int, default=50, show_default=True, help="The last N requests.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def usage(depot: Depot, key_name: str | None, limit: int, as_json: bool) -> None:
    """Served requests: key, model, endpoint, status, tokens, latency (newest last)."""
    records = depot.usage.records(key=key_name)[-limit:]
    if as_json:
        print_json([{**vars(r), "at": r.at.isoformat() if r.at else None} for r in records])
        return
    for r in records:
        when = f"{r.at:%Y-%m-%d %H:%M:%S}" if r.at else "-"
        stdout.print(f"{when}  {r.key:<12} {r.model:<24} {r.endpoint:<22} {r.status}  "
                     f"{r.prompt_tokens}+{r.completion_tokens} tokens  {r.latency_ms:.0f} ms",
                     markup=False)  # fmt: skip
