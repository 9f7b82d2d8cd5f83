"""The engines the depot knows, found through the `modeldepot.engines` entry-point group
(llama.cpp's server, vLLM, the scoring engine and the sentence-transformers engine register
there like any third-party engine), and the one place that answers what a version can do and
which engine does it.

The rule: the engine DEPOT_ENGINE_<FORMAT> names generates for models of that format; else the
first installed engine, in the order below, that can: llama-server for GGUF, vLLM (when
`make vllm` installed it) for Hugging Face folders. A model no engine can run is listed
nowhere, and asking for it is a clear error (`spec`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.errors import UsageError
from modeldepot.plugins import load, ranked
from modeldepot.registry import ModelVersion
from modeldepot.runtime.engine import Capabilities, Capability, Engine, EngineSpec
from modeldepot.runtime.process import EngineProcess, ModelUnavailable, free_port
from modeldepot.store import BlobStore, materialize

__all__ = ["ENTRY_POINT_GROUP", "Engines", "StoredFiles"]

ENTRY_POINT_GROUP = "modeldepot.engines"
# When two engines can do the same thing, the first in this order does it.
_ORDER = ("llama-server", "vllm", "scorer", "sentence")
# What an adapter can do through its base's engine.
_THROUGH_ADAPTERS = frozenset({Capability.CHAT, Capability.COMPLETION, Capability.TOOLS})
# What DEPOT_ENGINE_<FORMAT> decides: the engine that generates (other engines still embed and
# score what they can).
_GENERATION = frozenset({*_THROUGH_ADAPTERS, Capability.ADAPTERS})


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
    def __init__(self, engines: Iterable[Engine], settings: Settings | None = None) -> None:
        """`settings`: where to look for each engine's runtime and DEPOT_ENGINE_<FORMAT>; None
        takes every engine as installed (tests of the seam)."""
        self._engines = {e.name: e for e in ranked(engines, _ORDER)}
        self._settings = settings
        for model_format, name in settings.engine_choice if settings else ():
            if name not in self._engines:
                raise UsageError(
                    f"DEPOT_ENGINE_{model_format.upper()}={name!r}: no engine of that name; "
                    f"installed: {', '.join(self._engines)}"
                )
        self._installed = {
            e.name: settings is None or e.installed(settings) for e in self._engines.values()
        }

    @classmethod
    def from_entry_points(cls, settings: Settings | None = None) -> Engines:
        return cls(load(ENTRY_POINT_GROUP), settings)

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
        named = self._settings.engine_for(version.info.format) if self._settings else None
        chosen: dict[Capability, str] = {}
        for engine in self._engines.values():
            can = engine.capabilities(version)
            if named is not None and engine.name != named:
                can -= _GENERATION
            if engine.name != named and not self._installed[engine.name]:
                continue
            for capability in can:
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
        adapters: tuple[ModelVersion, ...] = (),
    ) -> EngineSpec:
        """What to start to serve `capability` of `version`, with its adapter versions
        (ModelUnavailable when no engine can)."""
        can = self.capabilities(version)
        name = can.engines.get(capability)
        if name is None:
            raise ModelUnavailable(
                f"{version.reference} is {version.info.format} and no installed engine can serve "
                f"{capability} for it; {self._hint(version, can)}"
            )
        if adapters and can.engines.get(Capability.ADAPTERS) != name:
            raise ModelUnavailable(f"the {name} engine applies no adapters")
        return self._engines[name].spec(version, capability, files, settings, adapters)

    def _hint(self, version: ModelVersion, can: Capabilities) -> str:
        if can.servable:
            return f"it serves {', '.join(can.to_list())}"
        able = [e.name for e in self._engines.values() if e.capabilities(version)]
        missing = [n for n in able if not self._installed[n]]
        if missing:
            how = " (`make vllm`)" if "vllm" in missing else ""
            return f"install the {' or '.join(missing)} engine{how}, or convert it (depot convert)"
        return "llama-server runs GGUF models and vLLM Hugging Face folders (depot convert)"

    def launcher(self, settings: Settings, log_dir: Path) -> Callable[[EngineSpec], EngineProcess]:
        """The pool's way to start an engine process for a spec."""

        def launch(spec: EngineSpec) -> EngineProcess:
            port = free_port()
            command = self.get(spec.engine).launch(spec, port, settings)
            return EngineProcess.start(spec, command, port, log_dir)

        return launch
