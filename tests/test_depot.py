"""The depot end to end on real files: import, dedup, tags, rm, gc, check, lineage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builders import write_gguf, write_hf_folder, write_onnx, write_torch_zip
from modeldepot.depot import Depot
from modeldepot.errors import (
    FormatError,
    InvalidReference,
    ModelNotFound,
    NotFound,
    UsageError,
)
from modeldepot.refs import Reference
from modeldepot.registry import LineageLink
from modeldepot.store.manifests import ARTIFACT_TYPE, Manifest, ModelConfig


def test_import_gguf_records_manifest_files_and_metadata(any_depot: Depot, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf", arch="qwen2")
    version = any_depot.intake.import_path(path, "tiny:v1")
    assert str(version.reference) == "tiny:v1" and version.tags == ("v1",)
    assert version.info.architecture == "qwen2"
    assert {f.path for f in version.files} == {"tiny.gguf", "chat_template.jinja"}
    manifest = Manifest.from_bytes(any_depot.store.read_bytes(version.digest))
    assert manifest.artifact_type == ARTIFACT_TYPE
    assert {layer.digest for layer in manifest.layers} == {f.digest for f in version.files}
    config = ModelConfig.model_validate_json(any_depot.store.read_bytes(manifest.config.digest))
    assert config.config["architecture"] == "qwen2" and config.metadata["layers"] == 2
    assert any_depot.names.show("tiny:v1") == version
    assert any_depot.names.show(f"tiny@{version.digest}").digest == version.digest


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (lambda p: write_hf_folder(p / "hf"), "safetensors"),
        (lambda p: write_onnx(p / "m.onnx"), "onnx"),
        (lambda p: write_torch_zip(p / "m.pt"), "pytorch"),
    ],
)
def test_every_format_imports(depot: Depot, tmp_path: Path, make, fmt: str) -> None:  # type: ignore[no-untyped-def]
    version = depot.intake.import_path(make(tmp_path), "m")
    assert version.info.format == fmt
    assert [p for p in depot.integrity.check()] == []


def test_same_file_twice_is_stored_once(any_depot: Depot, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf")
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(path.read_bytes())
    first = any_depot.intake.import_path(path, "a")
    second = any_depot.intake.import_path(path, "a")
    other = any_depot.intake.import_path(copy, "b")
    assert first.digest == second.digest
    assert other.digest != first.digest  # the file name is part of the manifest
    weights = {f.digest for v in (first, other) for f in v.files if f.kind == "weights"}
    assert len(weights) == 1
    blobs = dict(any_depot.store.digests())
    assert sum(1 for d in blobs if d in weights) == 1
    usage = any_depot.housekeeping.disk_usage()
    assert usage.logical_bytes > usage.referenced_bytes  # dedup saved the weights once


def test_tags_move_and_old_versions_stay_addressable(any_depot: Depot, tmp_path: Path) -> None:
    v1 = any_depot.intake.import_path(write_gguf(tmp_path / "a.gguf", seed=1), "m:prod")
    v2 = any_depot.intake.import_path(write_gguf(tmp_path / "b.gguf", seed=2), "m:next")
    moved = any_depot.names.tag("m:next", "m:prod")
    assert moved.digest == v2.digest
    assert any_depot.names.show("m:prod").digest == v2.digest
    assert any_depot.names.show(f"m@{v1.digest}").digest == v1.digest  # immutable history
    untagged = [v for v in any_depot.names.versions(include_untagged=True) if not v.tags]
    assert [v.digest for v in untagged] == [v1.digest]
    copied = any_depot.names.tag("m:prod", "team/m:stable")
    assert str(copied.reference) == "team/m:stable" and copied.digest == v2.digest


def test_rm_then_gc_frees_only_unused_blobs(any_depot: Depot, tmp_path: Path) -> None:
    keep = any_depot.intake.import_path(write_gguf(tmp_path / "k.gguf", seed=1), "keep")
    gone = any_depot.intake.import_path(write_gguf(tmp_path / "g.gguf", seed=2), "gone")
    any_depot.names.remove("gone")
    with pytest.raises(ModelNotFound):
        any_depot.names.show("gone")
    report = any_depot.housekeeping.gc()
    assert report.removed_blobs == 3  # weights, manifest, config (the template is shared)
    stored = dict(any_depot.store.digests())
    assert gone.digest not in stored
    assert all(f.digest in stored for f in keep.files) and keep.digest in stored
    assert list(any_depot.integrity.check()) == []
    assert any_depot.housekeeping.gc().removed_blobs == 0


def test_rm_keeps_a_version_another_tag_uses(depot: Depot, tmp_path: Path) -> None:
    v = depot.intake.import_path(write_gguf(tmp_path / "k.gguf"), "m:a")
    depot.names.tag("m:a", "m:b")
    depot.names.remove("m:a")
    assert depot.names.show("m:b").digest == v.digest
    depot.housekeeping.gc()
    assert list(depot.integrity.check()) == []


def test_gc_untagged_prunes_history(depot: Depot, tmp_path: Path) -> None:
    old = depot.intake.import_path(write_gguf(tmp_path / "a.gguf", seed=1), "m")
    depot.intake.import_path(write_gguf(tmp_path / "b.gguf", seed=2), "m")
    assert depot.housekeeping.gc().removed_blobs == 0
    report = depot.housekeeping.gc(prune_untagged=True)
    assert report.pruned_versions == (f"m@{old.digest}",)
    assert old.digest not in dict(depot.store.digests())


def test_check_names_a_damaged_file(depot: Depot, tmp_path: Path) -> None:
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    weights = next(f for f in version.files if f.kind == "weights")
    blob = depot.store.path(weights.digest)
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    problems = list(depot.integrity.check(["m"]))
    assert [(p.path, p.problem) for p in problems] == [("m.gguf", "corrupt")]
    blob.unlink()
    assert [p.problem for p in depot.integrity.check()] == ["missing"]


def test_lineage_is_recorded_and_pinned(any_depot: Depot, tmp_path: Path) -> None:
    base = any_depot.intake.import_path(write_gguf(tmp_path / "base.gguf", seed=1), "base")
    tuned = any_depot.intake.import_path(
        write_hf_folder(tmp_path / "adapter"),
        "tuned",
        lineage=[
            LineageLink("adapter", "base"),
            LineageLink("dataset", "support-tickets.jsonl"),
            LineageLink("base_model", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ],
    )
    assert tuned.lineage == (
        LineageLink("adapter", "base", base.digest),
        LineageLink("dataset", "support-tickets.jsonl", None),
        LineageLink("base_model", "HuggingFaceTB/SmolLM2-135M-Instruct", None),
    )


def test_search_matches_every_term(any_depot: Depot, tmp_path: Path) -> None:
    any_depot.intake.import_path(
        write_gguf(tmp_path / "q.gguf", arch="qwen2", seed=1), "chat-small"
    )
    any_depot.intake.import_path(write_hf_folder(tmp_path / "hf"), "acme/encoder:v2")
    assert [str(v.reference) for v in any_depot.names.search("qwen2")] == ["chat-small:latest"]
    assert [str(v.reference) for v in any_depot.names.search("acme MIT")] == ["acme/encoder:v2"]
    assert any_depot.names.search("qwen2 mit") == []
    with pytest.raises(UsageError):
        any_depot.names.search("  ")


def test_refusals_leave_the_store_untouched(depot: Depot, tmp_path: Path) -> None:
    ok = depot.intake.import_path(write_gguf(tmp_path / "ok.gguf"), "m")
    before = (dict(depot.store.digests()), depot.names.versions())
    whole = write_gguf(tmp_path / "x.gguf", seed=5).read_bytes()
    (tmp_path / "cut.gguf").write_bytes(whole[: len(whole) - 64])
    with pytest.raises(FormatError, match="truncated"):
        depot.intake.import_path(tmp_path / "cut.gguf", "m")
    with pytest.raises(NotFound):
        depot.intake.import_path(tmp_path / "absent.gguf", "m")
    with pytest.raises(InvalidReference):
        depot.intake.import_path(tmp_path / "ok.gguf", "Bad Name")
    with pytest.raises(UsageError):
        depot.intake.import_path(tmp_path / "ok.gguf", f"m@{ok.digest}")
    assert (dict(depot.store.digests()), depot.names.versions()) == before
    assert depot.names.show("m").digest == ok.digest


def test_events_record_who_did_what(depot: Depot, tmp_path: Path) -> None:
    depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    depot.names.tag("m", "m:v1")
    depot.names.remove("m:v1")
    depot.housekeeping.gc()
    events = depot.audit.events()
    assert [e.action for e in events] == ["import", "scan", "tag", "remove", "gc"]
    assert {e.actor for e in events} == {"tester"}
    assert events[0].subject.startswith("m:latest@sha256:")


def test_reference_round_trip_through_the_registry(depot: Depot, tmp_path: Path) -> None:
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "team/m:v1")
    assert version.reference == Reference.parse("team/m:v1")
    assert os.path.basename(str(depot.store.path(version.digest))).startswith("sha256-")
