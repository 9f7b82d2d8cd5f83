"""What the HTTP server holds while it runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.monitor import Accounting, Metrics
from modeldepot.registry.audit import ChainReport
from modeldepot.registry.keys import ApiKey
from modeldepot.runtime import EnginePool, Engines, StoredFiles
from modeldepot.server.auth import Gatekeeper
from modeldepot.server.directory import Directory

__all__ = ["ServerState"]


@dataclass
class ServerState:
    settings: Settings
    depot: Depot
    engines: Engines
    files: StoredFiles
    pool: EnginePool
    client: httpx.AsyncClient
    """To the engines on loopback (no keep-alive)."""
    remote_client: httpx.AsyncClient
    """To remote models (keep-alive: TLS handshakes are worth saving)."""
    gate: Gatekeeper
    metrics: Metrics
    directory: Directory
    background: set[asyncio.Task[None]] = field(default_factory=set)
    """Work the server runs for requests that returned already (batches)."""
    pulls: dict[tuple[str, str], asyncio.Future[Any]] = field(default_factory=dict)
    """Models being fetched through an on-demand mirror, by (repository, revision): the
    requests that ask for one wait on the same pull."""
    chain_checked: tuple[tuple[int, str], ChainReport, datetime] | None = None
    """The audit chain's last check: its head (events, last hash) then, the report, when."""

    def accounting(self, key: ApiKey, model: str, endpoint: str) -> Accounting:
        return Accounting(self.metrics, self.gate.spend, self.depot.usage.record, key, model,
                          endpoint)  # fmt: skip
