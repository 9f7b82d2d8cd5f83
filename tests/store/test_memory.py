"""The blob-store seam, driven through a store that keeps everything in memory: import,
admission (scanning reads the blobs through `local_path`), signing and verification, the
integrity check and garbage collection all work on it, and nothing lands in `DEPOT_HOME/blobs`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import write_gguf
from corpus import HOSTILE, build
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import IntegrityError, NotFound
from modeldepot.store import BlobStore, MemoryBlobStore
from modeldepot.verify.signing import Signer, generate_key


@pytest.fixture
def memory(tmp_path: Path) -> MemoryBlobStore:
    return MemoryBlobStore(spill=tmp_path / "spill")


@pytest.fixture
def depot(tmp_path: Path, memory: MemoryBlobStore) -> Iterator[Depot]:
    with Depot(Settings(home=tmp_path / "depot", user="tester"), store=memory) as d:
        yield d


def test_memory_store_honours_the_contract(memory: MemoryBlobStore, tmp_path: Path) -> None:
    assert isinstance(memory, BlobStore)
    blob = memory.put_bytes(b"hello")
    assert blob.new and memory.has(blob.digest) and memory.size(blob.digest) == 5
    assert not memory.put_bytes(b"hello").new
    assert memory.open(blob.digest).read() == b"hello"
    assert memory.local_path(blob.digest).read_bytes() == b"hello"
    with pytest.raises(IntegrityError):
        memory.put_bytes(b"other", expected=blob.digest)
    memory.delete(blob.digest)
    with pytest.raises(NotFound):
        memory.read_bytes(blob.digest)


def test_import_admit_check_and_gc_through_the_memory_store(
    depot: Depot, memory: MemoryBlobStore, tmp_path: Path
) -> None:
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "tiny:v1")
    assert version.status == "ok"
    assert {f.digest for f in version.files} <= set(memory.blobs)
    assert not (tmp_path / "depot" / "blobs").exists()
    assert list(depot.integrity.check()) == []
    # A flipped byte in the store is found by the integrity check.
    weights = next(f for f in version.files if f.kind == "weights")
    memory.blobs[weights.digest] = memory.blobs[weights.digest][:-1] + b"\x00"
    assert [p.problem for p in depot.integrity.check()] == ["corrupt"]
    memory.blobs[weights.digest] = (tmp_path / "m.gguf").read_bytes()
    # gc keeps what versions use and drops what none does.
    stray = memory.put_bytes(b"not referenced by any version")
    depot.names.remove("tiny:v1")
    report = depot.housekeeping.gc()
    assert not memory.has(stray.digest) and not memory.has(version.digest)
    assert report.removed_blobs >= 4 and memory.blobs == {}


def test_hostile_file_is_quarantined_from_the_memory_store(
    depot: Depot, memory: MemoryBlobStore, tmp_path: Path
) -> None:
    case = next(c for c in HOSTILE if c.name == "torch-odd-folder")
    version = depot.intake.import_path(build(case, tmp_path), "evil")
    assert version.status == "quarantined"
    assert any("pickle.dangerous-global" in r for r in version.reasons)
    assert depot.admission.refusals(version)


def test_sign_and_verify_through_the_memory_store(depot: Depot, tmp_path: Path) -> None:
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "tiny")
    key, _ = generate_key(tmp_path / "keys" / "k")
    record = depot.signatures.sign(version, Signer("key", key))
    assert depot.store.has(record.digest)
    assert depot.signatures.verify(version)
