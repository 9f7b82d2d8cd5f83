"""The content-addressed store: the blob-store seam and its stores, manifests, folders of
links for engines, and the lock that keeps gc away from imports."""

from modeldepot.store.blobs import Blob, BlobStore, Progress, Readable
from modeldepot.store.folders import materialize
from modeldepot.store.local import LocalBlobStore
from modeldepot.store.lock import FileLock, StoreLock
from modeldepot.store.manifests import Descriptor, LayerKind, Manifest, ModelConfig
from modeldepot.store.memory import MemoryBlobStore
from modeldepot.store.opening import open_store

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
