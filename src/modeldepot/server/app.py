"""`create_app(settings)`: the depot's HTTP server (FastAPI)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modeldepot import __version__
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.registry.keys import KeyStore, keys_from_env
from modeldepot.runtime.pool import RunnerPool
from modeldepot.runtime.runner import (
    Runner,
    RunnerSpec,
    engine_client_limits,
    find_llama_server,
)
from modeldepot.server import native, openai
from modeldepot.server.auth import Gatekeeper
from modeldepot.server.directory import Directory
from modeldepot.server.errors import APIError, api_error_handler, depot_error_handler
from modeldepot.server.metrics import Metrics
from modeldepot.server.state import ServerState

__all__ = ["create_app"]


def _yield_to_engines() -> None:
    """Run the server's event loop (which relays every streamed token) under SCHED_BATCH: a
    relay that wakes up then waits for a scheduling point instead of preempting an engine
    thread in the middle of a decode step, which on a machine whose cores the engine uses
    stalls the whole step. Engines are started back under the normal policy (runner.py)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def create_app(settings: Settings) -> FastAPI:
    depot = Depot(settings)
    log_dir = settings.home / "logs"

    def launch(spec: RunnerSpec) -> Runner:
        return Runner.start(spec, find_llama_server(settings), log_dir)

    def spent_today(key: str) -> list[tuple[float, int]]:
        since = datetime.now(UTC) - timedelta(days=1)
        return [
            (
                e.at.timestamp(),
                e.details.get("prompt_tokens", 0) + e.details.get("completion_tokens", 0),
            )
            for e in depot.registry.events(since=since, action="request")
            if e.details.get("key") == key
        ]

    pool = RunnerPool(
        launch,
        budget=settings.memory_budget,
        keep_alive=settings.keep_alive,
        queue_limit=settings.queue_limit,
    )
    metrics = Metrics(pool)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _yield_to_engines()
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=10), limits=engine_client_limits()
        )
        remote_client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10))
        gate = Gatekeeper(
            keys_from_env(settings.api_keys), KeyStore(depot.registry.engine), spent_today
        )
        app.state.depot = ServerState(
            settings, depot, pool, client, remote_client, gate, metrics, Directory(depot)
        )
        reaper = asyncio.create_task(pool.run_reaper())
        try:
            yield
        finally:
            reaper.cancel()
            await pool.close()
            await client.aclose()
            await remote_client.aclose()
            depot.close()

    app = FastAPI(title="modeldepot", version=__version__, lifespan=lifespan)
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(DepotError, depot_error_handler)
    app.include_router(openai.router)
    app.include_router(native.router)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "loaded": [vars(s) for s in pool.status()]}

    return app
