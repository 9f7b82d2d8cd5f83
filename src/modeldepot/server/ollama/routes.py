"""Ollama's API at the server's root, in front of the depot's one serving path.

    GET|HEAD /                 `Ollama is running` (to clients; a browser gets the web UI)
    GET|HEAD /api/version      a version Ollama's clients accept
    GET|HEAD /api/tags         the admitted models the key may use
    GET /api/ps                the engines loaded now, of models the key may use
    POST /api/show             details, model_info (the GGUF header), template, parameters
    POST /api/chat             /v1/chat/completions, NDJSON unless `stream: false`
    POST /api/generate         a one-turn chat (`raw`: /v1/completions)
    POST /api/embed            /v1/embeddings, L2-normalised
    POST /api/embeddings       the same, one prompt (the older route)

Chat, generate and embeddings are translated (`translate.py`) and handed to the OpenAI API's
own handler (`openai.forward_as`): the same resolution, gate, scope, quotas, routing,
accounting and request log as `/v1`. An empty chat or prompt loads the model, and with
`keep_alive: 0` unloads it, after the same checks. Management (pull, create, copy, delete,
blobs) is in `manage.py`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Match
from starlette.types import Scope

from modeldepot.errors import InvalidReference, ModelNotFound
from modeldepot.registry import ModelVersion
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.resolver import refusal
from modeldepot.runtime import Capability
from modeldepot.server import routing
from modeldepot.server.access import note
from modeldepot.server.auth import Caller
from modeldepot.server.errors import APIError
from modeldepot.server.ollama import translate, views
from modeldepot.server.ollama.errors import OllamaRoute, reshape
from modeldepot.server.ollama.names import depot_name, display_name, hex_digest
from modeldepot.server.ollama.wire import (
    ChatRequest,
    EmbeddingsRequest,
    EmbedRequest,
    GenerateRequest,
    ShowRequest,
    parse,
)
from modeldepot.server.openai import forward_as
from modeldepot.server.requests import read_object
from modeldepot.server.state import ServerState
from modeldepot.server.ui.session import COOKIE

__all__ = ["OLLAMA_VERSION", "resolve_version", "router"]

OLLAMA_VERSION = "0.12.0"
"""The Ollama version the API answers as (clients gate features on it; dotted integers)."""
NDJSON = "application/x-ndjson"

router = APIRouter(route_class=OllamaRoute)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.depot
    return state


_SESSION = f"{COOKIE}=".encode()


class _ClientRoot(OllamaRoute):
    """`/` for Ollama's clients only: a browser (asking for HTML, sending htmx's request
    header, or holding a web UI session's cookie, which no Ollama client has) reaches the
    web UI."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("type") == "http":
            headers = dict(scope.get("headers") or [])
            if (b"text/html" in headers.get(b"accept", b"") or b"hx-request" in headers
                    or _SESSION in headers.get(b"cookie", b"")):  # fmt: skip
                return Match.NONE, {}
        return super().matches(scope)


async def running() -> Response:
    """Anyone may ask whether the server runs (`ollama` checks with HEAD /)."""
    return PlainTextResponse("Ollama is running")


router.add_api_route("/", running, methods=["GET", "HEAD"], include_in_schema=False,
                     route_class_override=_ClientRoot)  # fmt: skip


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version(key: Caller) -> dict[str, str]:
    return {"version": OLLAMA_VERSION}


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object a request carries, within the API's bounds (`{}` when empty)."""
    if request.headers.get("content-length") == "0":
        return {}
    return await read_object(request)


def _not_found(name: str) -> APIError:
    return APIError(404, f"model '{name}' not found", "invalid_request_error", "not_found")


async def resolve_version(request: Request, key: ApiKey, name: str) -> ModelVersion:
    """The version an Ollama name reaches, as the server may hand it to this key: 404 when
    none (or the name is not one), 403 out of the key's scope or refused by the policy."""
    state = _state(request)
    if not name:
        raise APIError.bad_request("model is required")
    try:
        version = await asyncio.to_thread(state.depot.names.show, depot_name(name))
    except (ModelNotFound, InvalidReference):
        raise _not_found(name) from None
    state.gate.authorize(key, str(version.reference))
    refused = await state.directory.refusals(version)
    if refused:
        raise APIError(403, refusal(version, refused), "permission_error",
                       "model_quarantined")  # fmt: skip
    return version


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def tags(request: Request, key: Caller) -> dict[str, Any]:
    state = _state(request)
    versions = await asyncio.to_thread(state.depot.names.versions)
    listed = [
        views.version_entry(v, state.directory.capabilities(v))
        for v in versions
        if v.admitted and key.allows(str(v.reference))
        and state.directory.capabilities(v).servable
    ]  # fmt: skip
    listed.sort(key=lambda entry: str(entry["modified_at"]), reverse=True)
    return {"models": listed}


@router.get("/api/ps")
async def ps(request: Request, key: Caller) -> dict[str, Any]:
    state = _state(request)
    loaded = []
    for engine in state.pool.engines():
        spec = engine.spec
        if not key.allows(spec.name) or not engine.alive:
            continue
        try:
            version = await asyncio.to_thread(state.depot.names.show,
                                              f"{spec.name}@{spec.digest}")  # fmt: skip
        except (ModelNotFound, InvalidReference):
            continue
        name = display_name(version.reference)
        loaded.append({
            "name": name, "model": name, "size": spec.memory,
            "digest": hex_digest(spec.digest), "details": views.details(version),
            "expires_at": views.expires_at(state.pool.expires(engine)), "size_vram": 0,
            "context_length": spec.context // max(1, spec.parallel),
        })  # fmt: skip
    loaded.sort(key=lambda entry: str(entry["expires_at"]), reverse=True)
    return {"models": loaded}


@router.post("/api/show")
async def show(request: Request, key: Caller) -> dict[str, Any]:
    state = _state(request)
    asked = parse(ShowRequest, await _body(request))
    version = await resolve_version(request, key, asked.target)
    preset = state.directory.preset(version)
    template = (preset.template if preset and preset.template else None) or \
        version.info.chat_template  # fmt: skip
    weights = next((f for f in version.files if f.kind == "weights"), None)
    path = None
    if weights is not None and version.info.format == "gguf":
        path = await asyncio.to_thread(state.depot.store.local_path, weights.digest)
    info = await asyncio.to_thread(views.model_info, version, path, verbose=asked.verbose)
    shown: dict[str, Any] = {
        "modelfile": views.modelfile(version, preset),
        "details": views.details(version, views.parent_of(version)),
        "model_info": info,
        "capabilities": views.capabilities(state.directory.capabilities(version)),
        "modified_at": views.timestamp(version.created_at),
    }
    licence = (preset.licenses if preset else ()) or (
        (version.info.license,) if version.info.license else ()
    )
    if licence:
        shown["license"] = "\n".join(licence)
    if template:
        shown["template"] = template
    if preset is not None:
        if preset.system is not None:
            shown["system"] = preset.system
        if preset.parameters:
            shown["parameters"] = views.parameters_text(dict(preset.parameters))
        if preset.messages:
            shown["messages"] = list(preset.messages)
    return shown


async def _load(request: Request, key: ApiKey, name: str, keep_alive: float | None,
                capability: Capability) -> str:  # fmt: skip
    """Load the model `name` reaches (or with `keep_alive` 0 unload it), after the checks a
    request for it passes; returns `load` or `unload`."""
    state = _state(request)
    try:
        targets = await routing.targets_for(state, _model(name), private=key.private, key=key)
    except APIError as exc:
        if exc.code == "model_not_found":
            raise _not_found(name) from None
        raise
    await state.gate.admit(key, 0, 0, 0)
    local = next((t.version for t in targets if t.version is not None), None)
    if local is None:  # a remote model: nothing here to load
        return "unload" if keep_alive == 0 else "load"
    spec = routing.engine_spec(state, local, capability)
    if keep_alive == 0:
        await state.pool.stop(spec.digest)
        return "unload"
    async with state.pool.use(spec, keep_alive):
        pass
    return "load"


def _model(name: str) -> str:
    try:
        return depot_name(name)
    except InvalidReference:
        raise _not_found(name) from None


async def _forward(request: Request, key: ApiKey, path: str, body: dict[str, Any], asked: str,
                   serving: routing.Serving) -> Response:  # fmt: skip
    """The OpenAI API's own handler for the translated request (404 in Ollama's words)."""
    try:
        return await forward_as(request, path, key, body, serving)
    except APIError as exc:
        if exc.code == "model_not_found":
            raise _not_found(asked) from None
        raise


async def _answer(request: Request, key: ApiKey, path: str, body: dict[str, Any],
                  reply: translate.Reply, stream: bool,
                  serving: routing.Serving) -> Response:  # fmt: skip
    """Hand the translated request to the OpenAI API's handler and translate its answer
    (its accounting, the response's background work, runs once the new answer is sent)."""
    response = await _forward(request, key, path, body, reply.model, serving)
    if stream and response.status_code == 200 and isinstance(response, StreamingResponse):
        chunks = cast(AsyncIterator[bytes], response.body_iterator)  # the relay yields bytes
        return StreamingResponse(translate.ndjson(reply, chunks),
                                 media_type=NDJSON, background=response.background)  # fmt: skip
    content = await _content(response)
    if response.status_code != 200:
        answer = reshape(Response(content, response.status_code, headers=response.headers))
    else:
        answer = JSONResponse(translate.whole(reply, json.loads(content)))
    answer.background = response.background
    return answer


async def _content(response: Response) -> bytes:
    """A response's body, read whole."""
    if isinstance(response, StreamingResponse):
        return b"".join([c if isinstance(c, bytes) else str(c).encode()
                         async for c in response.body_iterator])  # fmt: skip
    return bytes(response.body)


def _done(reply: translate.Reply, reason: str) -> dict[str, Any]:
    out: dict[str, Any] = {"model": reply.model, "created_at": views.timestamp()}
    out.update({"message": {"role": "assistant", "content": ""}} if reply.chat
               else {"response": ""})  # fmt: skip
    return {**out, "done": True, "done_reason": reason}


@router.post("/api/chat")
async def chat(request: Request, key: Caller) -> Response:
    asked = parse(ChatRequest, await _body(request))
    if not asked.target:
        raise APIError.bad_request("model is required")
    note(request, model=asked.target)
    reply = translate.Reply(asked.target, chat=True)
    if not asked.messages:
        reason = await _load(request, key, asked.target, asked.keep_alive, Capability.CHAT)
        return JSONResponse(_done(reply, reason))
    body = translate.chat_body(asked, _model(asked.target))
    serving = routing.Serving(asked.keep_alive, (asked.options or {}).get("num_ctx"))
    return await _answer(request, key, "/v1/chat/completions", body, reply, asked.stream,
                         serving)  # fmt: skip


@router.post("/api/generate")
async def generate(request: Request, key: Caller) -> Response:
    asked = parse(GenerateRequest, await _body(request))
    if not asked.target:
        raise APIError.bad_request("model is required")
    note(request, model=asked.target)
    reply = translate.Reply(asked.target, chat=False)
    if not asked.prompt and not asked.images:
        reason = await _load(request, key, asked.target, asked.keep_alive, Capability.CHAT)
        return JSONResponse(_done(reply, reason))
    path, body = translate.generate_body(asked, _model(asked.target))
    serving = routing.Serving(asked.keep_alive, (asked.options or {}).get("num_ctx"))
    return await _answer(request, key, path, body, reply, asked.stream, serving)


async def _embed(request: Request, key: ApiKey, name: str, texts: list[str],
                 keep_alive: float | None) -> dict[str, Any]:  # fmt: skip
    """The OpenAI embeddings answer for `texts` (errors raised in Ollama's words), with the
    request's duration in nanoseconds under `_total`."""
    started = time.perf_counter()
    body = {"model": _model(name), "input": texts}
    response = await _forward(request, key, "/v1/embeddings", body, name,
                              routing.Serving(keep_alive))  # fmt: skip
    try:
        content = await _content(response)
    finally:
        if response.background is not None:
            await response.background()
    if response.status_code != 200:
        error = reshape(Response(content, response.status_code))
        raise APIError(error.status_code, json.loads(bytes(error.body))["error"],
                       "invalid_request_error")  # fmt: skip
    answer: dict[str, Any] = json.loads(content)
    answer["_total"] = int((time.perf_counter() - started) * 1e9)
    return answer


@router.post("/api/embed")
async def embed(request: Request, key: Caller) -> dict[str, Any]:
    asked = parse(EmbedRequest, await _body(request))
    if not asked.target:
        raise APIError.bad_request("model is required")
    note(request, model=asked.target)
    texts = [asked.input] if isinstance(asked.input, str) else list(asked.input)
    if not texts:
        await _load(request, key, asked.target, asked.keep_alive, Capability.EMBEDDINGS)
        return {"model": asked.target, "embeddings": []}
    answer = await _embed(request, key, asked.target, texts, asked.keep_alive)
    out: dict[str, Any] = {
        "model": asked.target,
        "embeddings": translate.embed_vectors(answer, asked.dimensions),
        "total_duration": answer["_total"],
    }
    tokens = (answer.get("usage") or {}).get("prompt_tokens")
    if tokens:
        out["prompt_eval_count"] = tokens
    return out


@router.post("/api/embeddings")
async def embeddings(request: Request, key: Caller) -> dict[str, Any]:
    asked = parse(EmbeddingsRequest, await _body(request))
    if not asked.target:
        raise APIError.bad_request("model is required")
    note(request, model=asked.target)
    if not asked.prompt:
        await _load(request, key, asked.target, asked.keep_alive, Capability.EMBEDDINGS)
        return {"embedding": []}
    answer = await _embed(request, key, asked.target, [asked.prompt], asked.keep_alive)
    rows = answer.get("data") or [{}]
    return {"embedding": [float(x) for x in rows[0].get("embedding") or []]}
