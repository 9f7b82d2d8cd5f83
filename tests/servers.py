"""Starting a real `depot serve` on loopback for tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from modeldepot.config import Settings
from modeldepot.server import create_app
from modeldepot.server.hosts import in_process_transport

DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environ = {**os.environ, "DEPOT_HOME": str(home), **env}
    if "DEPOT_DATABASE_URL" not in env:  # the registry is the home's own unless given
        environ.pop("DEPOT_DATABASE_URL", None)
    log = open(home / "serve.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen([*DEPOT, "serve", "--port", str(port)], env=environ,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"depot serve did not start: {(home / 'serve.log').read_text()[-2000:]}")


@contextlib.asynccontextmanager
async def asgi_depot(
    settings: Settings, *, bind: tuple[str, int] | None = None, trusted: bool = True,
    base_url: str = "http://depot",
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:  # fmt: skip
    """The server over `settings` in this process, started, and a client of it over ASGI
    (`trusted`: through the in-process transport, else as if from the network)."""
    app = create_app(settings, bind=bind)
    transport = in_process_transport(app) if trusted else httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url=base_url, timeout=60
    ) as client:  # fmt: skip
        yield app, client


def hf_client(endpoint: str, folder: Path, script: str, token: str | None = None) -> Any:
    """Run `script` (Python using huggingface_hub and friends, unmodified) in a fresh
    interpreter with the environment a user sets: `HF_ENDPOINT=endpoint`, `HF_TOKEN=token`,
    its cache under `folder`. The script prints one JSON line last, which is returned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(folder / "hf-home"),
               HF_HUB_CACHE=str(folder / "hf-cache"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", NO_PROXY="127.0.0.1")  # fmt: skip
    if token is not None:
        env["HF_TOKEN"] = token
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
