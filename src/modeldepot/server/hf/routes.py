"""The Hugging Face Hub API under `/hf`, as `huggingface_hub` (and through it transformers
and llama-cpp-python) calls it with `HF_ENDPOINT=http://HOST:PORT/hf`:

    GET       /hf/api/models                             list, search (`search`, `author`,
                                                         `filter`, `sort`, `limit`, `full`)
    GET       /hf/api/models/{repo}[/revision/{rev}]     model info (`?blobs=true`: sizes)
    GET       /hf/api/models/{repo}/tree/{rev}[/{path}]  files and folders (`recursive`)
    HEAD|GET  /hf/{repo}/resolve/{rev}/{path}            a file (`Range` gives 206)
    GET       /hf/api/models/{repo}/xet-read-token/{rev} a Xet access token (xet.py)

Lists are paged by an absolute `Link: <...>; rel="next"`. Paths are routed on the raw,
undecoded request path (a revision or a folder arrives with its `/` as `%2F`). Every answer
passes through `repos.find`: the key, its scope and the gate, before any byte. A file is read
from the store only as the bytes admitted (`verified_path`), and served with `X-Repo-Commit`,
`ETag` (its sha256), `X-Linked-Size` and `Accept-Ranges`, never compressed; from
`xet.XET_FROM` bytes up with `X-Xet-Hash` and `X-Xet-Refresh-Route` too, so that
`huggingface_hub` downloads it with `hf_xet` (xet.py) and curl still GETs it. A repository the
depot does not hold is fetched through the on-demand mirrors, if any, and admitted (or
refused) before the answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from modeldepot.errors import DepotError, IntegrityError, NotFound, UnsafePath
from modeldepot.paths import check_relpath
from modeldepot.registry import ModelVersion
from modeldepot.registry.keys import ApiKey
from modeldepot.runtime import Capability
from modeldepot.server.access import note
from modeldepot.server.auth import caller
from modeldepot.server.errors import APIError
from modeldepot.server.hf import views, xet
from modeldepot.server.hf.errors import ENTRY, REPO, WRONG_KEY, HubError
from modeldepot.server.hf.repos import (
    MAIN,
    Mirror,
    Revision,
    allowed,
    commit_of,
    find,
    mains,
)
from modeldepot.server.state import ServerState

__all__ = ["PAGE", "router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/hf")

PAGE = 1000
"""Entries in one page of a list (the Hub's own cap)."""
READ = 1024 * 1024
"""Bytes of a file read at a time (each read is a hop to a worker thread)."""
_INFO = re.compile(r"/api/models/(?P<repo>[^/]+(?:/[^/]+)?)(?:/revision/(?P<rev>[^/]+))?")
_TREE = re.compile(r"/api/models/(?P<repo>[^/]+(?:/[^/]+)?)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?")
_XET_TOKEN = re.compile(r"/api/models/(?P<repo>[^/]+(?:/[^/]+)?)/xet-read-token/(?P<rev>[^/]+)")
_RESOLVE = re.compile(r"/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")
_SORTS = {"lastModified", "createdAt"}


async def hub_caller(request: Request) -> ApiKey:
    """The caller (`HF_TOKEN` is a depot key), refused the way the Hub refuses."""
    try:
        return await caller(request)
    except APIError as exc:
        if exc.code == "invalid_api_key":
            raise HubError(401, None, WRONG_KEY) from None
        if exc.code == "missing_api_key":
            raise HubError(401, REPO, "a depot API key is required: set HF_TOKEN to one") from None
        raise HubError(exc.status, None, str(exc)) from None


HubCaller = Annotated[ApiKey, Depends(hub_caller)]


@router.api_route("/{_path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def hub(request: Request, key: HubCaller) -> Response:
    state: ServerState = request.app.state.depot
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    path = raw.split("?", 1)[0].removeprefix("/hf")
    try:
        if path == "/api/models":
            return await _list(request, state, key)
        if m := _XET_TOKEN.fullmatch(path):
            version = await find(state, key, m["repo"], unquote(m["rev"]), _mirror(state, key))
            return await xet.token_headers(request, state, key, version)
        if m := _TREE.fullmatch(path):
            return await _tree(request, state, key, m["repo"], unquote(m["rev"]),
                               unquote(m["path"] or ""))  # fmt: skip
        if m := _INFO.fullmatch(path):
            return await _info(request, state, key, m["repo"], unquote(m["rev"] or MAIN))
        if m := _RESOLVE.fullmatch(path):
            return await _file(request, state, key, m["repo"], unquote(m["rev"]),
                               unquote(m["path"]))  # fmt: skip
    except HubError as exc:
        return exc.response()
    return HubError(404, REPO, f"nothing at {path[:200]!r} in this depot's Hub API").response()


def _mirror(state: ServerState, key: ApiKey) -> Mirror:
    """Fetching a repository the depot lacks through its on-demand mirrors (if it has any),
    scanned, judged and signed before the client hears of it: one pull per repository and
    revision however many clients ask, finished even when they hang up."""

    async def fetch(repository: str, rev: Revision) -> None:
        flight = (repository, rev.text)
        pull = state.pulls.get(flight)
        if pull is None:
            pull = asyncio.ensure_future(asyncio.to_thread(
                state.depot.mirroring.on_demand, repository, rev.text, actor=key.name))  # fmt: skip
            state.pulls[flight] = pull
            pull.add_done_callback(lambda _: state.pulls.pop(flight, None))
        try:
            version = await asyncio.shield(pull)
        except DepotError as exc:
            log.warning("on-demand pull of %s@%s failed: %s", repository, rev.text, exc)
            raise HubError(404, REPO, f"{repository} is not in this depot, and its mirrors "
                                      f"could not bring it: {exc}") from None  # fmt: skip
        if version is None:
            raise HubError(404, REPO, f"{repository} is not in this depot")

    return fetch


def _pipeline(state: ServerState, version: ModelVersion) -> str | None:
    can = state.directory.capabilities(version)
    if Capability.CHAT in can or Capability.COMPLETION in can:
        return "text-generation"
    if Capability.EMBEDDINGS in can:
        return "feature-extraction"
    return None


async def _info(request: Request, state: ServerState, key: ApiKey, repo: str,
                rev: str) -> Response:  # fmt: skip
    version = await find(state, key, repo, rev, _mirror(state, key))
    note(request, model=str(version.reference))
    blobs = request.query_params.get("blobs") == "true"
    pipeline = await asyncio.to_thread(_pipeline, state, version)
    return JSONResponse(views.model_info(version, pipeline=pipeline, blobs=blobs))


async def _tree(request: Request, state: ServerState, key: ApiKey, repo: str, rev: str,
                path: str) -> Response:  # fmt: skip
    version = await find(state, key, repo, rev, _mirror(state, key))
    path = path.strip("/")
    entries = views.tree(version, path, recursive=request.query_params.get("recursive") == "true")
    if entries is None:
        raise HubError(404, ENTRY, f"{path} does not exist in {version.reference}",
                       commit_of(version.digest))  # fmt: skip
    return _page(request, entries)


async def _file(request: Request, state: ServerState, key: ApiKey, repo: str, rev: str,
                path: str) -> Response:  # fmt: skip
    version = await find(state, key, repo, rev, _mirror(state, key))
    commit = commit_of(version.digest)
    try:
        check_relpath(path)
    except UnsafePath:
        raise HubError(404, ENTRY, f"{path!r} is not a file path", commit) from None
    found = next((f for f in version.files if f.path == path), None)
    if found is None:
        raise HubError(404, ENTRY, f"{path} does not exist in {version.reference}", commit)
    note(request, model=str(version.reference))
    try:  # the bytes as admitted, never changed ones
        stored = await asyncio.to_thread(state.depot.store.verified_path, found.digest)
    except (IntegrityError, NotFound) as exc:
        log.error("%s: %s", version.reference, exc)
        raise HubError(500, None, f"{path} of {version.reference} cannot be served: {exc}",
                       commit) from None  # fmt: skip
    etag = f'"{found.digest.removeprefix("sha256:")}"'
    headers = {"X-Repo-Commit": commit, "ETag": etag, "X-Linked-Etag": etag,
               "X-Linked-Size": str(found.size), "Accept-Ranges": "bytes"}  # fmt: skip
    if found.size >= xet.XET_FROM:
        repository = version.reference.repository
        headers["X-Xet-Hash"] = found.digest.removeprefix("sha256:")
        headers["X-Xet-Refresh-Route"] = (f"{str(request.base_url).rstrip('/')}/hf/api/models/"
                                          f"{repository}/xet-read-token/{commit}")  # fmt: skip
    return _Stored(stored, media_type="application/octet-stream", headers=headers)


class _Stored(FileResponse):
    """A stored file, read `READ` bytes at a time (Starlette reads 64 KiB: sixteen times the
    thread hops for a model's weights)."""

    chunk_size = READ


async def _list(request: Request, state: ServerState, key: ApiKey) -> Response:
    """Every model whose `main` this key may have now, filtered and sorted as asked."""
    q = request.query_params
    versions = mains(await asyncio.to_thread(state.depot.names.versions))
    search = (q.get("search") or "").lower()
    author = q.get("author")
    wanted = set(q.getlist("filter"))
    found = []
    for repository, v in sorted(versions.items()):
        if not v.admitted or not allowed(key, repository, v) or search not in repository:
            continue
        if author is not None and v.reference.namespace != author:
            continue
        pipeline = await asyncio.to_thread(_pipeline, state, v)
        shown = views.model_info(v, pipeline=pipeline, siblings=q.get("full") == "true")
        if q.get("pipeline_tag") not in (None, pipeline) or not wanted <= set(shown["tags"]):
            continue
        found.append(shown)
    if q.get("sort") in _SORTS:
        found.sort(key=lambda m: str(m[q["sort"]]), reverse=True)
    return _page(request, found, _limit(q.get("limit")))


def _limit(text: str | None) -> int:
    try:
        return max(1, min(PAGE, int(text or PAGE)))
    except ValueError:
        raise HubError(400, None, f"limit {(text or '')[:40]!r} is not a number") from None


def _page(request: Request, entries: list[dict[str, Any]], size: int = PAGE) -> Response:
    """One page, and an absolute `Link` to the next when there is one (the client requests
    it as it is)."""
    text = request.query_params.get("cursor") or "0"
    if not text.isdigit() or len(text) > 12:
        raise HubError(400, None, f"cursor {text[:40]!r} is not one this depot gave")
    start = int(text)
    headers = {}
    if start + size < len(entries):
        following = request.url.include_query_params(cursor=str(start + size))
        headers["Link"] = f'<{following}>; rel="next"'
    return JSONResponse(entries[start : start + size], headers=headers)
