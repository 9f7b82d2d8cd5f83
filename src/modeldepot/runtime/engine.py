"""The engine seam: what the depot asks of anything that runs a model.

An engine is a plugin in the `modeldepot.engines` entry-point group (the built-in ones register
the same way): it says what it can do for a version (`capabilities`), what it needs to run it
(`spec`: files, context, threads, adapters, a memory estimate per device) and how to start it
(`launch`: a command that serves HTTP on a loopback port, with `GET /health`), and whether its
runtime is present here (`installed`). The pool starts, keeps and stops engine processes; the
server only ever talks to them over HTTP.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modeldepot.config import Settings

if TYPE_CHECKING:
    from modeldepot.registry import ModelVersion

__all__ = [
    "Adapter",
    "Capabilities",
    "Capability",
    "Engine",
    "EngineSpec",
    "Launch",
    "ModelFiles",
]


class Capability(enum.StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDINGS = "embeddings"
    SCORING = "scoring"
    """Log-probabilities of a prompt's own tokens (`/v1/completions` with `echo`)."""
    TOOLS = "tools"
    ADAPTERS = "adapters"
    """LoRA adapters applied at load time."""


@dataclass(frozen=True)
class Capabilities:
    """What a version can do, and which engine does each thing: the one answer every route
    asks (the `/v1/models` filter, echo scoring, tool calling, `n` choices)."""

    engines: Mapping[Capability, str] = field(default_factory=dict)
    native_tools: bool = False
    """The chat template formats tool calls itself; otherwise the depot's JSON-schema
    fallback does (server/tools.py)."""
    native_n: bool = False
    """The engine returns `n` choices with correct usage; otherwise they are fanned out."""

    def __contains__(self, capability: object) -> bool:
        return capability in self.engines

    @property
    def servable(self) -> bool:
        return bool(self.engines)

    def to_list(self) -> list[str]:
        return sorted(str(c) for c in self.engines)


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter loaded by the engine (a GGUF file for llama-server, a PEFT folder for
    vLLM), with the scale it applies when a request does not choose (requests choose per
    adapter; see `EngineSpec.selection`)."""

    path: Path
    scale: float = 1.0
    name: str = ""
    """The adapter version's digest, for the pool's key and the request's selection."""
    rank: int = 0
    """The LoRA rank, for engines that size their adapter slots by it (0: not known)."""

    @property
    def size(self) -> int:
        try:
            if self.path.is_dir():
                return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
            return self.path.stat().st_size
        except OSError:
            return 0


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to start one engine for one model version."""

    name: str
    digest: str
    engine: str
    """The engine plugin's name."""
    kind: str
    """What the process serves: `generate`, `embed`, `score` or `sentence`; with `digest`,
    the pool's key (one process per version and kind)."""
    weights: Path
    context: int
    parallel: int
    threads: int
    memory: int = 0
    """Bytes of host memory the loaded model is estimated to need."""
    device_memory: tuple[tuple[str, int], ...] = ()
    """Estimated bytes per accelerator (`cuda:0` ...), for GPU engines."""
    chat_template: str | None = None
    """A built-in template name, for models whose file has none."""
    chat_template_file: Path | None = None
    """A Jinja chat template to use instead of the model's own (a preset's)."""
    full_swa_cache: bool = False
    """Keep the whole context in sliding-window layers' cache too, so a repeated prefix can
    be reused (llama.cpp cannot cut a sliding-window cache back to an arbitrary prefix)."""
    adapters: tuple[Adapter, ...] = ()
    adapters_by_model: bool = False
    """A request picks an adapter by naming it as its `model` (vLLM's LoRA modules, named by
    digest), not by llama-server's per-request `lora` list."""
    dtype: str = "auto"
    """The numbers the engine computes in (`float32`, `bfloat16`, ...), for engines that choose."""
    kv_cache: int = 0
    """Bytes of KV cache to reserve, for engines that are told (vLLM)."""

    @property
    def key(self) -> str:
        """The pool's key: one process per version, kind, context and set of adapters (a base
        that gains an adapter, or a request asking another context, gets a new engine; the
        old one finishes its requests)."""
        base = f"{self.digest}:{self.kind}:{self.context}"
        if not self.adapters:
            return base
        names = hashlib.sha256("\n".join(a.name or str(a.path) for a in self.adapters).encode())
        return f"{base}:{names.hexdigest()[:16]}"

    def selection(self, adapter: str | None) -> dict[str, Any]:
        """The request fields that apply the adapter named (by digest; any other name: the
        base alone): the adapter as the `model` for an engine that names adapters so, else
        llama-server's per-request `lora` list, that adapter on at scale 1, every other off."""
        if self.adapters_by_model:
            return {"model": adapter if any(a.name == adapter for a in self.adapters)
                    else self.name}  # fmt: skip
        return {"lora": [{"id": i, "scale": 1.0 if a.name == adapter else 0.0}
                         for i, a in enumerate(self.adapters)]}  # fmt: skip


@dataclass(frozen=True)
class Launch:
    """How to start an engine process: its command line and extra environment."""

    argv: list[str]
    environment: Mapping[str, str] | None = None
    start_timeout: float = 120.0
    """Seconds the engine may take to answer `GET /health` (vLLM's start takes minutes)."""
    stop_grace: float = 5.0
    """Seconds between asking the engine to stop (SIGTERM) and killing it."""


class ModelFiles(Protocol):
    """Where an engine finds a version's bytes as real files."""

    def file(self, digest: str) -> Path: ...

    def folder(self, version: ModelVersion) -> Path: ...


class Engine(Protocol):
    name: str
    native_n: bool

    def installed(self, settings: Settings) -> bool:
        """Whether this engine's runtime is present here: one that is not is chosen only when
        DEPOT_ENGINE_<FORMAT> names it (and fails with a clear error when started)."""
        ...

    def capabilities(self, version: ModelVersion) -> frozenset[Capability]:
        """What this engine can do for `version` (empty: it cannot run it)."""
        ...

    def native_tools(self, version: ModelVersion) -> bool:
        """Whether the engine formats tool calls itself for `version` (else the depot's
        JSON-schema fallback does)."""
        ...

    def spec(
        self,
        version: ModelVersion,
        capability: Capability,
        files: ModelFiles,
        settings: Settings,
        adapters: tuple[ModelVersion, ...] = (),
    ) -> EngineSpec:
        """What to start to serve `capability` of `version`, with the adapter versions of
        `version` it can load (asked only of engines capable of ADAPTERS); raises
        ModelUnavailable when it cannot."""
        ...

    def launch(self, spec: EngineSpec, port: int, settings: Settings) -> Launch:
        """The command that serves `spec` over HTTP on 127.0.0.1:`port`."""
        ...
