"""The names the server resolves, cached for a moment: a request otherwise spends more time
in registry queries (alias, remote, version, files) than in the relay itself. A tag moved or
an alias changed takes effect within `ttl` seconds."""

from __future__ import annotations

import asyncio
import time

from modeldepot.depot import Depot
from modeldepot.registry import ModelVersion
from modeldepot.registry.gateway import Alias, GatewayStore, Remote

__all__ = ["Directory"]


class Directory:
    def __init__(self, depot: Depot, ttl: float = 2.0) -> None:
        self.depot = depot
        self.ttl = ttl
        self._gateway: tuple[float, dict[str, Alias], dict[str, Remote]] = (-1e9, {}, {})
        self._versions: dict[str, tuple[float, ModelVersion]] = {}
        self._refusals: dict[str, tuple[float, list[str]]] = {}

    async def gateway(self) -> tuple[dict[str, Alias], dict[str, Remote]]:
        loaded, aliases, remotes = self._gateway
        if time.monotonic() - loaded > self.ttl:
            store = GatewayStore(self.depot.registry.engine)
            aliases = {a.name: a for a in await asyncio.to_thread(store.aliases)}
            remotes = {r.name: r for r in await asyncio.to_thread(store.remotes)}
            self._gateway = (time.monotonic(), aliases, remotes)
        return aliases, remotes

    async def version(self, name: str) -> ModelVersion:
        """The version `name` names (raises ModelNotFound / InvalidReference)."""
        cached = self._versions.get(name)
        if cached is not None and time.monotonic() - cached[0] <= self.ttl:
            return cached[1]
        version = await asyncio.to_thread(self.depot.show, name)
        self._versions[name] = (time.monotonic(), version)
        return version

    async def refusals(self, version: ModelVersion) -> list[str]:
        """Why `version` may not be served (quarantine, policy); empty when it may."""
        cached = self._refusals.get(version.digest)
        if cached is not None and time.monotonic() - cached[0] <= self.ttl:
            return cached[1]
        found = await asyncio.to_thread(self.depot.governance.serve_refusals, version)
        self._refusals[version.digest] = (time.monotonic(), found)
        return found

    async def quarantined(self) -> set[str]:
        return await asyncio.to_thread(self.depot.governance.trust.quarantined_digests)
