"""Asking models: any model the depot serves, local (through its runtime) or remote (through
its gateway), by running the depot's own HTTP app in this process and talking to it over
ASGI. Every response goes through the cache; requests run concurrently within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
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

GROUP_SEQUENCES = 16
"""Prompts per grouped scoring request, not counting each item's first (its context, which
the others extend): as many sequences as the scoring engine decodes together."""


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


@dataclass
class _Waiting:
    key: str
    body: dict[str, Any]
    done: asyncio.Future[dict[str, Any]]


class Models:
    def __init__(self, settings: Settings, cache: ResponseCache, concurrency: int) -> None:
        self.secret = secrets.token_urlsafe(24)
        keys = ",".join(k for k in (settings.api_keys, self.secret) if k)
        self.settings = dataclasses.replace(settings, api_keys=keys)
        self.cache = cache
        self._gate = asyncio.Semaphore(concurrency)
        self._client: httpx.AsyncClient | None = None
        self._waiting: dict[tuple[str, str], list[_Waiting]] = {}
        self._sending: set[asyncio.Task[None]] = set()

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
        answer = await self._send(model, path, body)
        self.cache.put(key, answer)
        return answer

    async def score(
        self, model: ModelRef, task: str, version: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A prompt-scoring request (`/v1/completions` with `echo` and a list of prompts) for
        one item, cached as that item's own, but sent in one request together with the other
        items asked at the same moment, so that the engine decodes them in one batch."""
        key = request_key(model.identity, task, version, "/v1/completions", body)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        common = {k: v for k, v in body.items() if k not in ("prompt", "logprobs_from")}
        group = (model.name, json.dumps(common, sort_keys=True))
        waiting = self._waiting.setdefault(group, [])
        size = sum(len(w.body["prompt"]) - 1 for w in waiting)
        if waiting and size + len(body["prompt"]) - 1 > GROUP_SEQUENCES:
            self._flush(group, model)
            waiting = self._waiting.setdefault(group, [])
        waiting.append(_Waiting(key, body, loop.create_future()))
        if len(waiting) == 1:  # the rest of this moment's items join it first
            loop.call_soon(self._flush, group, model)
        return await waiting[-1].done

    def _flush(self, group: tuple[str, str], model: ModelRef) -> None:
        waiting = self._waiting.pop(group, [])
        if waiting:
            task = asyncio.get_running_loop().create_task(self._send_group(model, waiting))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_group(self, model: ModelRef, waiting: list[_Waiting]) -> None:
        try:
            await self._answer_group(model, waiting)
        except Exception as exc:  # an item left waiting would never finish
            for one in waiting:
                if not one.done.done():
                    one.done.set_exception(exc)

    async def _answer_group(self, model: ModelRef, waiting: list[_Waiting]) -> None:
        combined = {k: v for k, v in waiting[0].body.items() if k != "logprobs_from"}
        combined["prompt"] = [p for w in waiting for p in w.body["prompt"]]
        if "logprobs_from" in waiting[0].body:
            combined["logprobs_from"] = [w.body["logprobs_from"] for w in waiting
                                         for _ in w.body["prompt"]]  # fmt: skip
        try:
            answer = await self._send(model, "/v1/completions", combined)
        except RequestFailed as exc:
            if len(waiting) == 1:
                waiting[0].done.set_exception(exc)
                return
            for one in waiting:  # so that only the item at fault fails
                try:
                    alone = await self._send(model, "/v1/completions", one.body)
                except RequestFailed as failed:
                    one.done.set_exception(failed)
                else:
                    self.cache.put(one.key, alone)
                    one.done.set_result(alone)
            return
        choices = answer["choices"]
        for one in waiting:
            part = [{**c, "index": i} for i, c in enumerate(choices[: len(one.body["prompt"])])]
            choices = choices[len(one.body["prompt"]) :]
            mine = {"object": answer.get("object"), "model": answer.get("model"), "choices": part}
            self.cache.put(one.key, mine)
            one.done.set_result(mine)

    async def _send(self, model: ModelRef, path: str, body: dict[str, Any]) -> dict[str, Any]:
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
        return answer
