"""A version's files laid out under their own names, for engines and tools that load a folder
(a sentence-transformers model, model-signing): symbolic links to the stored blobs' files, built
aside and renamed into place, so a reader never sees half a folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from modeldepot.layout import Layout
from modeldepot.store.blobs import BlobStore

__all__ = ["materialize"]


def materialize(
    store: BlobStore, digest: str, files: Iterable[tuple[str, str]], home: Path
) -> Path:
    """A folder under `home/run`, named after the manifest `digest` (so it is reused while the
    version exists), holding each (relative path, blob digest) of `files` as a link to the
    blob's file."""
    folder = Layout(home).run_folder(digest)
    if folder.is_dir():
        return folder
    building = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(building, ignore_errors=True)
    for relpath, digest in files:
        link = building / relpath
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(store.local_path(digest))
    building.mkdir(parents=True, exist_ok=True)
    try:
        building.rename(folder)
    except OSError:  # built meanwhile by another process: use theirs
        shutil.rmtree(building, ignore_errors=True)
    return folder
