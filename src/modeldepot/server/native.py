"""The depot's own API (`/depot/api/...`): what another depot needs to pull a model from this
one, and what `depot ps` / `depot stop` ask of a running server.

    GET /depot/api/models                 admitted versions (as `depot list --json`)
    GET /depot/api/catalogue              a page of the web UI's catalogue, as JSON
    GET /depot/api/leaderboard            the leaderboard (as `depot leaderboard --json`:
                                          `task`, `newest`), of the models the key may see
    GET /depot/api/models/{name}          one version's metadata, files and lineage
    GET /depot/api/manifests/{name}       the manifest's exact bytes; `x-depot-digest` names them
    GET /depot/api/blobs/{digest}         a blob's bytes
    GET /depot/api/ps                     the engines loaded now (`depot ps`)
    POST /depot/api/stop {"model": NAME}  unload a model's engines (`depot stop`)

The root's `/api/...` is Ollama's (server/ollama/). Depots before the move pulled from
`/api/models/{name}`, `/api/manifests/{name}` and `/api/blobs/{digest}`: those three stay as
read-only aliases (`legacy`, GET only: Ollama's own blob routes are HEAD and POST), deprecated,
so an older depot still pulls from this one.

The puller re-hashes everything it receives, so a damaged or dishonest server cannot plant
anything: a byte that does not match its digest fails the pull and nothing is recorded. This
side checks too: a blob whose stored bytes changed since they were admitted is refused (500
`stored_bytes_changed`, as for an engine) instead of served.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from modeldepot.describe import version_view
from modeldepot.errors import IntegrityError, InvalidReference, ModelNotFound, NotFound
from modeldepot.refs import parse_digest
from modeldepot.registry import ModelVersion
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.resolver import refusal
from modeldepot.registry.trust import TrustStore
from modeldepot.server.auth import Caller
from modeldepot.server.errors import APIError
from modeldepot.server.requests import read_json
from modeldepot.server.state import ServerState
from modeldepot.store.manifests import MANIFEST_MEDIA_TYPE

__all__ = ["PREFIX", "legacy", "router"]

log = logging.getLogger(__name__)
PREFIX = "/depot/api"
router = APIRouter(prefix=PREFIX)
legacy = APIRouter(prefix="/api", deprecated=True)
"""The paths older depots pull from (GET only), answered as the new ones are."""


async def _version_named(state: ServerState, name: str) -> ModelVersion:
    try:
        return await asyncio.to_thread(state.depot.names.show, name)
    except (ModelNotFound, InvalidReference):
        raise APIError(
            404, f"no model named {name}", "invalid_request_error", "not_found"
        ) from None


async def _version(request: Request, name: str, key: ApiKey) -> ModelVersion:
    state: ServerState = request.app.state.depot
    version = await _version_named(state, name)
    state.gate.authorize(key, str(version.reference))
    refused = await state.directory.refusals(version)
    if refused:
        raise _refused(f"{refusal(version, refused)}: not exported")
    return version


def _refused(message: str) -> APIError:
    return APIError(403, message, "permission_error", "model_quarantined")


@router.get("/models")
async def models(request: Request, key: Caller) -> list[dict[str, Any]]:
    state: ServerState = request.app.state.depot
    versions = await asyncio.to_thread(state.depot.names.versions)
    return [version_view(v) for v in versions if key.allows(str(v.reference)) and v.admitted]


@router.get("/catalogue")
async def catalogue_page(request: Request, key: Caller) -> dict[str, Any]:
    """A page of the catalogue (`q`, facets, `sort`, `page`), as the web UI's catalogue shows
    it: every version the key may see, whatever its status."""
    from modeldepot.server.ui import catalogue

    state: ServerState = request.app.state.depot
    query = catalogue.Query.from_params(dict(request.query_params))
    found = catalogue.search(await catalogue.rows_for(state, key), query)
    return catalogue.page_json(found)


@router.get("/leaderboard")
async def leaderboard(request: Request, key: Caller) -> dict[str, Any]:
    from modeldepot.registry.evaluations import EvaluationStore
    from modeldepot.server.ui.pages import leaderboard_for

    state: ServerState = request.app.state.depot
    store = EvaluationStore(state.depot.registry)
    task = request.query_params.get("task") or None
    newest = request.query_params.get("newest") in ("1", "true")
    try:
        board = await asyncio.to_thread(leaderboard_for, store, key, task, newest)
    except NotFound as exc:
        raise APIError(404, str(exc), "invalid_request_error", "not_found") from None
    return board.to_dict()


@router.get("/models/{name:path}")
@legacy.get("/models/{name:path}")
async def model(request: Request, name: str, key: Caller) -> dict[str, Any]:
    return version_view(await _version(request, name, key))


@router.get("/manifests/{name:path}")
@legacy.get("/manifests/{name:path}")
async def manifest(request: Request, name: str, key: Caller) -> Response:
    state: ServerState = request.app.state.depot
    version = await _version(request, name, key)
    data = await asyncio.to_thread(state.depot.store.read_bytes, version.digest)
    return Response(
        data, media_type=MANIFEST_MEDIA_TYPE, headers={"x-depot-digest": version.digest}
    )


@router.get("/blobs/{digest}")
@legacy.get("/blobs/{digest}")
async def blob(request: Request, digest: str, key: Caller) -> Response:
    """A blob, to a caller whose key may use an admitted version that holds it (a blob is
    reached through a model, never by digest alone)."""
    state: ServerState = request.app.state.depot
    try:
        digest = parse_digest(digest)
    except InvalidReference as exc:
        raise APIError.bad_request(str(exc)) from None
    users = await asyncio.to_thread(TrustStore(state.depot.registry).blob_users, digest)
    mine = [(names, manifest) for names, manifest in users if any(key.allows(n) for n in names)]
    if not mine:  # not stored, or only in models this key may not use: the same answer
        raise APIError(404, f"no blob {digest}", "invalid_request_error", "not_found")

    def servable() -> bool:  # the gate's word on each version that holds it
        return any(state.depot.names.show(f"{names[0]}@{manifest}").admitted
                   for names, manifest in mine)  # fmt: skip

    if not await asyncio.to_thread(servable):
        raise _refused(
            f"blob {digest} belongs only to versions that are quarantined or pending: not exported"
        )
    try:  # the bytes as admitted, or 500 `stored_bytes_changed` (never changed bytes)
        path = await asyncio.to_thread(state.depot.store.verified_path, digest)
    except NotFound:
        raise APIError(404, f"no blob {digest}", "invalid_request_error", "not_found") from None
    except IntegrityError as exc:  # where the blob lies is the log's to say, not the client's
        log.error("%s", exc)
        message = f"blob {digest}: its stored bytes changed since it was admitted; not served"
        raise APIError(500, message, "server_error", "stored_bytes_changed") from None
    return FileResponse(path, media_type="application/octet-stream")


@router.get("/ps")
async def ps(request: Request, key: Caller) -> list[dict[str, Any]]:
    state: ServerState = request.app.state.depot
    return [vars(s) for s in state.pool.status() if key.allows(s.name)]


@router.post("/stop")
async def stop(request: Request, key: Caller) -> list[dict[str, Any]]:
    state: ServerState = request.app.state.depot
    body = await read_json(request)
    version = await _version_named(state, body["model"])
    state.gate.authorize(key, str(version.reference))
    return [vars(s) for s in await state.pool.stop(version.digest)]
