"""Errors in OpenAI's shape: `{"error": {"message", "type", "code"}}` with the right status."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from modeldepot.errors import DepotError, NotFound
from modeldepot.runtime.pool import QueueFull
from modeldepot.runtime.process import ModelUnavailable

__all__ = [
    "APIError",
    "api_error_handler",
    "depot_error_handler",
    "depot_error_response",
    "engine_failed",
    "error_body",
]


def error_body(message: str, kind: str, code: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code

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
    return JSONResponse(error_body(str(exc), exc.kind, exc.code), status_code=exc.status)


def depot_error_response(exc: DepotError) -> JSONResponse:
    """A DepotError as the HTTP answer a client of the OpenAI API expects."""
    if isinstance(exc, ModelUnavailable):
        status, kind, code = 503, "server_error", "model_unavailable"
    elif isinstance(exc, QueueFull):
        status, kind, code = 429, "rate_limit_error", "queue_full"
    elif isinstance(exc, NotFound):
        status, kind, code = 404, "invalid_request_error", "not_found"
    else:
        status, kind, code = 400, "invalid_request_error", None
    return JSONResponse(error_body(str(exc), kind, code), status_code=status)


async def depot_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DepotError)
    return depot_error_response(exc)


def engine_failed(name: str, exc: Exception) -> JSONResponse:
    message = f"{name}: no answer ({exc!r})"
    return JSONResponse(error_body(message, "server_error", "engine_failed"), status_code=503)
