"""The registry database: models, versions, tags, files, lineage and events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["Event", "FileRecord", "LineageLink", "ModelVersion", "Registry"]

if TYPE_CHECKING:
    from modeldepot.registry.records import Event, FileRecord, LineageLink, ModelVersion
    from modeldepot.registry.versions import Registry
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.registry.records": ["Event", "FileRecord", "LineageLink", "ModelVersion"],
            "modeldepot.registry.versions": ["Registry"],
        },
    )
