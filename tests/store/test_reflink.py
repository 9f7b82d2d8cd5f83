"""The copy-on-write path, on a filesystem that can clone (CI mounts an XFS image for it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from modeldepot.store.local import LocalBlobStore

REFLINK_DIR = os.environ.get("DEPOT_TEST_REFLINK_DIR")


@pytest.mark.skipif(not REFLINK_DIR, reason="DEPOT_TEST_REFLINK_DIR (an XFS/btrfs mount) not set")
def test_reflink_import_clones_hashes_and_stays_independent(tmp_path: Path) -> None:
    assert REFLINK_DIR is not None
    work = Path(REFLINK_DIR) / f"t{os.getpid()}-{tmp_path.name}"
    work.mkdir()
    try:
        _check_clone(work)
    finally:
        shutil.rmtree(work)


def _check_clone(work: Path) -> None:
    source = work / "weights.bin"
    data = os.urandom(3 * 1024 * 1024)
    source.write_bytes(data)
    store = LocalBlobStore(work / "home")
    blob = store.put_file(source)
    assert blob.cloned and blob.new
    assert store.rehash(blob.digest) == blob.digest
    with open(source, "r+b") as f:  # editing the source must not reach the stored blob
        f.write(b"changed")
    assert store.read_bytes(blob.digest) == data


def test_both_paths_store_the_same_blob(tmp_path: Path) -> None:
    """Cloned where the filesystem can, copied where it cannot: the same digest either way."""
    source = tmp_path / "w.bin"
    source.write_bytes(os.urandom(100_000))
    copied = LocalBlobStore(tmp_path / "a").put_file(source, clone=False)
    either = LocalBlobStore(tmp_path / "b").put_file(source, clone=True)
    assert not copied.cloned
    assert copied.digest == either.digest and copied.size == either.size == 100_000
