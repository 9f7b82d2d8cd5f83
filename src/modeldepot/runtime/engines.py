"""The engines the depot knows, found through the `modeldepot.engines` entry-point group
(llama.cpp's server, the scoring engine and the sentence-transformers engine register there
like any third-party engine), and the one place that answers what a version can do and which
engine does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.plugins import load, ranked
from modeldepot.registry import ModelVersion
from modeldepot.runtime.engine import Adapter, Capabilities, Capability, Engine, EngineSpec
from modeldepot.runtime.process import EngineProcess, ModelUnavailable, free_port
from modeldepot.store import BlobStore, materialize

__all__ = ["ENTRY_POINT_GROUP", "Engines", "StoredFiles"]

ENTRY_POINT_GROUP = "modeldepot.engines"
# When two engines can do the same thing, the first in this order does it.
_ORDER = ("llama-server", "scorer", "sentence")
# What an adapter can do through its base's engine.
_THROUGH_ADAPTERS = frozenset({Capability.CHAT, Capability.COMPLETION, Capability.TOOLS})


@dataclass(frozen=True)
class StoredFiles:
    """A version's bytes as real files, from the blob store."""

    store: BlobStore
    home: Path

    def file(self, digest: str) -> Path:
        """The blob's file, re-verified if it changed since last found good: an engine never
        loads bytes that are not the ones admitted."""
        return self.store.verified_path(digest)

    def folder(self, version: ModelVersion) -> Path:
        for _, digest in version.layout:
            self.store.verified_path(digest)
        return materialize(self.store, version.digest, version.layout, self.home)


class Engines:
    def __init__(self, engines: Iterable[Engine]) -> None:
        self._engines = {e.name: e for e in ranked(engines, _ORDER)}

    @classmethod
    def from_entry_points(cls) -> Engines:
        return cls(load(ENTRY_POINT_GROUP))

    @property
    def names(self) -> list[str]:
        return list(self._engines)

    def get(self, name: str) -> Engine:
        try:
            return self._engines[name]
        except KeyError:
            raise ModelUnavailable(
                f"no engine named {name!r}; installed: {', '.join(self._engines)}"
            ) from None

    def capabilities(self, version: ModelVersion, base: ModelVersion | None = None
                     ) -> Capabilities:  # fmt: skip
        """What `version` can do, and which engine does each thing. An adapter (`base` given:
        the version it applies to) generates through its base's engine, when that engine
        applies adapters; alone it can do nothing."""
        if version.is_adapter:
            if base is None:
                return Capabilities()
            of_base = self.capabilities(base)
            applier = of_base.engines.get(Capability.ADAPTERS)
            if applier is None:
                return Capabilities()
            kept = {c: e for c, e in of_base.engines.items()
                    if e == applier and c in _THROUGH_ADAPTERS}  # fmt: skip
            return Capabilities(kept, native_tools=of_base.native_tools,
                                native_n=of_base.native_n)  # fmt: skip
        chosen: dict[Capability, str] = {}
        for engine in self._engines.values():
            for capability in engine.capabilities(version):
                chosen.setdefault(capability, engine.name)
        generator = chosen.get(Capability.CHAT) or chosen.get(Capability.COMPLETION)
        if generator is None:
            return Capabilities(chosen)
        engine = self._engines[generator]
        return Capabilities(chosen, native_tools=engine.native_tools(version),
                            native_n=engine.native_n)  # fmt: skip

    def spec(
        self,
        version: ModelVersion,
        capability: Capability,
        files: StoredFiles,
        settings: Settings,
        adapters: tuple[Adapter, ...] = (),
    ) -> EngineSpec:
        """What to start to serve `capability` of `version` (ModelUnavailable when no engine
        can)."""
        can = self.capabilities(version)
        name = can.engines.get(capability)
        if name is None:
            hint = (
                f"it serves {', '.join(can.to_list())}" if can.servable
                else "the local engines run GGUF models (convert it to GGUF first)"
            )  # fmt: skip
            raise ModelUnavailable(
                f"{version.reference} is {version.info.format} and no installed engine can serve "
                f"{capability} for it; {hint}"
            )
        if adapters and Capability.ADAPTERS not in self._engines[name].capabilities(version):
            raise ModelUnavailable(f"the {name} engine applies no adapters")
        return self._engines[name].spec(version, capability, files, settings, adapters)

    def launcher(self, settings: Settings, log_dir: Path) -> Callable[[EngineSpec], EngineProcess]:
        """The pool's way to start an engine process for a spec."""

        def launch(spec: EngineSpec) -> EngineProcess:
            port = free_port()
            command = self.get(spec.engine).launch(spec, port, settings)
            return EngineProcess.start(spec, command, port, log_dir)

        return launch
