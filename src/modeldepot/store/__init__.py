"""The content-addressed store: blobs, manifests and the lock that keeps gc away from imports."""

from modeldepot.store.blobs import Blob, BlobStore, Progress
from modeldepot.store.lock import StoreLock
from modeldepot.store.manifests import Descriptor, LayerKind, Manifest, ModelConfig

__all__ = [
    "Blob",
    "BlobStore",
    "Descriptor",
    "LayerKind",
    "Manifest",
    "ModelConfig",
    "Progress",
    "StoreLock",
]
