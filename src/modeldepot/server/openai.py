"""The OpenAI-compatible API: `/v1/models`, `/v1/chat/completions`, `/v1/completions`.

This is a translation layer in front of each model's engine, never a second inference path:
a request is checked, its model resolved in the registry and loaded if needed, then passed to
the engine; responses (and server-sent event streams) come back as the engine writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from modeldepot.config import secret_from_env
from modeldepot.monitor import Accounting
from modeldepot.registry import ModelVersion
from modeldepot.registry.gateway import Remote
from modeldepot.registry.keys import ApiKey
from modeldepot.runtime import Capability, EngineSpec, ModelUnavailable, QueueFull
from modeldepot.server import echo, routing, tools
from modeldepot.server.access import note
from modeldepot.server.auth import Caller
from modeldepot.server.errors import (
    RETRY_AFTER,
    APIError,
    depot_error_response,
    engine_failed,
    error_body,
)
from modeldepot.server.relay import EngineStream, RelayError
from modeldepot.server.requests import (
    check_chat,
    check_common,
    check_fits,
    choice_count,
    prompt_bound,
    read_json,
)
from modeldepot.server.state import ServerState

__all__ = ["forward_as", "models_for", "router"]

_T = TypeVar("_T")

router = APIRouter(prefix="/v1")


async def _models(request: Request, key: ApiKey,
                  capability: Capability | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """What `key` may use: admitted local versions an engine can serve (with `capability`,
    those that can do that), remotes, aliases."""
    state: ServerState = request.app.state.depot
    versions = await asyncio.to_thread(state.depot.names.versions)
    aliases, remotes = await state.directory.gateway()

    def wanted(version: ModelVersion) -> bool:
        can = state.directory.capabilities(version)
        return can.servable if capability is None else capability in can

    entries: list[tuple[str, int, str, str | None]] = [
        (str(v.reference), int(v.created_at.timestamp()), v.reference.namespace,
         v.adapter_of.target if v.adapter_of else None)
        for v in versions
        if v.admitted and wanted(v)
    ]  # fmt: skip
    entries += [(name, 0, "remote", None) for name in remotes]
    entries = [e for e in entries if key.allows(e[0])]
    entries += [(name, 0, "alias", None) for name, alias in aliases.items()
                if routing.alias_allowed(key, alias)]  # fmt: skip
    # An adapter names its base as `parent`, as vLLM lists LoRA modules.
    return [
        {"id": name, "object": "model", "created": created, "owned_by": owner,
         **({"parent": parent} if parent else {})}
        for name, created, owner, parent in entries
    ]  # fmt: skip


@router.get("/models")
async def list_models(request: Request, key: Caller) -> dict[str, Any]:
    return {"object": "list", "data": await _models(request, key)}


@router.get("/models/{model:path}")
async def retrieve_model(request: Request, model: str, key: Caller) -> dict[str, Any]:
    """One model, as `client.models.retrieve(NAME)` asks (a bare name reaches its `latest`)."""
    listed = await _models(request, key)
    wanted = {model, f"{model}:latest"}
    found = next((m for m in listed if m["id"] in wanted), None)
    if found is None:
        raise APIError.model_not_found(model)
    return found


@router.post("/chat/completions")
async def chat_completions(request: Request, key: Caller) -> Response:
    return await _forward(request, "/v1/chat/completions", key)


def _check_text(body: dict[str, Any], field: str) -> None:
    value = body.get(field)
    if not isinstance(value, str | list) or not value:
        raise APIError.bad_request(f"`{field}` is required: a string or a list of them", field)
    flat = isinstance(value, list) and all(isinstance(v, str | int) for v in value)
    nested = isinstance(value, list) and all(
        isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value
    )
    if isinstance(value, list) and not (flat or nested):
        raise APIError.bad_request(f"`{field}` must hold strings or token lists", field)


@router.post("/completions")
async def completions(request: Request, key: Caller) -> Response:
    return await _forward(request, "/v1/completions", key)


@router.post("/embeddings")
async def embeddings(request: Request, key: Caller) -> Response:
    return await _forward(request, "/v1/embeddings", key)


async def models_for(request: Request, key: ApiKey,
                     capability: Capability | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The models `key` may use, as `/v1/models` lists them; with `capability`, the local
    versions among them that can do it (remotes and aliases answer for themselves)."""
    return await _models(request, key, capability)


async def forward_as(request: Request, path: str, key: ApiKey,
                     body: dict[str, Any] | None = None,
                     serving: routing.Serving | None = None) -> Response:  # fmt: skip
    """A request already authenticated (the web UI's playground, by its session; an Ollama
    request, translated into `body`), answered exactly as the API answers it: the same
    checks, scope, quotas, routing and accounting. `serving`: how a local engine should run
    for it (Ollama's keep-alive and context)."""
    return await _forward(request, path, key, body, serving)


async def _forward(request: Request, path: str, key: ApiKey, body: dict[str, Any] | None = None,
                   serving: routing.Serving | None = None) -> Response:  # fmt: skip
    state: ServerState = request.app.state.depot
    body = await read_json(request) if body is None else body
    serving = serving or routing.Serving()
    chat = path.endswith("/chat/completions")
    if chat:
        check_chat(body)
    else:
        _check_text(body, "input" if path.endswith("/embeddings") else "prompt")
        check_common(body)
    metadata = body.get("metadata")
    private = key.private or (isinstance(metadata, dict) and metadata.get("private") is True)
    note(request, model=str(body["model"]))
    targets = await routing.targets_for(state, body["model"], private=private, key=key)
    prompt = prompt_bound(body)
    choices = 0 if path.endswith("/embeddings") else choice_count(body)
    wanted = body.get("max_completion_tokens") or body.get("max_tokens")
    if body.get("echo"):  # prompt scoring generates `max_tokens` (16 unless said)
        wanted = body.get("max_tokens", echo.DEFAULT_TOKENS)
    each, reservation = await state.gate.admit(key, prompt, wanted, choices)
    if each is not None and choices and (wanted is None or each < wanted):
        body["max_tokens"] = each  # generation stops at the key's daily quota
        body.pop("max_completion_tokens", None)
    response: Response | None = None
    for i, target in enumerate(targets):
        note(request, model=target.name)
        account = state.accounting(key, target.name, path)
        account.reservation = reservation
        account.prompt_bound = prompt
        try:
            if target.remote is not None:
                response = await _remote(state, target.remote, path, body, account, request)
            else:
                assert target.version is not None
                response = await _local(state, target.version, path, dict(body), account,
                                        request, serving)  # fmt: skip
        except (ModelUnavailable, QueueFull) as exc:  # may be answered by the next target
            response = depot_error_response(exc)
        account.status = response.status_code
        response.background = BackgroundTask(account.finish)
        response.headers["x-depot-upstream"] = target.name
        retryable = response.status_code == 429 or response.status_code >= 500
        if not retryable or i == len(targets) - 1:
            if response.status_code == 429:  # an engine's or remote's own 429 too
                response.headers.setdefault("Retry-After", RETRY_AFTER)
            return response
        account.reservation = None  # the next attempt holds the reservation
        await _discard(response)
    assert response is not None
    return response


async def _discard(response: Response) -> None:
    """Close a failed attempt before falling back to the next target."""
    if isinstance(response, StreamingResponse):
        iterator = response.body_iterator
        if hasattr(iterator, "aclose"):
            await iterator.aclose()
    if response.background is not None:
        await response.background()


async def _local(
    state: ServerState,
    version: ModelVersion,
    path: str,
    body: dict[str, Any],
    account: Accounting,
    request: Request,
    serving: routing.Serving,
) -> Response:
    chat = path.endswith("/chat/completions")
    can = state.directory.capabilities(version)
    if not chat and body.get("echo"):  # prompt scoring: an engine of its own
        return await echo.score(state, version, body, account)
    embeddings = path.endswith("/embeddings")
    wanted = Capability.EMBEDDINGS if embeddings else (
        Capability.CHAT if chat else Capability.COMPLETION)  # fmt: skip
    preset = state.directory.preset(version)
    if preset is not None and not embeddings:  # its system prompt, messages, parameters
        body = preset.apply(body, chat=chat)
    spec = routing.engine_spec(state, version, wanted, serving.context)
    check_fits(body, max(1, spec.context // max(1, spec.parallel)), spec.name)
    body["model"] = spec.name
    body.pop("metadata", None)
    body.pop("lora", None)  # which adapter applies is the model's name, never the client's
    if spec.adapters:
        body.update(spec.selection(version.digest))
    keep_alive = serving.keep_alive
    if chat and body.get("tools") and not can.native_tools:
        return await _generic_tools(state, spec, body, account, request, keep_alive)
    if int(body.get("n") or 1) > 1 and not body.get("stream") and not can.native_n:
        return await _fan_out(state, spec, path, body, account, request)
    stack = contextlib.AsyncExitStack()
    try:
        engine = await stack.enter_async_context(state.pool.use(spec, keep_alive))
    except BaseException:
        await stack.aclose()
        raise
    url = engine.base_url + path
    # An engine shared by a base and its adapters names itself in its answers: the client is
    # told the model it asked for.
    asked, named = str(version.reference), body["model"]
    rename = None if asked == named else (
        f'"model":"{named}"'.encode(), f'"model":"{asked}"'.encode())  # fmt: skip
    return await _send(lambda: EngineStream.open(url, body), bool(body.get("stream")), account,
                       spec.name, stack, request, rename)  # fmt: skip


async def _remote(
    state: ServerState,
    remote: Remote,
    path: str,
    body: dict[str, Any],
    account: Accounting,
    request: Request,
) -> Response:
    """Pass a request to a remote OpenAI-compatible model (its key from its variable)."""
    upstream_body = {k: v for k, v in body.items() if k != "metadata"}
    upstream_body["model"] = remote.upstream_model
    headers = {}
    secret = secret_from_env(remote.api_key_env)
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    url = remote.base_url + path.removeprefix("/v1")
    client = state.remote_client

    async def open_upstream() -> _HTTPXStream:
        request = client.build_request("POST", url, json=upstream_body, headers=headers)
        return _HTTPXStream(await client.send(request, stream=True))

    response = await _send(open_upstream, bool(body.get("stream")), account, remote.name,
                           contextlib.AsyncExitStack(), request)  # fmt: skip
    if response.status_code in (401, 403):  # the depot's credentials, not the client's
        await _discard(response)
        where = f" (check ${remote.api_key_env})" if remote.api_key_env else ""
        message = f"the remote model {remote.name} refused the depot's credentials{where}"
        return JSONResponse(error_body(message, "server_error", "upstream_auth"), 502)
    return response


class _HTTPXStream:
    """An httpx streamed response with the small interface `EngineStream` has."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code

    async def read(self) -> bytes:
        return await self.response.aread()

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.aiter_raw()

    async def aclose(self) -> None:
        await self.response.aclose()


async def _send(
    open_upstream: Callable[[], Awaitable[EngineStream | _HTTPXStream]],
    stream: bool,
    account: Accounting,
    name: str,
    stack: contextlib.AsyncExitStack,
    request: Request | None = None,
    rename: tuple[bytes, bytes] | None = None,
) -> Response:
    """Open the upstream answer and hand it back, relaying a stream as it comes (with the
    model's name replaced when `rename` says so); `stack`
    holds what must stay open while it streams (the engine, the upstream connection). A client
    that leaves before a whole answer is ready closes the upstream connection, which stops the
    engine's work on it."""
    try:
        if not stream:
            whole = await _unless_gone(request, _whole(open_upstream, stack))
            await stack.aclose()
            if whole is None:  # the client left: closing the connection stopped the engine
                return _gone(account)
            status, content = whole
            if rename is not None:
                content = content.replace(*rename)
            if status == 200:
                account.read_body(json.loads(content))
            return Response(content, status, media_type="application/json")
        upstream = await open_upstream()
        stack.push_async_callback(upstream.aclose)
        if upstream.status_code != 200:
            content = await upstream.read()
            await stack.aclose()
            return Response(content, upstream.status_code, media_type="application/json")
    except (httpx.HTTPError, RelayError) as exc:
        await stack.aclose()
        return engine_failed(name, exc)
    except BaseException:
        await stack.aclose()
        raise
    return StreamingResponse(
        _relay(upstream.chunks(), stack, name, account, rename),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


def _gone(account: Accounting) -> Response:
    """The answer to a client that left (nobody reads it; the log and the usage do)."""
    account.status = 499
    return Response(status_code=499)


async def _whole(
    open_upstream: Callable[[], Awaitable[EngineStream | _HTTPXStream]],
    stack: contextlib.AsyncExitStack,
) -> tuple[int, bytes]:
    upstream = await open_upstream()
    stack.push_async_callback(upstream.aclose)
    return upstream.status_code, await upstream.read()


async def _unless_gone(request: Request | None, work: Awaitable[_T]) -> _T | None:
    """`work`'s result, or None (with `work` cancelled) as soon as the client has gone."""
    task = asyncio.ensure_future(work)
    if request is None:
        return await task
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return None
    except BaseException:
        task.cancel()
        raise


async def _fan_out(state: ServerState, spec: EngineSpec, path: str, body: dict[str, Any],
                   account: Accounting, request: Request) -> Response:  # fmt: skip
    """`n` choices as `n` requests the engine decodes together, so each choice's tokens are
    counted in `usage` (the engine's own `n` reports only the first); all of them cancelled
    (their connections closed, which stops the engine) as soon as the client leaves."""
    n = int(body["n"])
    seed = body.get("seed")
    bodies = [
        {**body, "n": 1, **({"seed": seed + i} if isinstance(seed, int) else {})} for i in range(n)
    ]

    async def ask_all() -> list[httpx.Response]:
        async with state.pool.use(spec) as engine:
            return await asyncio.gather(
                *(state.client.post(engine.base_url + path, json=b) for b in bodies)
            )

    try:
        replies = await _unless_gone(request, ask_all())
    except httpx.HTTPError as exc:
        return engine_failed(spec.name, exc)
    if replies is None:
        return _gone(account)
    failed = next((r for r in replies if r.status_code != 200), None)
    if failed is not None:
        return Response(failed.content, failed.status_code, media_type="application/json")
    answers = [r.json() for r in replies]
    merged = answers[0]
    merged["choices"] = [{**a["choices"][0], "index": i} for i, a in enumerate(answers)]
    usage = merged.get("usage") or {}
    for key in ("completion_tokens", "total_tokens"):
        usage[key] = sum((a.get("usage") or {}).get(key, 0) for a in answers)
    usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage["completion_tokens"]
    account.read_body({"usage": usage})
    return JSONResponse(merged)


async def _generic_tools(state: ServerState, spec: EngineSpec, body: dict[str, Any],
                         account: Accounting, request: Request,
                         keep_alive: float | None = None) -> Response:  # fmt: skip
    """Tool calling through a JSON schema, for templates without tools (see `tools`)."""

    async def ask() -> httpx.Response:
        async with state.pool.use(spec, keep_alive) as engine:
            return await state.client.post(
                f"{engine.base_url}/v1/chat/completions", json=tools.encode_request(body)
            )

    try:
        upstream = await _unless_gone(request, ask())
    except httpx.HTTPError as exc:
        return engine_failed(spec.name, exc)
    if upstream is None:
        return _gone(account)
    if upstream.status_code != 200:
        return Response(upstream.content, upstream.status_code, media_type="application/json")
    answer = tools.decode_answer(upstream.json())
    account.read_body(answer)
    if body.get("stream"):
        return StreamingResponse(tools.answer_chunks(answer), media_type="text/event-stream")
    return JSONResponse(answer)


async def _relay(
    chunks: AsyncIterator[bytes],
    stack: contextlib.AsyncExitStack,
    name: str,
    account: Accounting,
    rename: tuple[bytes, bytes] | None = None,
) -> AsyncIterator[bytes]:
    """Pass an event stream through; if the engine dies mid-stream, end this client's stream
    with an error event (other clients and the server carry on). The engine writes each event
    in one chunk, so `rename` finds the model's name whole."""
    try:
        async for chunk in chunks:
            if rename is not None:
                chunk = chunk.replace(*rename)
            account.chunk(chunk)
            yield chunk
    except (httpx.HTTPError, RelayError) as exc:
        error = error_body(f"{name}: the engine failed mid-stream ({exc!r})", "server_error",
                           "engine_failed")  # fmt: skip
        yield f"data: {json.dumps(error)}\n\n".encode()
        account.status = 503
    finally:
        # Here, not after the loop: a client that hangs up after the last event cancels the
        # relay, and its usage must still be counted.
        account.end_of_stream()
        await stack.aclose()
