import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeldepot.errors import IntegrityError, NotFound
from modeldepot.store.local import LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "home")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_file_names_the_blob_by_its_sha256(store: LocalBlobStore, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)  # more than one chunk
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    seen: list[int] = []
    blob = store.put_file(src, progress=seen.append)
    assert blob.digest == _digest(data) and blob.size == len(data) and blob.new
    assert store.path(blob.digest).read_bytes() == data
    assert store.path(blob.digest).name == "sha256-" + hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data)
    assert store.path(blob.digest).stat().st_mode & 0o222 == 0
    assert list(store.tmp.iterdir()) == []


def test_same_bytes_are_stored_once(store: LocalBlobStore, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "b").write_bytes(b"same")
    first = store.put_file(tmp_path / "a")
    second = store.put_file(tmp_path / "b")
    assert first.digest == second.digest and first.new and not second.new
    assert len(list(store.digests())) == 1
    assert not store.put_bytes(b"same").new


def test_source_edited_later_does_not_change_the_blob(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(b"original")
    blob = store.put_file(src)
    src.write_bytes(b"edited!!")
    assert store.read_bytes(blob.digest) == b"original"
    assert store.rehash(blob.digest) == blob.digest


def test_expected_digest_mismatch_stores_nothing(store: LocalBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"payload")
    with pytest.raises(IntegrityError, match="nothing was stored"):
        store.put_file(src, expected="sha256:" + "0" * 64)
    assert list(store.digests()) == []
    assert list(store.tmp.iterdir()) == []


def test_put_stream_concatenates_parts(store: LocalBlobStore) -> None:
    parts = [io.BytesIO(b"abc"), io.BytesIO(b""), io.BytesIO(b"def")]
    blob = store.put_stream(parts, expected=_digest(b"abcdef"))
    assert store.read_bytes(blob.digest) == b"abcdef"


def test_rehash_detects_a_flipped_byte(store: LocalBlobStore) -> None:
    blob = store.put_bytes(b"0123456789")
    path = store.path(blob.digest)
    path.chmod(0o644)
    path.write_bytes(b"0123456789"[:-1] + b"X")
    assert store.rehash(blob.digest) != blob.digest


def test_missing_source_and_blob_are_not_found(store: LocalBlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_file(tmp_path / "absent")
    with pytest.raises(NotFound):
        store.read_bytes("sha256:" + "1" * 64)


def test_temporaries_of_dead_processes_are_cleaned(store: LocalBlobStore) -> None:
    store.ensure()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = store.tmp / f"{dead.stdout.strip()}-abc.partial"
    stale.write_bytes(b"x" * 100)
    mine = store.tmp / f"{os.getpid()}-def.partial"
    mine.write_bytes(b"y" * 10)
    assert store.clean_temporaries() == 100
    assert not stale.exists() and mine.exists()
    assert store.clean_temporaries(all_owners=True) == 10
    assert not mine.exists()
