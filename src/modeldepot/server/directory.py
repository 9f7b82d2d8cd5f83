"""The names the server resolves, cached for a moment: a request otherwise spends more time
in registry queries (alias, remote, version, files, policy) than in the relay itself. A tag
moved, an alias changed or a version quarantined takes effect within `ttl` seconds. The
resolution itself is the depot's one `Resolver`, over these cached look-ups."""

from __future__ import annotations

import asyncio
import time

from modeldepot.depot import Depot
from modeldepot.registry import ModelVersion
from modeldepot.registry.resolver import GatewaySnapshot, Resolution, Resolver
from modeldepot.runtime import Capabilities, Engines

__all__ = ["Directory"]


class Directory:
    def __init__(self, depot: Depot, engines: Engines, ttl: float = 2.0) -> None:
        self.depot = depot
        self.engines = engines
        self.ttl = ttl
        self._gateway: tuple[float, GatewaySnapshot] = (-1e9, ({}, {}))
        self._versions: dict[str, tuple[float, ModelVersion]] = {}
        self._refusals: dict[str, tuple[float, list[str]]] = {}
        self._resolutions: dict[tuple[str, bool], tuple[float, Resolution]] = {}
        self._capabilities: dict[str, Capabilities] = {}
        self.resolver = Resolver(self._version, self._gateway_now, self._refusals_of)

    def _fresh(self, at: float) -> bool:
        return time.monotonic() - at <= self.ttl

    def _gateway_now(self) -> GatewaySnapshot:
        loaded, snapshot = self._gateway
        if not self._fresh(loaded):
            store = self.depot.gateway
            snapshot = ({a.name: a for a in store.aliases()}, {r.name: r for r in store.remotes()})
            self._gateway = (time.monotonic(), snapshot)
        return snapshot

    def _version(self, name: str) -> ModelVersion:
        cached = self._versions.get(name)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        version = self.depot.names.show(name)
        self._versions[name] = (time.monotonic(), version)
        return version

    def _refusals_of(self, version: ModelVersion) -> list[str]:
        cached = self._refusals.get(version.digest)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        found = self.depot.admission.refusals(version)
        self._refusals[version.digest] = (time.monotonic(), found)
        return found

    async def resolve(self, name: str, *, private: bool) -> Resolution:
        """Which models `name` reaches (ModelNotFound / InvalidReference when none)."""
        cached = self._resolutions.get((name, private))
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        found = await asyncio.to_thread(self.resolver.resolve, name, private=private)
        self._resolutions[(name, private)] = (time.monotonic(), found)
        return found

    async def gateway(self) -> GatewaySnapshot:
        return await asyncio.to_thread(self._gateway_now)

    async def refusals(self, version: ModelVersion) -> list[str]:
        """Why `version` may not be served or exported (pending, quarantine, policy)."""
        return await asyncio.to_thread(self._refusals_of, version)

    def capabilities(self, version: ModelVersion) -> Capabilities:
        found = self._capabilities.get(version.digest)
        if found is None:
            found = self._capabilities[version.digest] = self.engines.capabilities(version)
        return found
