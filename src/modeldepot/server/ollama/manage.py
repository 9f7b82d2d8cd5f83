"""What Ollama's clients change: pull, create, copy, delete, and uploads to `/api/blobs`.

Each needs an admin key (or the local caller of a depot without keys), and the names it
touches inside the key's scope. What they store is stored the depot's way: a pull is `depot
pull` of a packaged model, a create is a preset (`customise/presets.py`) or an import of
uploaded files, scanned and admitted before anything serves it; a copy is a tag, a delete
removes one. Push has no Ollama registry to go to and says so (501).

    POST /api/pull           {"model"}: a packaged model (smollm2, minilm...), with progress
    POST /api/push           501: the depot pushes with `depot push oci://...`
    POST /api/create         {"model", "from" | "files", template, system, parameters...}
    POST /api/copy           {"source", "destination"}: a new tag
    DELETE /api/delete       {"model"}: removes the tag
    HEAD|POST /api/blobs/sha256:<hex>   is it stored; upload one (for `files`)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from modeldepot.customise.modelfile import Modelfile
from modeldepot.customise.presets import create_preset
from modeldepot.errors import DepotError, IntegrityError, InvalidReference, ModelNotFound
from modeldepot.paths import check_relpath
from modeldepot.receive import catalogue
from modeldepot.refs import Reference
from modeldepot.registry import ModelVersion
from modeldepot.registry.keys import ApiKey
from modeldepot.server.auth import Caller
from modeldepot.server.errors import APIError
from modeldepot.server.ollama.errors import OllamaRoute, error_line, ollama_error
from modeldepot.server.ollama.names import depot_name
from modeldepot.server.ollama.wire import (
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    PullRequest,
    parse,
)
from modeldepot.server.requests import read_object
from modeldepot.server.state import ServerState

__all__ = ["router"]

router = APIRouter(route_class=OllamaRoute)
_BLOB = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")
_WRITE_CHUNK = 1024 * 1024
NDJSON = "application/x-ndjson"


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.depot
    return state


def _governs(key: ApiKey, *names: str) -> None:
    """Changing the store takes an admin key, and every name touched in its scope."""
    if not key.admin:
        raise APIError(403, f"the API key {key.name!r} may not change the depot's models "
                       "(an admin key may)", "permission_error", "not_admin")  # fmt: skip
    for name in names:
        if not key.allows(name):
            raise APIError(403, f"the API key {key.name!r} may not use {name}",
                           "permission_error", "model_not_allowed")  # fmt: skip


def _name(text: str, what: str = "name") -> str:
    try:
        return depot_name(text)
    except InvalidReference:
        raise APIError.bad_request(f'{what} "{text}" is invalid') from None


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value) + "\n").encode()


async def _progress(work: Callable[[Callable[[dict[str, Any]], None]], ModelVersion],
                    stream: bool) -> Response:  # fmt: skip
    """Run `work` (given a function to report progress with) in a thread; stream its reports
    as Ollama's progress lines and end with `success`, or answer once. A version that ends
    up quarantined is an error: stored, never served."""
    if not stream:
        version = await asyncio.to_thread(work, lambda _: None)
        refused = _refused(version)
        if refused:
            return ollama_error(403, refused)
        return JSONResponse({"status": "success"})
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | BaseException | ModelVersion] = asyncio.Queue()

    def report(line: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, line)

    def run() -> None:
        try:
            outcome: ModelVersion | BaseException = work(report)
        except BaseException as exc:  # reported as the stream's last line
            outcome = exc
        loop.call_soon_threadsafe(queue.put_nowait, outcome)

    async def lines() -> AsyncIterator[bytes]:
        worker = loop.run_in_executor(None, run)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, dict):
                    yield _line(item)
                    continue
                if isinstance(item, DepotError | APIError):
                    yield error_line(str(item))
                elif isinstance(item, BaseException):
                    yield error_line("the server failed; its log says why")
                else:
                    refused = _refused(item)
                    yield error_line(refused) if refused else _line({"status": "success"})
                return
        finally:
            await worker

    return StreamingResponse(lines(), media_type=NDJSON)


def _refused(version: ModelVersion) -> str | None:
    if version.admitted:
        return None
    reasons = "; ".join(version.reasons) or version.status
    return f"{version.reference} is {version.status}: stored, never served ({reasons})"


@router.post("/api/pull")
async def pull(request: Request, key: Caller) -> Response:
    state = _state(request)
    asked = parse(PullRequest, await read_object(request))
    name = _name(asked.target, "model")
    _governs(key, name)
    repository = Reference.parse(name).name
    try:
        entry = catalogue.find(repository, state.depot.packaged)
    except ModelNotFound:
        known = ", ".join(sorted(state.depot.packaged or catalogue.load_catalogue()))
        return ollama_error(404, f"pull model manifest: file does not exist: {asked.target} is "
                            f"not a model this depot can pull (packaged: {known})")  # fmt: skip
    total = None if entry.folder is not None else sum(p.stat().st_size
                                                      for p in entry.model_parts()[1])  # fmt: skip
    digest = f"sha256:{entry.sha256}"

    def work(report: Callable[[dict[str, Any]], None]) -> ModelVersion:
        report({"status": "pulling manifest"})
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            report({"status": f"pulling {digest[7:19]}", "digest": digest,
                    "total": total or done[0], "completed": done[0]})  # fmt: skip

        version = state.depot.intake.pull(name, progress=advance, actor=key.name)
        report({"status": "verifying sha256 digest"})
        report({"status": "writing manifest"})
        return version

    return await _progress(work, asked.stream)


@router.post("/api/push")
async def push(request: Request, key: Caller) -> Response:
    return ollama_error(501, "push is not supported through the Ollama API: the depot pushes "
                        "to OCI registries (`depot push oci://HOST/REPO:TAG NAME`), and other "
                        "depots pull from it (`depot pull http://HOST:PORT/NAME`)")  # fmt: skip


@router.post("/api/copy")
async def copy(request: Request, key: Caller) -> Response:
    state = _state(request)
    asked = parse(CopyRequest, await read_object(request))
    source = _name(asked.source, "source")
    destination = _name(asked.destination, "destination")
    _governs(key, source, destination)
    try:
        await asyncio.to_thread(state.depot.names.tag, source, destination, actor=key.name)
    except ModelNotFound:
        return ollama_error(404, f'model "{asked.source}" not found')
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete(request: Request, key: Caller) -> Response:
    state = _state(request)
    asked = parse(DeleteRequest, await read_object(request))
    name = _name(asked.target)
    _governs(key, name)
    try:
        await asyncio.to_thread(state.depot.names.remove, name, actor=key.name)
    except ModelNotFound:
        return ollama_error(404, f"model '{asked.target}' not found")
    return Response(status_code=200)


def _blob_digest(text: str) -> str:
    found = _BLOB.fullmatch(text)
    if found is None:
        raise APIError.bad_request("invalid digest format")
    return f"sha256:{found.group(1).lower()}"


@router.head("/api/blobs/{digest}")
async def has_blob(request: Request, digest: str, key: Caller) -> Response:
    _governs(key)
    wanted = _blob_digest(digest)
    if await asyncio.to_thread(_state(request).depot.store.has, wanted):
        return Response(status_code=200)
    return ollama_error(404, f'blob "{wanted}" not found')


@router.post("/api/blobs/{digest}")
async def upload_blob(request: Request, digest: str, key: Caller) -> Response:
    """Store an uploaded file under its digest (checked as it arrives; refused past
    `DEPOT_MAX_UPLOAD`). It is not a model: `/api/create` makes one of it, scanned then."""
    _governs(key)
    state = _state(request)
    wanted = _blob_digest(digest)
    store = state.depot.store
    if await asyncio.to_thread(store.has, wanted):
        async for _ in request.stream():  # read and dropped: the client is sending it
            pass
        return Response(status_code=200)
    limit = state.settings.max_upload
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return ollama_error(413, f"the upload is larger than {limit} bytes (DEPOT_MAX_UPLOAD)")
    folder = state.settings.layout.tmp
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{os.getpid()}-{secrets.token_hex(8)}.partial"
    hasher, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as f:
            pending = bytearray()
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return ollama_error(413, f"the upload is larger than {limit} bytes "
                                        "(DEPOT_MAX_UPLOAD)")  # fmt: skip
                hasher.update(chunk)
                pending += chunk
                if len(pending) >= _WRITE_CHUNK:
                    await asyncio.to_thread(f.write, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(f.write, bytes(pending))
        got = f"sha256:{hasher.hexdigest()}"
        if got != wanted:
            return ollama_error(400, f'digest mismatch, expected "{wanted}", got "{got}"')

        def put() -> None:
            with state.depot.lock.shared():
                store.put_file(partial, expected=wanted, consume=True)

        try:
            await asyncio.to_thread(put)
        except IntegrityError as exc:
            return ollama_error(400, str(exc))
        return Response(status_code=201)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _uploaded(state: ServerState, files: dict[str, str], where: Path) -> dict[str, Path]:
    """The uploaded blobs `files` names (path -> digest), as files under `where` by their
    names (links to the blobs; every name checked as a path from outside)."""
    found: dict[str, Path] = {}
    for name, digest in files.items():
        relpath = check_relpath(name, "file path")
        wanted = _blob_digest(digest)
        if not state.depot.store.has(wanted):
            raise APIError.bad_request(f'blob "{wanted}" not found: upload it first '
                                       "(POST /api/blobs)")  # fmt: skip
        link = where / relpath
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(state.depot.store.local_path(wanted))
        found[relpath] = link
    return found


@router.post("/api/create")
async def create(request: Request, key: Caller) -> Response:
    state = _state(request)
    asked = parse(CreateRequest, await read_object(request))
    name = _name(asked.target, "name")
    base = _name(asked.from_, "from") if asked.from_ else None
    _governs(key, name, *([base] if base else []))
    if not base and not asked.files:
        raise APIError.bad_request("neither 'from' or 'files' was specified")
    if asked.quantize:
        raise APIError.bad_request("quantize is not supported here: `depot quantize NAME` "
                                   "makes a quantised version")  # fmt: skip
    if asked.adapters and len(asked.adapters) > 1:
        raise APIError.bad_request("only one adapter is currently supported")
    licenses = [asked.license] if isinstance(asked.license, str) else list(asked.license or [])
    messages = tuple({"role": m.role, "content": m.content or ""} for m in asked.messages or [])
    if any(m["role"] not in ("system", "user", "assistant") for m in messages):
        raise APIError.bad_request('message role must be one of "system", "user", or '
                                   '"assistant"')  # fmt: skip

    def work(report: Callable[[dict[str, Any]], None]) -> ModelVersion:
        with state.settings.layout.scratch("create-") as tmp:
            folder = Path(tmp)
            base_file = adapter = None
            if asked.files:
                files = _uploaded(state, asked.files, folder / "model")
                base_file = next(iter(files.values())) if len(files) == 1 else folder / "model"
                report({"status": "parsing model files"})
            if asked.adapters:
                adapter = next(iter(_uploaded(state, asked.adapters, folder / "adapter")
                                    .values()))  # fmt: skip
            modelfile = Modelfile(base=None if base_file else base, base_file=base_file,
                                  adapter=adapter, parameters=dict(asked.parameters or {}),
                                  template=asked.template, system=asked.system,
                                  licenses=tuple(licenses), messages=messages)  # fmt: skip
            version = create_preset(state.depot, name, modelfile, actor=key.name)
        for f in version.files:
            report({"status": f"using layer {f.digest}"})
        report({"status": "writing manifest"})
        return version

    return await _progress(work, asked.stream)
