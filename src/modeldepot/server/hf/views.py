"""A depot version as the Hugging Face Hub describes a repository: its model info, its
siblings and its tree, in the shapes `huggingface_hub` parses.

Every file is described as a Git LFS file: its `lfs.oid` is the sha256 the depot stores it
under, its `oid` the git blob id of its LFS pointer, and the `ETag` it is served with is the
same sha256. So the client's cache (`blobs/<etag>`) holds each content once, and `hf cache
verify` checks each file against the sha256 the depot pinned. Dates end in `Z` (the client
refuses `+00:00`). Large files are also offered over Xet (`routes.py`, `xet.py`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from modeldepot.refs import DEFAULT_NAMESPACE
from modeldepot.registry import FileRecord, ModelVersion
from modeldepot.server.hf.repos import commit_of

__all__ = ["date", "lfs_pointer", "model_info", "tree"]

_LFS_SPEC = "version https://git-lfs.github.com/spec/v1"


def date(when: datetime) -> str:
    """`2025-01-02T03:04:05.000Z`, the only form the client parses."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def lfs_pointer(f: FileRecord) -> bytes:
    """The Git LFS pointer of a file: what a git repository holding it would commit."""
    sha256 = f.digest.removeprefix("sha256:")
    return f"{_LFS_SPEC}\noid sha256:{sha256}\nsize {f.size}\n".encode()


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _lfs(f: FileRecord, oid_key: str) -> dict[str, Any]:
    return {oid_key: f.digest.removeprefix("sha256:"), "size": f.size,
            "pointerSize": len(lfs_pointer(f))}  # fmt: skip


def _sibling(f: FileRecord, blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": f.path}
    return {"rfilename": f.path, "size": f.size, "blobId": _git_blob_id(lfs_pointer(f)),
            "lfs": _lfs(f, "sha256")}  # fmt: skip


def _tags(version: ModelVersion, pipeline: str | None) -> list[str]:
    info = version.info
    tags = ["gguf"] if info.format == "gguf" else []
    if info.format in ("safetensors", "huggingface"):
        tags += ["transformers", *(["safetensors"] if info.format == "safetensors" else [])]
    if info.details.get("model_type"):
        tags.append(str(info.details["model_type"]))
    elif info.architecture and info.format == "gguf":
        tags.append(info.architecture)
    if pipeline:
        tags.append(pipeline)
    if info.license:
        tags.append(f"license:{info.license.lower()}")
    return tags


def model_info(version: ModelVersion, *, pipeline: str | None, siblings: bool = True,
               blobs: bool = False) -> dict[str, Any]:  # fmt: skip
    """`GET /api/models/{repo}[/revision/{rev}]` (and one entry of `GET /api/models`)."""
    ref = version.reference
    info = version.info
    when = date(version.created_at)
    found: dict[str, Any] = {
        "_id": version.digest.removeprefix("sha256:")[:24], "id": ref.repository,
        "modelId": ref.repository, "sha": commit_of(version.digest), "lastModified": when,
        "createdAt": when, "private": False, "gated": False, "disabled": False,
        "downloads": 0, "likes": 0, "tags": _tags(version, pipeline),
        "usedStorage": version.size,
        "depot": {"digest": version.digest, "tags": list(version.tags)},
    }  # fmt: skip
    if ref.namespace != DEFAULT_NAMESPACE:
        found["author"] = ref.namespace
    if pipeline:
        found["pipeline_tag"] = pipeline
    if info.format in ("safetensors", "huggingface"):
        found["library_name"] = "transformers"
        config = {k: info.details[k] for k in ("architectures", "model_type") if k in info.details}
        if config:
            found["config"] = config
    if info.format == "gguf":
        found["gguf"] = {k: v for k, v in {
            "total": info.parameters, "architecture": info.architecture,
            "context_length": info.context_length}.items() if v is not None}  # fmt: skip
    if info.license:
        found["cardData"] = {"license": info.license.lower()}
    if siblings:
        found["siblings"] = [_sibling(f, blobs) for f in version.files]
    return found


def _directories(version: ModelVersion) -> set[str]:
    return {f.path.rsplit("/", i)[0] for f in version.files
            for i in range(1, f.path.count("/") + 1)}  # fmt: skip


def tree(version: ModelVersion, path: str, *, recursive: bool) -> list[dict[str, Any]] | None:
    """`GET /api/models/{repo}/tree/{rev}[/{path}]`: the files and folders under `path` (all
    of them with `recursive`, else its children); None when `path` is not a folder."""
    folders = _directories(version)
    if path and path not in folders:
        return None
    prefix = f"{path}/" if path else ""

    def wanted(p: str) -> bool:
        return p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])

    entries: list[dict[str, Any]] = []
    for folder in sorted(d for d in folders if wanted(d)):
        oid = _git_blob_id(f"tree {version.digest} {folder}".encode())
        entries.append({"type": "directory", "oid": oid, "size": 0, "path": folder})
    for f in version.files:
        if wanted(f.path):
            entries.append({"type": "file", "oid": _git_blob_id(lfs_pointer(f)), "size": f.size,
                            "path": f.path, "lfs": _lfs(f, "oid")})  # fmt: skip
    return entries
