"""Pulling a model from another depot over its own API, checking every digest.

The depot's API lives under `/depot/api`; a depot from before the move answers under `/api`
only, so a model the new path does not find (404) is asked for there before the pull gives
up, and the rest of the pull uses whichever answered.

The manifest's bytes must hash to the digest the server names, and every blob must hash to the
digest the manifest names; blobs already stored are not fetched again. The manifest is checked
(`Manifest.from_bytes`: digests, sizes, safe file paths) before any blob is fetched, every
answer is bounded (`receive/remote.py`), and the manifest itself is stored last: the version is
recorded only after all of it is stored, so an interrupted or refused pull leaves nothing
visible.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from modeldepot.errors import DepotError, FormatError, IntegrityError, ModelNotFound, UsageError
from modeldepot.formats.base import ModelInfo
from modeldepot.paths import check_relpath
from modeldepot.receive.remote import Answer, Limits, Remote, check_config_size, read_config
from modeldepot.refs import Reference
from modeldepot.registry import FileRecord, LineageLink
from modeldepot.store import BlobStore, Manifest, Progress

__all__ = ["RemoteModel", "fetch", "fetch_folder", "size_of", "split_url"]

_WHO = "the other depot"
API = "/depot/api"
LEGACY_API = "/api"
"""Where depots before `/depot/api` answer (a newer depot answers there too, read-only)."""


@dataclass(frozen=True)
class RemoteModel:
    """What a pull brings: the manifest (stored), its metadata and lineage."""

    digest: str
    config_digest: str
    info: ModelInfo
    files: tuple[FileRecord, ...]
    lineage: tuple[LineageLink, ...]
    source: str


class _Link(BaseModel):
    relation: str
    target: str
    target_digest: str | None = None


class _Shown(BaseModel):
    """What the other depot's `/api/models/NAME` says, as far as a pull reads it."""

    digest: str
    size: int | None = None
    lineage: list[_Link] = []


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


def _check(answer: Answer, what: str) -> None:
    if answer.status == 404:
        raise ModelNotFound(f"{what}: not found on the other depot")
    if answer.status in (401, 403):
        raise DepotError(f"{what}: the other depot refused access ({answer.status})")
    if answer.status != 200:
        raise DepotError(f"{what}: the other depot answered {answer.status}")


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _shown(remote: Remote, base: str, name: str, url: str) -> tuple[_Shown, str]:
    """The other depot's description of the model, and the root of the API that gave it
    (`base` + `/depot/api`, or `/api` for a depot from before it)."""
    path = f"/models/{quote(name, safe='/:@')}"
    root = base + API
    answer = remote.get(root + path, url)
    if answer.status == 404:
        legacy = remote.get(base + LEGACY_API + path, url)
        if legacy.status != 404:
            root, answer = base + LEGACY_API, legacy
    _check(answer, url)
    try:
        return _Shown.model_validate(answer.json(url)), root
    except ValidationError as exc:
        raise FormatError(f"{url}: the other depot's description of the model is not one "
                          f"({exc.errors()[0]['msg']})") from None  # fmt: skip


def size_of(url: str, *, api_key: str | None = None, limits: Limits | None = None) -> int | None:
    """Bytes the model at `url` holds, as the other depot describes it (None if it does not
    say, or cannot be asked): the total a progress bar shows before the pull starts."""
    base, name = split_url(url)
    try:
        with Remote(_WHO, limits, headers=_headers(api_key)) as remote:
            return _shown(remote, base, name, url)[0].size
    except DepotError:
        return None


def fetch(
    url: str,
    blobs: BlobStore,
    *,
    api_key: str | None = None,
    progress: Progress | None = None,
    limits: Limits | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RemoteModel:
    base, name = split_url(url)
    with Remote(_WHO, limits, headers=_headers(api_key), transport=transport) as remote:
        about, root = _shown(remote, base, name, url)
        raw = remote.get(f"{root}/manifests/{quote(name, safe='/:@')}", url)
        _check(raw, url)
        digest = f"sha256:{hashlib.sha256(raw.body).hexdigest()}"
        claimed = raw.headers.get("x-depot-digest")
        if digest != claimed or digest != about.digest:
            raise IntegrityError(f"{url}: the manifest hashes to {digest}, the other depot says "
                                 f"{claimed}; nothing was stored")  # fmt: skip
        try:
            manifest = Manifest.from_bytes(raw.body)
            check_config_size(manifest, url)
        except FormatError as exc:
            raise type(exc)(f"{url}: {exc}; nothing was stored") from None
        for descriptor in (manifest.config, *manifest.layers):
            if blobs.has(descriptor.digest):
                if blobs.size(descriptor.digest) != descriptor.size:
                    raise IntegrityError(f"{url}: the manifest declares {descriptor.digest} as "
                                         f"{descriptor.size} bytes; it is not")  # fmt: skip
                if progress:
                    progress(descriptor.size)
                continue
            remote.blob(f"{root}/blobs/{descriptor.digest}",
                        f"{url}: blob {descriptor.digest}", descriptor, blobs, _check,
                        progress)  # fmt: skip
        info = read_config(blobs, manifest, url)
        stored = blobs.put_bytes(raw.body)
    lineage = (LineageLink(x.relation, x.target, x.target_digest) for x in about.lineage)
    return RemoteModel(
        digest=stored.digest,
        config_digest=manifest.config.digest,
        info=info,
        files=tuple(FileRecord.of(d) for d in manifest.layers),
        lineage=tuple(lineage),
        source=url,
    )


def fetch_folder(url: str, dest: Path, *, api_key: str | None = None,
                 progress: Progress | None = None,
                 limits: Limits | None = None) -> RemoteModel:  # fmt: skip
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
        model = fetch(url, blobs, api_key=api_key, progress=progress, limits=limits)
        staged = work / "model"
        for f in model.files:  # paths checked as the manifest was parsed, and where written
            target = staged / check_relpath(f.path)
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
