"""Errors as Ollama's clients read them: `{"error": "<message>"}` with the HTTP status
(`ollama.ResponseError(error, status_code)`), and in a stream a last line `{"error": ...}`.

Every Ollama route is an `OllamaRoute`: whatever the depot raises while answering it (a key
refused by the `Caller` dependency, a model out of scope or quarantined, a bad body, a
`DepotError`) is rendered in that shape instead of OpenAI's, with the same status."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from modeldepot.errors import DepotError
from modeldepot.server.errors import RETRY_AFTER, APIError, depot_error_response

__all__ = ["OllamaRoute", "error_line", "ollama_error", "reshape"]

log = logging.getLogger(__name__)


def ollama_error(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    headers = {"Retry-After": retry_after or RETRY_AFTER} if status == 429 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def error_line(message: str) -> bytes:
    """The last line of a stream that failed after it started (the status stays 200)."""
    return (json.dumps({"error": message}) + "\n").encode()


def reshape(response: Response) -> Response:
    """An error answer in OpenAI's shape (`{"error": {"message": ...}}`), in Ollama's."""
    body = getattr(response, "body", b"")
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message:
        message = bytes(body).decode(errors="replace")[:500] or f"HTTP {response.status_code}"
    return ollama_error(response.status_code, message, response.headers.get("retry-after"))


class OllamaRoute(APIRoute):
    """A route whose errors, its dependencies' included, are in Ollama's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except APIError as exc:
                return ollama_error(exc.status, str(exc), exc.retry_after)
            except DepotError as exc:
                return reshape(depot_error_response(exc))
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                return ollama_error(400, str(first.get("msg", "invalid request")))

        return answer
