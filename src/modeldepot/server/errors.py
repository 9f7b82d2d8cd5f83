"""Errors in OpenAI's shape: `{"error": {"message", "type", "code"}}` with the right status:
an `APIError`'s own, a `DepotError`'s class's `http_status`, 500 for anything unexpected (its
traceback logged, its message kept from the client, as a `DepotError`'s 500 message is)."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modeldepot.errors import ConflictError, DepotError, IntegrityError, NotFound, StoreLocked
from modeldepot.runtime.pool import QueueFull
from modeldepot.runtime.process import ModelUnavailable

__all__ = [
    "RETRY_AFTER",
    "APIError",
    "api_error_handler",
    "depot_error_handler",
    "depot_error_response",
    "engine_failed",
    "error_body",
    "http_error_handler",
    "unexpected_error_response",
    "validation_error_handler",
]

log = logging.getLogger(__name__)


RETRY_AFTER = "1"
"""Seconds a client refused with 429 should wait (sent on every 429)."""


def error_body(
    message: str, kind: str, code: str | None, param: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


def _headers(status: int) -> dict[str, str] | None:
    return {"Retry-After": RETRY_AFTER} if status == 429 else None


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        param: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.param = param
        self.retry_after = retry_after

    @classmethod
    def bad_request(cls, message: str, code: str | None = None) -> APIError:
        return cls(400, message, "invalid_request_error", code)

    @classmethod
    def model_not_found(cls, model: str) -> APIError:
        return cls(
            404,
            f"The model `{model}` does not exist; GET /v1/models lists the models served here",
            "invalid_request_error",
            "model_not_found",
        )


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    headers = _headers(exc.status)
    if headers and exc.retry_after:
        headers["Retry-After"] = exc.retry_after
    return JSONResponse(error_body(str(exc), exc.kind, exc.code, exc.param),
                        status_code=exc.status, headers=headers)  # fmt: skip


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route, wrong method) in OpenAI's shape, or under
    `/api/` (Ollama's API) in Ollama's: `{"error": "<message>"}`."""
    assert isinstance(exc, StarletteHTTPException)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = (f"no route {_request.method} {_request.url.path}" if exc.status_code in (404, 405)
               else str(exc.detail))  # fmt: skip
    if _request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=_headers(exc.status_code))  # fmt: skip
    return JSONResponse(error_body(message, kind, code), status_code=exc.status_code,
                        headers=_headers(exc.status_code))  # fmt: skip


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse(error_body(f"{where}: {first.get('msg', 'invalid request')}",
                                   "invalid_request_error", None), status_code=400)  # fmt: skip


_CODES: tuple[tuple[type[DepotError], str], ...] = (
    (ModelUnavailable, "model_unavailable"),
    (QueueFull, "queue_full"),
    (IntegrityError, "stored_bytes_changed"),
    (NotFound, "not_found"),
    (ConflictError, "conflict"),
    (StoreLocked, "store_locked"),
)


def _kind(status: int) -> str:
    if status >= 500:
        return "server_error"
    return {403: "permission_error", 429: "rate_limit_error"}.get(status, "invalid_request_error")


_KEPT_FROM_CLIENT = {
    "stored_bytes_changed": "stored bytes changed since they were admitted and are not served; "
    "the server's log says which",
}


def depot_error_response(exc: DepotError) -> JSONResponse:
    """A DepotError as the HTTP answer a client of the OpenAI API expects: its class's status.
    A 500's message (which may name the server's files) goes to the log only; the client is
    told what failed, not where."""
    status = exc.http_status
    code = next((c for cls, c in _CODES if isinstance(exc, cls)), None)
    message = str(exc)
    if status >= 500 and not isinstance(exc, ModelUnavailable | QueueFull):
        log.error("%s: %s", type(exc).__name__, exc)
    if status == 500:
        message = _KEPT_FROM_CLIENT.get(code or "", "the server failed to answer; its log says why")
    return JSONResponse(error_body(message, _kind(status), code), status_code=status,
                        headers=_headers(status))  # fmt: skip


def unexpected_error_response(exc: BaseException) -> JSONResponse:
    """An exception nobody raised on purpose: 500, its traceback in the log."""
    log.error("unexpected error while answering a request", exc_info=exc)
    return JSONResponse(error_body("the server failed to answer; its log says why",
                                   "server_error", "internal_error"), status_code=500)  # fmt: skip


async def depot_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DepotError)
    return depot_error_response(exc)


def engine_failed(name: str, exc: Exception) -> JSONResponse:
    message = f"{name}: no answer ({exc!r})"
    return JSONResponse(error_body(message, "server_error", "engine_failed"), status_code=503)
