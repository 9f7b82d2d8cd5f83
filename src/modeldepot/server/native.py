"""The depot's own API (`/api/...`): what another depot needs to pull a model from this one.

    GET /api/models                  admitted versions (as `depot list --json`)
    GET /api/models/{name}           one version's metadata, files and lineage
    GET /api/manifests/{name}        the manifest's exact bytes; `x-depot-digest` names them
    GET /api/blobs/{digest}          a blob's bytes

The puller re-hashes everything it receives, so a damaged or dishonest server cannot plant
anything: a byte that does not match its digest fails the pull and nothing is recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from modeldepot.describe import version_view
from modeldepot.errors import InvalidReference, ModelNotFound, NotFound
from modeldepot.refs import parse_digest
from modeldepot.registry import ModelVersion
from modeldepot.registry.trust import TrustStore
from modeldepot.server.errors import APIError
from modeldepot.server.state import ServerState
from modeldepot.store.manifests import MANIFEST_MEDIA_TYPE

__all__ = ["router"]

router = APIRouter(prefix="/api")


async def _version(request: Request, name: str) -> ModelVersion:
    state: ServerState = request.app.state.depot
    key = await state.gate.authenticate(request)
    try:
        version = await asyncio.to_thread(state.depot.names.show, name)
    except (ModelNotFound, InvalidReference):
        raise APIError(
            404, f"no model named {name}", "invalid_request_error", "not_found"
        ) from None
    state.gate.authorize(key, str(version.reference))
    if await state.directory.refusals(version):
        raise _refused(str(version.reference))
    return version


def _refused(what: str) -> APIError:
    return APIError(403, f"{what} is quarantined by the depot's policy and is not exported",
                    "permission_error", "model_quarantined")  # fmt: skip


@router.get("/models")
async def models(request: Request) -> list[dict[str, Any]]:
    state: ServerState = request.app.state.depot
    key = await state.gate.authenticate(request)
    versions = await asyncio.to_thread(state.depot.names.versions)
    return [version_view(v) for v in versions if key.allows(str(v.reference)) and v.admitted]


@router.get("/models/{name:path}")
async def model(request: Request, name: str) -> dict[str, Any]:
    return version_view(await _version(request, name))


@router.get("/manifests/{name:path}")
async def manifest(request: Request, name: str) -> Response:
    state: ServerState = request.app.state.depot
    version = await _version(request, name)
    data = await asyncio.to_thread(state.depot.store.read_bytes, version.digest)
    return Response(
        data, media_type=MANIFEST_MEDIA_TYPE, headers={"x-depot-digest": version.digest}
    )


@router.get("/blobs/{digest}")
async def blob(request: Request, digest: str) -> Response:
    state: ServerState = request.app.state.depot
    await state.gate.authenticate(request)
    try:
        digest = parse_digest(digest)
    except InvalidReference as exc:
        raise APIError.bad_request(str(exc)) from None
    if not await asyncio.to_thread(TrustStore(state.depot.registry).blob_exportable, digest):
        raise _refused(f"blob {digest}")
    try:
        path = await asyncio.to_thread(state.depot.store.local_path, digest)
    except NotFound:
        raise APIError(404, f"no blob {digest}", "invalid_request_error", "not_found") from None
    return FileResponse(path, media_type="application/octet-stream")
