"""Each error answers with its class's HTTP status, in OpenAI's shape: an object store that is
down is the server's failure (503), never the client's; an exception nobody raised on purpose
is 500 with its traceback in the log, and no detail for the client; nor does a depot error's
500 give its message (which may name the server's files) to anyone but the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from modeldepot.config import Settings
from modeldepot.errors import (
    ConflictError,
    DepotError,
    FormatError,
    IntegrityError,
    InvalidReference,
    ModelNotFound,
    PackageNotInstalled,
    StoreLocked,
)
from modeldepot.runtime import ModelUnavailable, QueueFull
from modeldepot.store.s3 import StorageUnavailable
from servers import asgi_depot

RAISED: list[tuple[Exception, int, str]] = [
    (StorageUnavailable("s3://depot: cannot reach the object store"), 503, "server_error"),
    (DepotError("cannot reach the registry database"), 500, "server_error"),
    (IntegrityError("blob sha256:ab in /srv/depot/blobs has changed on disk"), 500, "server_error"),
    (StoreLocked("another process holds the store"), 503, "server_error"),
    (ModelUnavailable("the engine died"), 503, "server_error"),
    (QueueFull("16 requests in flight"), 429, "rate_limit_error"),
    (ConflictError("a key named x exists"), 409, "invalid_request_error"),
    (ModelNotFound("no model x"), 404, "invalid_request_error"),
    (PackageNotInstalled("pip install 'modeldepot[s3]'"), 501, "server_error"),
    (InvalidReference("'x y' is not a name"), 400, "invalid_request_error"),
    (FormatError("truncated"), 400, "invalid_request_error"),
]


def _raising(error: Exception) -> Callable[[], Awaitable[None]]:
    async def route() -> None:
        raise error

    return route


def test_each_error_class_answers_with_its_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="modeldepot.server")

    async def scenario() -> None:
        async with asgi_depot(Settings(home=tmp_path / "depot")) as (app, client):
            for i, (error, _, _) in enumerate(RAISED):
                app.get(f"/fails/{i}")(_raising(error))

            async def bug() -> None:
                raise KeyError("a secret detail")

            app.get("/bug")(bug)
            for i, (error, status, kind) in enumerate(RAISED):
                reply = await client.get(f"/fails/{i}")
                assert reply.status_code == status, (error, reply.text)
                body = reply.json()["error"]
                assert body["type"] == kind
                if status == 500:  # the server's own failure: what, never where (the log's)
                    assert str(error) not in reply.text and "/srv" not in reply.text
                    assert "log" in body["message"]
                else:
                    assert body["message"] == str(error)
            reply: httpx.Response = await client.get("/bug")
            assert reply.status_code == 500
            assert reply.json()["error"]["type"] == "server_error"
            assert "secret" not in reply.text  # its detail is for the log only

    asyncio.run(scenario())
    traced = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert traced, "the unexpected error left no traceback in the log"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cannot reach the object store" in logged  # the server's own failures are logged
    assert "cannot reach the registry database" in logged and "/srv/depot/blobs" in logged
