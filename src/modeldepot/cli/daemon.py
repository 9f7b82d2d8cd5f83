"""The `depot serve` of this DEPOT_HOME, when one runs: it announces itself in
`DEPOT_HOME/serve.json` (URL, pid, a local key), and `depot run`, `ps` and `stop` talk to it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modeldepot.errors import DepotError
from modeldepot.layout import Layout

__all__ = ["RunningServer", "running_server"]


@dataclass(frozen=True)
class RunningServer:
    url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def call(self, method: str, path: str, body: object = None) -> Any:
        """The server's JSON answer (DepotError naming its error otherwise)."""
        reply = httpx.request(method, f"{self.url}{path}", json=body, headers=self.headers,
                              timeout=60)  # fmt: skip
        if reply.status_code != 200:
            try:
                message = reply.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = reply.text[:200]
            raise DepotError(f"depot serve at {self.url}: {message}")
        return reply.json()


def running_server(home: Path) -> RunningServer | None:
    """The server of `home` that answers, if one runs."""
    try:
        announced = json.loads(Layout(home).announcement.read_text())
        url, key, pid = str(announced["url"]), str(announced["key"]), int(announced["pid"])
        os.kill(pid, 0)
        if httpx.get(f"{url}/health", timeout=2).status_code == 200:
            return RunningServer(url, key)
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError):
        pass
    return None
