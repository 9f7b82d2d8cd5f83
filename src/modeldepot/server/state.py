"""What the HTTP server holds while it runs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.runtime.pool import RunnerPool

__all__ = ["ServerState"]


@dataclass
class ServerState:
    settings: Settings
    depot: Depot
    pool: RunnerPool
    client: httpx.AsyncClient
