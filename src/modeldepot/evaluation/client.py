"""Asking models: any model the depot serves, local (through its runtime) or remote (through
its gateway), by running the depot's own HTTP app in this process and talking to it over
ASGI. Every response goes through the cache; requests run concurrently within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, InvalidReference, ModelNotFound
from modeldepot.evaluation.cache import ResponseCache, request_key
from modeldepot.registry.gateway import GatewayStore

__all__ = ["ModelRef", "Models", "RequestFailed"]


class RequestFailed(DepotError):
    """A model answered an evaluation request with an error."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    """As given on the command line."""
    identity: str
    """What results and cached responses are keyed by: the version's digest for a local
    model, `remote:NAME` for a remote one."""
    remote: bool
    label: str


def resolve_model(depot: Depot, name: str) -> ModelRef:
    gateway = GatewayStore(depot.registry.engine)
    remotes = {r.name: r for r in gateway.remotes()}
    if name in remotes:
        r = remotes[name]
        return ModelRef(name, f"remote:{r.name}", True, f"{r.name} ({r.upstream_model})")
    aliases = {a.name: a for a in gateway.aliases()}
    if name in aliases:
        return resolve_model(depot, aliases[name].targets[0])
    try:
        version = depot.show(name)
    except (ModelNotFound, InvalidReference):
        raise ModelNotFound(f"no model or remote named {name!r}") from None
    return ModelRef(name, version.digest, False, str(version.reference))


class Models:
    def __init__(self, settings: Settings, cache: ResponseCache, concurrency: int) -> None:
        self.secret = secrets.token_urlsafe(24)
        keys = ",".join(k for k in (settings.api_keys, self.secret) if k)
        self.settings = dataclasses.replace(settings, api_keys=keys)
        self.cache = cache
        self._gate = asyncio.Semaphore(concurrency)
        self._client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Models]:
        from modeldepot.server.app import create_app

        app = create_app(self.settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://depot", timeout=None,
                headers={"Authorization": f"Bearer {self.secret}"},
            ) as client:  # fmt: skip
                self._client = client
                try:
                    yield self
                finally:
                    self._client = None

    async def post(
        self, model: ModelRef, task: str, version: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        key = request_key(model.identity, task, version, path, body)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        assert self._client is not None, "use `async with models.running()`"
        async with self._gate:
            for attempt in range(5):
                reply = await self._client.post(path, json={**body, "model": model.name})
                if reply.status_code not in (429, 503) or attempt == 4:
                    break
                await asyncio.sleep(0.5 * 2**attempt)
        if reply.status_code != 200:
            try:
                message = reply.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = reply.text[:300]
            raise RequestFailed(f"{model.name}: {reply.status_code} {message}")
        answer: dict[str, Any] = reply.json()
        self.cache.put(key, answer)
        return answer
