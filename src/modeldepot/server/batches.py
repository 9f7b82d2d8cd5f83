"""OpenAI's Batch API on the depot's server, the way vLLM's `run-batch` and OpenAI's batch
endpoint work: `POST /v1/files` (purpose `batch`, a JSONL of requests), `POST /v1/batches`
(run it), `GET /v1/batches/{id}` (progress), `GET /v1/files/{id}/content` (the results),
`POST /v1/batches/{id}/cancel`, `GET /v1/batches`.

Every line is checked before a batch is accepted (a bad one is named). Each request is
answered by the API exactly as if the key that created the batch had sent it (scope, quotas,
routing, accounting); results and errors are files like the input, their bytes blobs.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest

from modeldepot import jsonl
from modeldepot.errors import DepotError, FormatError, PackageNotInstalled, UnsafePath
from modeldepot.paths import check_relpath
from modeldepot.registry import schema as t
from modeldepot.registry.keys import ApiKey
from modeldepot.server import routing
from modeldepot.server.auth import Caller
from modeldepot.server.errors import APIError, depot_error_response, error_body
from modeldepot.server.requests import MAX_BODY, read_form, read_object
from modeldepot.server.state import ServerState

__all__ = ["ENDPOINTS", "BatchLine", "check_batch", "router", "run_lines", "run_on_ray", "sender"]

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
"""Largest batch input file; an upload past it (with `FORM_SLACK` for the form around it) is
refused with 413 as it arrives, never stored."""
FORM_SLACK = 64 * 1024
router = APIRouter(prefix="/v1")
log = logging.getLogger(__name__)

BatchLine = dict[str, Any]
Send = Callable[[str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]


def check_batch(data: bytes, endpoint: str | None = None) -> list[BatchLine]:
    """The requests of a batch input file (FormatError naming the first bad line): at most
    `MAX_BYTES`, each line at most `MAX_BODY` bytes (the largest request the API takes) and
    nested at most 64 levels."""
    if len(data) > MAX_BYTES:
        raise FormatError(f"a batch file holds at most {MAX_BYTES // 2**20} MiB")
    lines: list[BatchLine] = []
    seen: set[str] = set()
    for read in jsonl.read_lines(io.BytesIO(data), max_bytes=MAX_BODY):
        where = f"line {read.number}"
        if read.problem is not None:
            raise FormatError(f"{where}: {read.problem}")
        line = read.value
        if not isinstance(line, dict):
            raise FormatError(f"{where}: a JSON object")
        custom = line.get("custom_id")
        if not isinstance(custom, str) or not custom:
            raise FormatError(f"{where}: custom_id: a non-empty string")
        if custom in seen:
            raise FormatError(f"{where}: custom_id {custom!r} appears twice")
        seen.add(custom)
        if line.get("method") != "POST":
            raise FormatError(f"{where}: method: POST")
        url = line.get("url")
        if url not in ENDPOINTS:
            raise FormatError(f"{where}: url: one of {', '.join(ENDPOINTS)}")
        if endpoint is not None and url != endpoint:
            raise FormatError(f"{where}: url {url} is not the batch's endpoint {endpoint}")
        body = line.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise FormatError(f"{where}: body: an object with a model")
        if body.get("stream"):
            raise FormatError(f"{where}: body: a batch request cannot stream")
        lines.append(line)
        if len(lines) > MAX_LINES:
            raise FormatError(f"a batch holds at most {MAX_LINES} requests")
    if not lines:
        raise FormatError("the batch file holds no requests")
    return lines


async def run_lines(lines: list[BatchLine], send: Send, concurrency: int = 8,
                    cancelled: Callable[[], bool] | None = None,
                    done: Callable[[bool], None] | None = None, label: str = "batch",
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """Send every line (at most `concurrency` at a time); the output and error lines, in the
    input's order, in OpenAI's batch output format. Each failed line is logged with its reason
    (`label` names the batch)."""
    gate = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any] | None] = [None] * len(lines)

    async def one(i: int, line: BatchLine) -> None:
        async with gate:
            if cancelled is not None and cancelled():
                results[i] = _line(
                    line, None, {"code": "batch_cancelled", "message": "the batch was cancelled"}
                )
            else:
                status, body = await send(line["url"], dict(line["body"]))
                error = None if status == 200 else body.get("error") or {"message": str(body)}
                results[i] = _line(line, {"status_code": status, "body": body}, error)
            failed = results[i]["error"]  # type: ignore[index]
            if failed is not None:
                reason = failed.get("message", failed) if isinstance(failed, dict) else failed
                log.warning("%s: line %r failed: %r", label, line["custom_id"][:100],
                            str(reason)[:300])  # fmt: skip
            if done is not None:
                done(failed is None)

    await asyncio.gather(*(one(i, line) for i, line in enumerate(lines)))
    final = [r for r in results if r is not None]
    return ([r for r in final if r["error"] is None], [r for r in final if r["error"] is not None])


def _line(line: BatchLine, response: dict[str, Any] | None,
          error: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    if response is not None:
        response = {**response, "request_id": f"req_{secrets.token_hex(12)}"}
    return {"id": f"batch_req_{secrets.token_hex(12)}", "custom_id": line["custom_id"],
            "response": response, "error": error}  # fmt: skip


def sender(client: Any) -> Send:
    """Batch lines sent through an HTTP client of the depot's API (status and JSON body)."""

    async def send(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reply = await client.post(url, json=body)
        try:
            return reply.status_code, dict(reply.json())
        except ValueError:
            return reply.status_code, {"error": {"message": reply.text[:200]}}

    return send


def _send_shard(
    server: str, api_key: str | None, lines: list[BatchLine], concurrency: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A shard of a batch, in a Ray worker: sent to the depot server at `server`."""
    from modeldepot.connection import over_http

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with over_http(server, api_key) as client:
            return await run_lines(lines, sender(client), concurrency)

    return asyncio.run(main())


def run_on_ray(address: str, server: str, api_key: str | None, lines: list[BatchLine],
               concurrency: int, workers: int = 2,
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """A batch spread over a Ray cluster in `workers` shards, asking the depot server at
    `server`; the results in the input's order."""
    try:
        import ray
    except ImportError:
        raise PackageNotInstalled(
            "batches on Ray need the ray extra: pip install 'modeldepot[ray]'"
        ) from None
    size = -(-len(lines) // max(1, min(workers, len(lines))))
    parts = [lines[i : i + size] for i in range(0, len(lines), size)]
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=0.1)(_send_shard)
        found = ray.get([remote.remote(server, api_key, part, concurrency) for part in parts])
    finally:
        ray.shutdown()
    outputs = [row for ok, _ in found for row in ok]
    errors = [row for _, bad in found for row in bad]
    return outputs, errors


# -- the server's side ------------------------------------------------------------------------


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.depot
    return state


def _file_object(row: Any) -> dict[str, Any]:
    return {"id": row.id, "object": "file", "bytes": row.bytes, "created_at": int(row.created_at),
            "filename": row.filename, "purpose": row.purpose}  # fmt: skip


def _batch_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "object": "batch", "endpoint": row.endpoint,
        "input_file_id": row.input_file_id, "completion_window": "24h", "status": row.status,
        "output_file_id": row.output_file_id, "error_file_id": row.error_file_id,
        "created_at": int(row.created_at),
        "completed_at": int(row.completed_at) if row.completed_at else None,
        "request_counts": {"total": row.total, "completed": row.completed, "failed": row.failed},
        "metadata": row.metadata,
    }  # fmt: skip


def _store_file(state: ServerState, key: ApiKey, data: bytes, filename: str,
                purpose: str) -> dict[str, Any]:  # fmt: skip
    blob = state.depot.store.put_bytes(data)
    file_id = f"file-{secrets.token_hex(12)}"
    with state.depot.registry.engine.begin() as conn:
        conn.execute(t.api_files.insert().values(
            id=file_id, key=key.name, purpose=purpose, filename=filename, digest=blob.digest,
            bytes=len(data), created_at=time.time()))  # fmt: skip
        row = conn.execute(sa.select(t.api_files).where(t.api_files.c.id == file_id)).one()
    return _file_object(row)


def _own(state: ServerState, table: sa.Table, item_id: str, key: ApiKey, what: str) -> Any:
    with state.depot.registry.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == item_id)).first()
    if row is None or (row.key != key.name and not key.admin):
        raise APIError(404, f"no {what} {item_id!r}", "invalid_request_error", "not_found")
    return row


def _bad(message: str, param: str) -> APIError:
    return APIError(400, message, "invalid_request_error", "invalid_value", param)


@router.post("/files")
async def upload_file(request: Request, key: Caller) -> Any:
    """A batch input file (multipart: `file`, `purpose`), read only once the key is known."""
    state = _state(request)
    form = await read_form(request, MAX_BYTES + FORM_SLACK, files=1)
    try:
        purpose = form.get("purpose") or request.query_params.get("purpose") or "batch"
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise _bad("file: the batch's JSONL file is required", "file")
        data = await file.read(MAX_BYTES + 1)
        filename = (file.filename or "batch.jsonl")[:200]
    finally:
        await form.close()
    if purpose != "batch":
        raise _bad("purpose: this server keeps files for batches only", "purpose")
    try:
        check_relpath(filename, "file name")
        check_batch(data)
    except UnsafePath as exc:
        raise _bad(str(exc), "file") from None
    except FormatError as exc:
        raise _bad(f"{filename}: {exc}", "file") from None
    return await asyncio.to_thread(_store_file, state, key, data, filename, purpose)


@router.get("/files/{file_id}")
async def get_file(request: Request, file_id: str, key: Caller) -> Any:
    state = _state(request)
    return _file_object(_own(state, t.api_files, file_id, key, "file"))


@router.get("/files/{file_id}/content")
async def file_content(request: Request, file_id: str, key: Caller) -> Response:
    state = _state(request)
    row = _own(state, t.api_files, file_id, key, "file")
    data = await asyncio.to_thread(state.depot.store.read_bytes, row.digest)
    return Response(data, media_type="application/jsonl")


@router.post("/batches")
async def create_batch(request: Request, key: Caller) -> Any:
    state = _state(request)
    body = await read_object(request)
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise _bad(f"endpoint: one of {', '.join(ENDPOINTS)}", "endpoint")
    metadata = body.get("metadata")
    if metadata is not None and not _metadata_ok(metadata):
        raise _bad("metadata: at most 16 pairs of strings (keys up to 64 characters, values "
                   "up to 512)", "metadata")  # fmt: skip
    source = _own(state, t.api_files, str(body.get("input_file_id"))[:100], key, "file")
    data = await asyncio.to_thread(state.depot.store.read_bytes, source.digest)
    try:
        lines = check_batch(data, endpoint)
    except FormatError as exc:
        raise _bad(str(exc), "input_file_id") from None
    for model in sorted({line["body"]["model"] for line in lines}):
        try:  # the whole batch is refused if one line reaches a model out of the key's scope
            await routing.targets_for(state, model, private=key.private, key=key)
        except APIError as exc:
            if exc.code == "model_not_allowed":
                raise
            # any other refusal (no such model, ...) is that line's answer when it runs
    batch_id = f"batch_{secrets.token_hex(12)}"
    with state.depot.registry.engine.begin() as conn:
        conn.execute(t.batches.insert().values(
            id=batch_id, key=key.name, endpoint=endpoint, input_file_id=source.id,
            status="in_progress", total=len(lines), completed=0, failed=0,
            metadata=metadata, created_at=time.time()))  # fmt: skip
    task = asyncio.create_task(_run(request.app, state, key, batch_id, lines))
    state.background.add(task)
    task.add_done_callback(state.background.discard)
    return _batch_object(_own(state, t.batches, batch_id, key, "batch"))


@router.get("/batches")
async def list_batches(request: Request, key: Caller) -> Any:
    state = _state(request)
    with state.depot.registry.engine.connect() as conn:
        rows = conn.execute(sa.select(t.batches).order_by(t.batches.c.created_at.desc())).all()
    data = [_batch_object(r) for r in rows if r.key == key.name or key.admin]
    return {"object": "list", "data": data, "has_more": False}


@router.get("/batches/{batch_id}")
async def get_batch(request: Request, batch_id: str, key: Caller) -> Any:
    state = _state(request)
    return _batch_object(_own(state, t.batches, batch_id, key, "batch"))


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str, key: Caller) -> Any:
    state = _state(request)
    row = _own(state, t.batches, batch_id, key, "batch")
    if row.status in ("in_progress", "validating"):
        _update(state, batch_id, status="cancelling")
    return _batch_object(_own(state, t.batches, batch_id, key, "batch"))


def _metadata_ok(metadata: Any) -> bool:
    """OpenAI's rule for a batch's metadata."""
    return (
        isinstance(metadata, dict)
        and len(metadata) <= 16
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items()
        )
    )


def _update(state: ServerState, batch_id: str, **values: Any) -> None:
    with state.depot.registry.engine.begin() as conn:
        conn.execute(t.batches.update().where(t.batches.c.id == batch_id).values(**values))


async def _run(app: Any, state: ServerState, key: ApiKey, batch_id: str,
               lines: list[BatchLine]) -> None:  # fmt: skip
    """Answer every line as the batch's key would be answered, then store the results."""
    from modeldepot.server.openai import forward_as

    counts = {"completed": 0, "failed": 0}

    async def send(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        current = await state.gate.still_valid(key)  # revoked or rescoped since: it counts now
        if current is None:
            message = f"the API key {key.name!r} that created this batch has been revoked"
            return 401, error_body(message, "invalid_request_error", "invalid_api_key")
        payload = json.dumps(body).encode()
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.Event().wait()  # never disconnects
            raise AssertionError("unreachable")

        scope = {"type": "http", "method": "POST", "path": url, "raw_path": url.encode(),
                 "query_string": b"", "headers": [(b"content-type", b"application/json")],
                 "app": app, "client": ("batch", 0), "server": ("depot", 0),
                 "scheme": "http", "root_path": ""}  # fmt: skip
        try:
            response = await forward_as(StarletteRequest(scope, receive), url, current)
        except APIError as exc:
            return exc.status, error_body(str(exc), exc.kind, exc.code, exc.param)
        except DepotError as exc:
            response = depot_error_response(exc)
        content = bytes(response.body) if hasattr(response, "body") else b""
        if response.background is not None:
            await response.background()
        try:
            return response.status_code, json.loads(content or b"{}")
        except ValueError:
            return response.status_code, {
                "error": {"message": content[:200].decode("utf-8", "replace")}
            }

    def cancelled() -> bool:
        with state.depot.registry.engine.connect() as conn:
            status = conn.scalar(sa.select(t.batches.c.status).where(t.batches.c.id == batch_id))
        return status == "cancelling"

    def done(ok: bool) -> None:
        counts["completed" if ok else "failed"] += 1
        _update(state, batch_id, **counts)

    try:
        outputs, errors = await run_lines(lines, send, concurrency=state.settings.parallel,
                                          cancelled=cancelled, done=done,
                                          label=f"{batch_id} ({key.name})")  # fmt: skip
        final = "cancelled" if cancelled() else "completed"
        output_id = error_id = None
        if outputs:
            output_id = (await asyncio.to_thread(
                _store_file, state, key, _jsonl(outputs), f"{batch_id}_output.jsonl",
                "batch_output"))["id"]  # fmt: skip
        if errors:
            error_id = (await asyncio.to_thread(
                _store_file, state, key, _jsonl(errors), f"{batch_id}_errors.jsonl",
                "batch_output"))["id"]  # fmt: skip
        _update(state, batch_id, status=final, output_file_id=output_id, error_file_id=error_id,
                completed_at=time.time(), **counts)  # fmt: skip
    except Exception:
        log.exception("batch %s failed", batch_id)
        _update(state, batch_id, status="failed", completed_at=time.time())


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)
