"""One log line per request, as uvicorn's access log writes it but with what the depot knows:

    127.0.0.1 "POST /v1/chat/completions" 200 41.2 ms key=team model=smollm2:latest

written once the response has been sent (a stream's whole duration), with the key that was
authenticated and the model that answered (`note` records them while the request runs). An
exception that escapes a route is answered here: 500 in OpenAI's shape, its traceback logged
(`errors.unexpected_error_response`), never passed on to the ASGI server. A grant in a path
(the Xet URLs' `/xet/xorbs/{grant}/...`, a bearer capability) is written as `<grant>`."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modeldepot.server.errors import unexpected_error_response

__all__ = ["RequestLog", "note"]

log = logging.getLogger(__name__)
_NOTES = "modeldepot.notes"
_GRANT = re.compile(r"(?<=/xet/xorbs/)[^/?]+")


def note(connection: HTTPConnection, **fields: str) -> None:
    """Facts for this request's log line (`key`, `model`)."""
    notes: MutableMapping[str, str] = connection.scope.setdefault(_NOTES, {})
    notes.update(fields)


class RequestLog:
    """ASGI middleware: the request line, and the last word on unexpected exceptions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if status:  # the response had begun: nothing more can be said to the client
                log.error("a response broke off", exc_info=exc)
            else:
                status = 500
                await unexpected_error_response(exc)(scope, receive, send)
        finally:
            self._line(scope, status or 499, time.perf_counter() - started)

    @staticmethod
    def _line(scope: Scope, status: int, seconds: float) -> None:
        if not log.isEnabledFor(logging.INFO):  # nobody reads it: not even built
            return
        notes: dict[str, Any] = scope.get(_NOTES) or {}
        client = scope.get("client")
        path = _GRANT.sub("<grant>", scope.get("path", ""))
        query = scope.get("query_string", b"")
        target = f"{path}?{query.decode('latin-1')}" if query else path
        extra = "".join(f" {k}={_printable(v)}" for k, v in notes.items() if v)
        log.info('%s "%s %s" %d %.1f ms%s', client[0] if client else "-", scope.get("method"),
                 _printable(target), status, seconds * 1000, extra)  # fmt: skip


def _printable(text: str, limit: int = 300) -> str:
    """A client's text as one line of the log (control characters escaped, cut at `limit`)."""
    return "".join(
        "\\" + c if c in '"\\' else c if c.isprintable() else c.encode("unicode_escape").decode()
        for c in text[:limit]
    )
