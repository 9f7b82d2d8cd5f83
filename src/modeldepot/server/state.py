"""What the HTTP server holds while it runs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.runtime.pool import RunnerPool
from modeldepot.server.auth import Gatekeeper
from modeldepot.server.directory import Directory
from modeldepot.server.metrics import Metrics

__all__ = ["ServerState"]


@dataclass
class ServerState:
    settings: Settings
    depot: Depot
    pool: RunnerPool
    client: httpx.AsyncClient
    """To the engines on loopback (no keep-alive)."""
    remote_client: httpx.AsyncClient
    """To remote models (keep-alive: TLS handshakes are worth saving)."""
    gate: Gatekeeper
    metrics: Metrics
    directory: Directory
