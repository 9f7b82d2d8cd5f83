"""Errors in OpenAI's shape: `{"error": {"message", "type", "code"}}` with the right status."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modeldepot.errors import DepotError, IntegrityError, NotFound
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
    "validation_error_handler",
]


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
    """Starlette's own errors (unknown route, wrong method) in OpenAI's shape."""
    assert isinstance(exc, StarletteHTTPException)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    message = (f"no route {_request.method} {_request.url.path}" if exc.status_code in (404, 405)
               else str(exc.detail))  # fmt: skip
    return JSONResponse(error_body(message, kind, code), status_code=exc.status_code,
                        headers=_headers(exc.status_code))  # fmt: skip


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse(error_body(f"{where}: {first.get('msg', 'invalid request')}",
                                   "invalid_request_error", None), status_code=400)  # fmt: skip


def depot_error_response(exc: DepotError) -> JSONResponse:
    """A DepotError as the HTTP answer a client of the OpenAI API expects."""
    if isinstance(exc, ModelUnavailable):
        status, kind, code = 503, "server_error", "model_unavailable"
    elif isinstance(exc, QueueFull):
        status, kind, code = 429, "rate_limit_error", "queue_full"
    elif isinstance(exc, IntegrityError):
        status, kind, code = 500, "server_error", "stored_bytes_changed"
    elif isinstance(exc, NotFound):
        status, kind, code = 404, "invalid_request_error", "not_found"
    else:
        status, kind, code = 400, "invalid_request_error", None
    return JSONResponse(error_body(str(exc), kind, code), status_code=status,
                        headers=_headers(status))  # fmt: skip


async def depot_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DepotError)
    return depot_error_response(exc)


def engine_failed(name: str, exc: Exception) -> JSONResponse:
    message = f"{name}: no answer ({exc!r})"
    return JSONResponse(error_body(message, "server_error", "engine_failed"), status_code=503)
