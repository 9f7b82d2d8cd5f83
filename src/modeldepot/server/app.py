"""`create_app(settings)`: the depot's HTTP server (FastAPI).

On start it admits versions an interrupted import left pending (when no import is running),
and, when told where it listens, announces itself in `DEPOT_HOME/serve.json` (readable by the
owner only) with a local key, so that `depot run` on the same home talks to it instead of
loading a second copy of a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from modeldepot._version import __version__
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.monitor import Metrics
from modeldepot.registry.keys import keys_from_env
from modeldepot.registry.quotas import QuotaLedger
from modeldepot.runtime import EnginePool, Engines, StoredFiles
from modeldepot.runtime.process import engine_client_limits
from modeldepot.server import batches, hf, native, ollama, openai
from modeldepot.server.access import RequestLog
from modeldepot.server.auth import Caller, Gatekeeper, MaybeCaller
from modeldepot.server.directory import Directory
from modeldepot.server.errors import (
    APIError,
    api_error_handler,
    depot_error_handler,
    http_error_handler,
    validation_error_handler,
)
from modeldepot.server.hosts import Hosts
from modeldepot.server.state import ServerState
from modeldepot.server.ui import governance, pages

__all__ = ["create_app"]


def _yield_to_engines() -> None:
    """Run the server's event loop (which relays every streamed token) under SCHED_BATCH: a
    relay that wakes up then waits for a scheduling point instead of preempting an engine
    thread in the middle of a decode step, which on a machine whose cores the engine uses
    stalls the whole step. Engines are started back under the normal policy (process.py)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _announce(path: Path, url: str, local_key: str) -> None:
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "pid": os.getpid(), "key": local_key}, f)
    partial.rename(path)


def _withdraw(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


async def _anchor_every(depot: Depot, seconds: float) -> None:
    """Checkpoint the audit chain while the server runs (governance actions through it)."""
    while True:
        await asyncio.sleep(seconds)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(depot.anchors.record, depot.audit)


def create_app(
    settings: Settings,
    *,
    engines: Engines | None = None,
    listen: str | None = None,
    bind: tuple[str, int] | None = None,
) -> FastAPI:
    """The server over the depot at `settings`. `engines`: the engine plugins (default: the
    `modeldepot.engines` entry points). `listen`: the base URL it is reached at, to announce.
    `bind`: the (host, port) it listens on, which requests must name when no key exists
    (None: reached in-process, or by a loopback name)."""
    depot = Depot(settings)
    engines = engines or Engines.from_entry_points(settings)
    pool = EnginePool(
        engines.launcher(settings, settings.layout.logs),
        budget=settings.memory_budget,
        keep_alive=settings.keep_alive,
        queue_limit=settings.queue_limit,
    )
    metrics = Metrics(pool)
    local_key = f"md-local-{secrets.token_urlsafe(24)}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _yield_to_engines()
        await asyncio.to_thread(depot.admission.repair)
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=10), limits=engine_client_limits()
        )
        remote_client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10))
        gate = Gatekeeper(keys_from_env(settings.api_keys), depot.keys,
                          QuotaLedger(depot.registry.engine), local_secret=local_key,
                          hosts=Hosts.for_server(bind, settings.allowed_hosts))  # fmt: skip
        app.state.depot = ServerState(
            settings, depot, engines, StoredFiles(depot.store, settings.home), pool, client,
            remote_client, gate, metrics, Directory(depot, engines),
        )  # fmt: skip
        announcement = settings.layout.announcement
        if listen is not None:
            _announce(announcement, listen, local_key)
        reaper = asyncio.create_task(pool.run_reaper())
        anchoring = asyncio.create_task(_anchor_every(depot, 60.0))
        try:
            yield
        finally:
            if listen is not None:
                _withdraw(announcement)
            reaper.cancel()
            anchoring.cancel()
            await pool.close()
            await client.aclose()
            await remote_client.aclose()
            depot.close()

    # No open /docs: the schema is served at /openapi.json to callers the API would admit.
    app = FastAPI(title="modeldepot", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)  # fmt: skip
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(hf.HubError, hf.hub_error_handler)
    app.add_exception_handler(DepotError, depot_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(pages.SignIn, pages.signin_handler)
    app.add_exception_handler(governance.Forbidden, governance.forbidden_handler)
    app.add_middleware(RequestLog)
    app.include_router(openai.router)
    app.include_router(native.router)
    app.include_router(hf.router)
    app.include_router(hf.xet_router)
    app.include_router(native.legacy)
    app.include_router(ollama.router)
    app.include_router(batches.router)
    app.include_router(pages.router)
    app.include_router(governance.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")

    @app.get("/metrics")
    async def prometheus(key: Caller) -> Response:
        """Prometheus metrics, to any caller the API would admit (any valid key)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(key: Caller) -> dict[str, Any]:
        return app.openapi()

    @app.get("/health")
    async def health(key: MaybeCaller) -> dict[str, object]:
        """Up or not, to anyone; what is loaded (engine PIDs, memory), to callers the API
        would admit."""
        if key is None:
            return {"status": "ok"}
        return {"status": "ok", "loaded": [vars(s) for s in pool.status()]}

    return app
