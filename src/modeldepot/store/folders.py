"""A version's files laid out under their own names, for engines and tools that load a folder
(a sentence-transformers model, model-signing): symbolic links to the stored blobs' files, built
aside and renamed into place, so a reader never sees half a folder.

The names are the files' paths from the manifest, which came from outside: each is checked again
here (`modeldepot.paths`), the last guard before anything is written under them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from modeldepot.layout import Layout
from modeldepot.paths import check_relpath
from modeldepot.store.blobs import BlobStore

__all__ = ["materialize"]


def materialize(
    store: BlobStore, digest: str, files: Iterable[tuple[str, str]], home: Path
) -> Path:
    """A folder under `home/run`, named after the manifest `digest` (so it is reused while the
    version exists), holding each (relative path, blob digest) of `files` as a link to the
    blob's file. A path that is not a safe relative path (UnsafePath) writes nothing."""
    files = [(check_relpath(relpath), blob) for relpath, blob in files]
    folder = Layout(home).run_folder(digest)
    if folder.is_dir():
        return folder
    building = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(building, ignore_errors=True)
    try:
        building.mkdir(parents=True, exist_ok=True)
        for relpath, blob in files:
            link = building / relpath
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(store.local_path(blob))
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    try:
        building.rename(folder)
    except OSError:  # built meanwhile by another process: use theirs
        shutil.rmtree(building, ignore_errors=True)
        if not folder.is_dir():
            raise
    return folder
