"""The registry database: models, versions, tags, files, lineage and events."""

from modeldepot.registry.records import Event, FileRecord, LineageLink, ModelVersion
from modeldepot.registry.versions import Registry

__all__ = ["Event", "FileRecord", "LineageLink", "ModelVersion", "Registry"]
