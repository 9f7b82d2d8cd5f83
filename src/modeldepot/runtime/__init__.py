"""Running models: the engine seam (`Engine`, what a version can do), the engines found
through the `modeldepot.engines` entry points, engine processes, and the pool that loads, keeps
and unloads them within a memory budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = [
    "Adapter",
    "Capabilities",
    "Capability",
    "Engine",
    "EnginePool",
    "EngineProcess",
    "EngineSpec",
    "Engines",
    "Launch",
    "ModelFiles",
    "ModelUnavailable",
    "PoolStatus",
    "QueueFull",
    "StoredFiles",
]

if TYPE_CHECKING:
    from modeldepot.runtime.engine import (
        Adapter,
        Capabilities,
        Capability,
        Engine,
        EngineSpec,
        Launch,
        ModelFiles,
    )
    from modeldepot.runtime.engines import Engines, StoredFiles
    from modeldepot.runtime.pool import EnginePool, PoolStatus, QueueFull
    from modeldepot.runtime.process import EngineProcess, ModelUnavailable
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.runtime.engine": [
                "Adapter",
                "Capabilities",
                "Capability",
                "Engine",
                "EngineSpec",
                "Launch",
                "ModelFiles",
            ],
            "modeldepot.runtime.engines": ["Engines", "StoredFiles"],
            "modeldepot.runtime.pool": ["EnginePool", "PoolStatus", "QueueFull"],
            "modeldepot.runtime.process": ["EngineProcess", "ModelUnavailable"],
        },
    )
