"""Starting a real `depot serve` on loopback for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

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
