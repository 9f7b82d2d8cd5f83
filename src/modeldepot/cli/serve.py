"""`depot serve`: the OpenAI-compatible HTTP API over the stored models."""

from __future__ import annotations

import dataclasses
import ipaddress

import click

from modeldepot.cli import logs
from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.render import stderr
from modeldepot.depot import Depot
from modeldepot.errors import UsageError

__all__: list[str] = []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--device",
    default=None,
    type=click.Choice(["cpu", "cuda"]),
    help="Where vLLM runs Hugging Face models (default: DEPOT_DEVICE).",
)
@pass_depot
def serve(depot: Depot, host: str, port: int, device: str | None) -> None:
    """Serve the stored models behind an OpenAI-compatible API (/v1/...): GGUF on llama.cpp,
    Hugging Face folders on vLLM (`make vllm`)."""
    import uvicorn

    from modeldepot.server import create_app

    has_keys = bool(depot.settings.api_keys) or depot.keys.any_active()
    if not _is_loopback(host) and not has_keys:
        raise UsageError(
            f"refusing to listen on {host}: without API keys the server is for local use "
            "only; create one with `depot key create NAME` or set DEPOT_API_KEYS"
        )
    # The console shows a line per request and what the depot does (engines, admissions).
    logs.configure(logs.chosen_level() or "INFO")
    stderr.print(f"serving on http://{host}:{port}/v1 (Ctrl-C stops)")
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    settings = depot.settings
    if device is not None and not settings.device.startswith(device):
        settings = dataclasses.replace(settings, device=device)
    app = create_app(settings, listen=f"http://{local}:{port}", bind=(host, port))
    uvicorn.run(app, host=host, port=port, log_level="warning")
