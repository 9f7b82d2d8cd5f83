"""The Xet protocol's read side under `/xet`, as `hf_xet` (the downloader `huggingface_hub`
uses for every file that comes with an `X-Xet-Hash`) calls it:

    GET  /hf/api/models/{repo}/xet-read-token/{rev}   an access token for one version (the
                                                      Hub's route: `X-Xet-Cas-Url`,
                                                      `X-Xet-Access-Token`,
                                                      `X-Xet-Token-Expiration`), in routes.py
    GET  /xet/v2/reconstructions/{file id}            how to rebuild a file (`Range`: part of
    GET  /xet/v1/reconstructions/{file id}            it): terms, and for each xorb a URL and
                                                      the byte range to fetch
    GET  /xet/xorbs/{grant}/{n}                       bytes of xorb n (`Range`), the URL's
                                                      grant standing for a presigned signature

A file is offered this way from `XET_FROM` bytes up (smaller ones the client reads over plain
HTTP). The layout is `xorbs.py`'s; tokens and URLs are `registry/grants.py`'s grants, which
expire after `LIFETIME` seconds (the client asks for fresh ones itself) and are checked again on
every use: the key still active and in scope, the version still admitted. So a revoked key or a
quarantined model stops a download between two ranges.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from modeldepot.errors import IntegrityError, InvalidReference, ModelNotFound, NotFound
from modeldepot.registry import ModelVersion
from modeldepot.registry.grants import FILE, READ, Grant, GrantStore
from modeldepot.registry.keys import ApiKey
from modeldepot.server.access import note
from modeldepot.server.auth import LOCAL, LOCAL_RUN
from modeldepot.server.hf import xorbs
from modeldepot.server.hf.errors import GATED, HubError
from modeldepot.server.hf.repos import allowed
from modeldepot.server.state import ServerState

__all__ = ["LIFETIME", "XET_FROM", "grants", "router", "token_headers"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/xet", include_in_schema=False)

XET_FROM = 8 * 1024 * 1024
"""Files of at least this many bytes are offered over Xet."""
LIFETIME = 15 * 60.0
"""Seconds a token or a URL stays good."""
_RANGE = re.compile(r"bytes=([0-9]{1,20})-([0-9]{1,20})")
_NUMBER = re.compile(r"[0-9]{1,11}")


def grants(state: ServerState) -> GrantStore:
    return GrantStore(state.depot.registry.engine)


def cas_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/xet"


async def token_headers(request: Request, state: ServerState, key: ApiKey,
                        version: ModelVersion) -> JSONResponse:  # fmt: skip
    """The answer to the read-token route: a `read` grant for `version`."""
    token, expires = await asyncio.to_thread(grants(state).open, READ, key.name,
                                             _name(version), LIFETIME)  # fmt: skip
    url = cas_url(request)
    headers = {"X-Xet-Cas-Url": url, "X-Xet-Access-Token": token,
               "X-Xet-Token-Expiration": str(int(expires))}  # fmt: skip
    return JSONResponse({"casUrl": url, "accessToken": token, "exp": int(expires)},
                        headers=headers)  # fmt: skip


def _name(version: ModelVersion) -> str:
    return f"{version.reference.repository}@{version.digest}"


async def _holder(state: ServerState, name: str) -> ApiKey | None:
    """The key called `name` as it stands now, or None once revoked."""
    if name == LOCAL.name:
        return await state.gate.still_valid(LOCAL)
    if name == LOCAL_RUN.name:
        return LOCAL_RUN
    return await state.gate.key_named(name)


async def _honour(state: ServerState, grant: Grant | None, what: str) -> ModelVersion:
    """The version `grant` is for, if its key may still have it and the gate admits it."""
    if grant is None:
        raise HubError(401 if what == READ else 403, None,
                       "this Xet token is unknown or has expired: ask for a new one")  # fmt: skip
    key = await _holder(state, grant.key)
    if key is None:
        raise HubError(401, None, f"the API key {grant.key!r} has been revoked")
    try:
        version = await state.directory.version(grant.version)
    except (ModelNotFound, InvalidReference):
        raise HubError(404, None, f"{grant.version} is no longer in this depot") from None
    repository = version.reference.repository
    if not allowed(key, repository, version):
        raise HubError(403, GATED, f"the API key {key.name!r} may not use {repository}")
    refusals = await state.directory.refusals(version)
    if refusals:
        raise HubError(403, GATED, f"{version.reference} is refused by the depot: "
                                   f"{'; '.join(refusals)}")  # fmt: skip
    return version


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _range(request: Request, size: int) -> tuple[int, int]:
    """The one byte range asked for ([start, end], end included, cut at the end), or all."""
    text = request.headers.get("range")
    if text is None:
        return 0, size - 1
    m = _RANGE.fullmatch(text.strip())
    whole = {"Content-Range": f"bytes */{size}"}
    if m is None:
        raise HubError(416, None, f"only one range `bytes=START-END` is served, not "
                                  f"{text[:80]!r}", extra=whole)  # fmt: skip
    start, end = int(m[1]), int(m[2])
    if start > end or start >= size:
        raise HubError(416, None, f"bytes {start}-{end} are not within {size} bytes",
                       extra=whole)  # fmt: skip
    return start, min(end, size - 1)


@router.get("/v1/reconstructions/{file_id}")
async def reconstruction_v1(request: Request, file_id: str) -> Response:
    return await _reconstruction(request, file_id, 1)


@router.get("/v2/reconstructions/{file_id}")
async def reconstruction_v2(request: Request, file_id: str) -> Response:
    return await _reconstruction(request, file_id, 2)


async def _reconstruction(request: Request, file_id: str, api: int) -> Response:
    state: ServerState = request.app.state.depot
    try:  # the caller first: who asks is checked before what is asked for
        token = _bearer(request)
        grant = await asyncio.to_thread(grants(state).find, token, READ) if token else None
        version = await _honour(state, grant, READ)
        assert grant is not None
        note(request, key=grant.key)
        if not xorbs.is_file_id(file_id):
            raise HubError(400, None, f"{file_id[:80]!r} is not a file id (64 hex digits)")
        found = next((f for f in version.files if f.digest == f"sha256:{file_id}"), None)
        if found is None:
            raise HubError(404, None, f"{version.reference} has no file {file_id}")
        start, end = _range(request, found.size)
        note(request, model=str(version.reference))
        url_token, _ = await asyncio.to_thread(grants(state).open, FILE, grant.key, grant.version,
                                               LIFETIME, found.digest)  # fmt: skip
    except HubError as exc:
        return exc.response()
    offset, terms = xorbs.plan(found.size, start, end)
    base = f"{cas_url(request)}/xorbs/{url_token}"
    return JSONResponse({"offset_into_first_range": offset,
                         "terms": [_term(file_id, t) for t in terms],
                         ("xorbs" if api == 2 else "fetch_info"): {
                             xorbs.xorb_id(file_id, t.xorb): [_fetch(base, t, api)]
                             for t in terms}})  # fmt: skip


def _term(file_id: str, term: xorbs.Term) -> dict[str, Any]:
    return {"hash": xorbs.xorb_id(file_id, term.xorb), "unpacked_length": term.length,
            "range": {"start": term.chunks[0], "end": term.chunks[1]}}  # fmt: skip


def _fetch(base: str, term: xorbs.Term, api: int) -> dict[str, Any]:
    chunks = {"start": term.chunks[0], "end": term.chunks[1]}
    span = {"start": term.bytes[0], "end": term.bytes[1]}
    url = f"{base}/{term.xorb}"
    if api == 2:
        return {"url": url, "ranges": [{"chunks": chunks, "bytes": span}]}
    return {"range": chunks, "url": url, "url_range": span}


@router.get("/xorbs/{token}/{n}")
async def xorb(request: Request, token: str, n: str) -> Response:
    state: ServerState = request.app.state.depot
    try:  # the URL's grant first, like a presigned URL's signature
        grant = await asyncio.to_thread(grants(state).find, token, FILE)
        version = await _honour(state, grant, FILE)
        assert grant is not None and grant.blob is not None
        note(request, key=grant.key, model=str(version.reference))
        size = next((f.size for f in version.files if f.digest == grant.blob), 0)
        number = int(n) if _NUMBER.fullmatch(n) else -1
        if not 0 <= number < xorbs.xorb_count(size):
            raise HubError(404, None, f"the file has no xorb {n[:20]!r}")
        start, end = _range(request, xorbs.xorb_length(size, number))
        try:  # the bytes as admitted, never changed ones
            path = await asyncio.to_thread(state.depot.store.verified_path, grant.blob)
        except (IntegrityError, NotFound) as exc:
            log.error("%s: %s", version.reference, exc)
            raise HubError(500, None, f"{grant.blob} cannot be served: {exc}") from None
    except HubError as exc:
        return exc.response()
    total = xorbs.xorb_length(size, number)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    status = 200
    if "range" in request.headers:
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        status = 206
    stored = _Stored(path)
    blocks = xorbs.xorb_bytes(size, number, start, end, stored.read_into)
    return StreamingResponse(_stream(stored, blocks), status_code=status,
                             media_type="application/octet-stream", headers=headers)  # fmt: skip


class _Stored:
    """The stored file of one transfer, opened by its first read (in the worker thread) and
    held open to the end, so the bytes stay readable even if the file is evicted from a cache
    meanwhile. `close` waits for no one: a read still running closes it when done, so a client
    that leaves cannot close the descriptor under that read."""

    def __init__(self, path: os.PathLike[str]) -> None:
        self.path = path
        self.fd = -1
        self.lock = threading.Lock()
        self.reading = False
        self.closed = False

    def read_into(self, buffers: list[memoryview], at: int) -> int:
        with self.lock:
            if self.closed:
                raise OSError("the transfer has ended")
            if self.fd < 0:
                self.fd = os.open(self.path, os.O_RDONLY)
            self.reading = True
        try:
            return os.preadv(self.fd, buffers, at)
        finally:
            with self.lock:
                self.reading = False
                if self.closed:
                    self._shut()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if not self.reading:
                self._shut()

    def _shut(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


async def _stream(stored: _Stored, blocks: Iterator[memoryview]) -> AsyncIterator[memoryview]:
    """Each block read and framed in a worker thread."""
    try:
        while (block := await asyncio.to_thread(next, blocks, None)) is not None:
            yield block
    finally:
        stored.close()
