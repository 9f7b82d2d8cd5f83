"""Connections to a depot server's HTTP API, for the code that asks it as a client
(evaluation, batches, their Ray workers). A `Connector` opens a client with the base URL and
credentials set; `over_http` is the one for a server already running. The server run inside
this process (`modeldepot.server.inprocess.in_process`) is handed in by the command line, so
nothing that asks a server imports it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx

__all__ = ["Connector", "over_http"]

Connector = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
"""Opens a client of the depot's HTTP API (base URL and credentials set)."""


@contextlib.asynccontextmanager
async def over_http(base_url: str, api_key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a depot server already running at `base_url`."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=None, headers=headers) as client:
        yield client
