"""The depot's server run inside this process, reached over ASGI: how `depot eval` asks
models without a `depot serve` running. An ephemeral key is the only one it accepts besides
the configured ones; its transport is marked in-process, so no Host needs to name it. A server
already running is reached with `modeldepot.connection.over_http`."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator

import httpx

from modeldepot.config import Settings
from modeldepot.connection import over_http
from modeldepot.server.app import create_app
from modeldepot.server.hosts import in_process_transport

__all__ = ["in_process", "over_http"]


def in_process(settings: Settings) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """A client of a server built from `settings`, started (and stopped) with the client."""
    return _in_process(settings)


@contextlib.asynccontextmanager
async def _in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    secret = secrets.token_urlsafe(24)
    keys = ",".join(k for k in (settings.api_keys, secret) if k)
    app = create_app(dataclasses.replace(settings, api_keys=keys))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=in_process_transport(app), base_url="http://depot", timeout=None,
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:  # fmt: skip
        yield client
