"""The content-addressed store: the blob-store seam and its stores, manifests, folders of
links for engines, and the lock that keeps gc away from imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = [
    "Blob",
    "BlobStore",
    "Descriptor",
    "FileLock",
    "LayerKind",
    "LocalBlobStore",
    "Manifest",
    "MemoryBlobStore",
    "ModelConfig",
    "Progress",
    "Readable",
    "StoreLock",
    "materialize",
    "open_store",
]

if TYPE_CHECKING:
    from modeldepot.store.blobs import Blob, BlobStore, Progress, Readable
    from modeldepot.store.folders import materialize
    from modeldepot.store.local import LocalBlobStore
    from modeldepot.store.lock import FileLock, StoreLock
    from modeldepot.store.manifests import Descriptor, LayerKind, Manifest, ModelConfig
    from modeldepot.store.memory import MemoryBlobStore
    from modeldepot.store.opening import open_store
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.store.blobs": ["Blob", "BlobStore", "Progress", "Readable"],
            "modeldepot.store.folders": ["materialize"],
            "modeldepot.store.local": ["LocalBlobStore"],
            "modeldepot.store.lock": ["FileLock", "StoreLock"],
            "modeldepot.store.manifests": ["Descriptor", "LayerKind", "Manifest", "ModelConfig"],
            "modeldepot.store.memory": ["MemoryBlobStore"],
            "modeldepot.store.opening": ["open_store"],
        },
    )
