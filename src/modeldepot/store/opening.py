"""Which blob store the settings name: the local folder by default, object storage for
`DEPOT_BLOBS=s3://...`."""

from __future__ import annotations

from modeldepot.config import Settings
from modeldepot.store.blobs import BlobStore
from modeldepot.store.local import LocalBlobStore

__all__ = ["open_store"]


def open_store(settings: Settings) -> BlobStore:
    if settings.blobs:
        from modeldepot.store.s3 import S3BlobStore, S3Config

        config = S3Config(settings.blobs, endpoint=settings.s3_endpoint,
                          access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                          region=settings.s3_region)  # fmt: skip
        return S3BlobStore(config, settings.layout.blob_cache, settings.blob_cache)
    return LocalBlobStore(settings.home)
