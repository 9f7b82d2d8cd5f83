"""The names the server resolves, cached for a moment: a request otherwise spends more time
in registry queries (alias, remote, version, files, policy) than in the relay itself. A tag
moved, an alias changed or a version quarantined takes effect within `ttl` seconds. The
resolution itself is the depot's one `Resolver`, over these cached look-ups."""

from __future__ import annotations

import asyncio
import time

from modeldepot.customise.presets import Preset, preset_of
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.refs import Reference
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
        self._bases: dict[str, tuple[float, ModelVersion | None]] = {}
        self._adapters: tuple[float, dict[str, list[ModelVersion]]] = (-1e9, {})
        self._presets: dict[str, Preset | None] = {}
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

    async def version(self, name: str) -> ModelVersion:
        """The stored version `name` (NAME[:TAG] or NAME@sha256:...) names, with the gate's
        status (ModelNotFound / InvalidReference when none)."""
        return await asyncio.to_thread(self._version, name)

    async def gateway(self) -> GatewaySnapshot:
        return await asyncio.to_thread(self._gateway_now)

    async def refusals(self, version: ModelVersion) -> list[str]:
        """Why `version` may not be served or exported (pending, quarantine, policy)."""
        return await asyncio.to_thread(self._refusals_of, version)

    def capabilities(self, version: ModelVersion) -> Capabilities:
        found = self._capabilities.get(version.digest)
        if found is None:
            base = self.base_of(version) if version.is_adapter else None
            found = self.engines.capabilities(version, base)
            if not version.is_adapter or base is not None:
                self._capabilities[version.digest] = found
        return found

    def base_of(self, adapter: ModelVersion) -> ModelVersion | None:
        """The admitted base version an adapter applies to (None when it is gone or refused)."""
        link = adapter.adapter_of
        if link is None:
            return None
        cached = self._bases.get(link.target_digest or "")
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        base: ModelVersion | None = None
        try:
            found = self.depot.names.show(link.target)
            if found.digest != link.target_digest:  # the name moved on: the pinned version
                repository = Reference.parse(link.target).repository
                found = self.depot.names.show(f"{repository}@{link.target_digest}")
            if not self._refusals_of(found):
                base = found
        except DepotError:
            base = None
        self._bases[link.target_digest or ""] = (time.monotonic(), base)
        return base

    def preset(self, version: ModelVersion) -> Preset | None:
        """The preset `version` carries, if it is one (versions are immutable: kept)."""
        if version.digest not in self._presets:
            self._presets[version.digest] = preset_of(version, self.depot.store.read_bytes)
        return self._presets[version.digest]

    def preset_base(self, version: ModelVersion) -> ModelVersion | None:
        """The admitted version a preset was made from, holding the same weights (so the two
        can share one engine); None when it is gone, refused, or not the same files."""
        link = next((x for x in version.lineage if x.relation == "preset" and x.target_digest),
                    None)  # fmt: skip
        if link is None or version.is_adapter:
            return None
        try:
            repository = Reference.parse(link.target).repository
            base = self.depot.names.show(f"{repository}@{link.target_digest}")
        except DepotError:
            return None
        mine = {f.digest for f in version.files if f.kind == "weights"}
        if self._refusals_of(base) or mine != {f.digest for f in base.files if f.kind == "weights"}:
            return None
        return base

    def adapters_of(self, base: ModelVersion) -> list[ModelVersion]:
        """The admitted adapters of `base`, oldest first (so each keeps its engine slot)."""
        loaded, by_base = self._adapters
        if not self._fresh(loaded):
            by_base = {}
            seen: set[str] = set()
            for v in sorted(self.depot.names.versions(), key=lambda v: (v.created_at, v.digest)):
                link = v.adapter_of
                if link is None or v.digest in seen or not v.admitted:
                    continue
                seen.add(v.digest)
                by_base.setdefault(link.target_digest or "", []).append(v)
            self._adapters = (time.monotonic(), by_base)
        return list(by_base.get(base.digest, []))
