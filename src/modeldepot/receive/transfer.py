"""Pulling a model from another depot over its `/api`, checking every digest.

The manifest's bytes must hash to the digest the server names, and every blob must hash to the
digest the manifest names; blobs already stored are not fetched again. The version is recorded
only after all of it is stored, so an interrupted or refused pull leaves nothing visible.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modeldepot.errors import DepotError, IntegrityError, ModelNotFound, UsageError
from modeldepot.formats.base import ModelInfo
from modeldepot.refs import Reference
from modeldepot.registry import FileRecord, LineageLink
from modeldepot.store import BlobStore, Manifest, ModelConfig, Progress

__all__ = ["ChunkReader", "RemoteModel", "fetch", "fetch_folder", "split_url"]


@dataclass(frozen=True)
class RemoteModel:
    """What a pull brings: the manifest (stored), its metadata and lineage."""

    digest: str
    config_digest: str
    info: ModelInfo
    files: tuple[FileRecord, ...]
    lineage: tuple[LineageLink, ...]
    source: str


def split_url(url: str) -> tuple[str, str]:
    """`http://host:port/acme/model:tag` -> (`http://host:port`, `acme/model:tag`);
    `depot://host:port/...` is the same over http (the scheme KServe routes to the depot's
    storage initializer)."""
    if url.startswith("depot://"):
        url = "http://" + url.removeprefix("depot://")
    parsed = httpx.URL(url)
    name = parsed.path.strip("/")
    if parsed.scheme not in ("http", "https") or not parsed.host or not name:
        raise UsageError(f"{url!r}: expected http(s)://HOST[:PORT]/NAME[:TAG]")
    Reference.parse(name)
    return str(parsed.copy_with(path="/", query=None, fragment=None)).rstrip("/"), name


class ChunkReader:
    """Chunks (a streamed HTTP body) read like a file (`readinto`), for the blob store."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._parts = iter(chunks)
        self._pending = b""

    def readinto(self, buffer: bytearray, /) -> int:
        while not self._pending:
            try:
                self._pending = next(self._parts)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code == 404:
        raise ModelNotFound(f"{what}: not found on the other depot")
    if response.status_code in (401, 403):
        raise DepotError(f"{what}: the other depot refused access ({response.status_code})")
    if response.status_code != 200:
        raise DepotError(f"{what}: the other depot answered {response.status_code}")


def size_of(url: str, *, api_key: str | None = None) -> int | None:
    """Bytes the model at `url` holds, as the other depot describes it (None if it does not
    say): the total a progress bar shows before the pull starts."""
    base, name = split_url(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        shown = httpx.get(f"{base}/api/models/{quote(name, safe='/:@')}", headers=headers,
                          timeout=30)  # fmt: skip
    except httpx.HTTPError:
        return None
    if shown.status_code != 200:
        return None
    size = shown.json().get("size")
    return int(size) if isinstance(size, int) else None


def fetch(
    url: str,
    blobs: BlobStore,
    *,
    api_key: str | None = None,
    progress: Progress | None = None,
    client: httpx.Client | None = None,
) -> RemoteModel:
    base, name = split_url(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    http = client or httpx.Client(timeout=httpx.Timeout(60, read=300), headers=headers)
    try:
        shown = http.get(f"{base}/api/models/{quote(name, safe='/:@')}")
        _check(shown, url)
        about: dict[str, Any] = shown.json()
        raw = http.get(f"{base}/api/manifests/{quote(name, safe='/:@')}")
        _check(raw, url)
        stored = blobs.put_bytes(raw.content)
        claimed = raw.headers.get("x-depot-digest")
        if stored.digest != claimed or stored.digest != about.get("digest"):
            raise IntegrityError(
                f"{url}: the manifest hashes to {stored.digest}, the other depot says {claimed}"
            )
        manifest = Manifest.from_bytes(raw.content)
        for descriptor in (manifest.config, *manifest.layers):
            if blobs.has(descriptor.digest):
                if progress:
                    progress(descriptor.size)
                continue
            with http.stream("GET", f"{base}/api/blobs/{descriptor.digest}") as response:
                _check(response, f"{url}: blob {descriptor.digest}")
                blobs.put_stream([ChunkReader(response.iter_bytes(1024 * 1024))],
                                 expected=descriptor.digest,
                                 progress=progress)  # fmt: skip
        config = ModelConfig.model_validate_json(blobs.read_bytes(manifest.config.digest))
    except httpx.HTTPError as exc:
        raise DepotError(f"{url}: cannot reach the other depot ({exc})") from None
    finally:
        if client is None:
            http.close()
    return RemoteModel(
        digest=stored.digest,
        config_digest=manifest.config.digest,
        info=ModelInfo.from_dict(config.metadata),
        files=tuple(FileRecord.of(d) for d in manifest.layers),
        lineage=tuple(
            LineageLink(link["relation"], link["target"], link.get("target_digest"))
            for link in about.get("lineage", [])
        ),
        source=url,
    )


def fetch_folder(url: str, dest: Path, *, api_key: str | None = None,
                 progress: Progress | None = None) -> RemoteModel:  # fmt: skip
    """The files of the model at `url` (another depot), every digest checked, written to
    `dest` under their own paths (a KServe storage initializer's job: `/mnt/models`). Written
    into a folder beside `dest` first and moved into place whole, so `dest` never holds part
    of a model."""
    from modeldepot.store import LocalBlobStore

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".depot-fetch-", dir=dest.parent))
    try:
        blobs = LocalBlobStore(work / "store")
        model = fetch(url, blobs, api_key=api_key, progress=progress)
        staged = work / "model"
        for f in model.files:
            target = (staged / f.path).resolve()
            if not target.is_relative_to(staged.resolve()):
                raise IntegrityError(f"{url}: the file path {f.path!r} leaves the model folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blobs.local_path(f.digest), target)
        dest.mkdir(parents=True, exist_ok=True)
        for entry in staged.iterdir():
            final = dest / entry.name
            if final.exists():
                shutil.rmtree(final) if final.is_dir() else final.unlink()
            entry.rename(final)
        return model
    finally:
        shutil.rmtree(work, ignore_errors=True)
