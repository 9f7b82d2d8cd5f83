"""Asking models: any model the depot serves, local (through its runtime) or remote (through
its gateway), through the depot's own HTTP API. The caller hands in the connection (the server
run in this process over ASGI, or the base URL of a running one): evaluation never imports the
server. Every response goes through the cache; requests run concurrently within a bound; the
model that answered each request (an alias may fall back) is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from modeldepot.connection import Connector
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.evaluation.cache import ResponseCache, request_key

__all__ = ["Connector", "ModelRef", "Models", "RequestFailed", "resolve_model"]

UPSTREAM_HEADER = "x-depot-upstream"
"""The server names the model that answered (an alias's target) in this header."""
_UPSTREAM = "_answered_by"
"""Where a cached response keeps it."""

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
    model, `remote:NAME` for a remote one, `alias:NAME` for an alias (its results are recorded
    under the model that answered)."""
    remote: bool
    label: str

    @property
    def alias(self) -> bool:
        return self.identity.startswith("alias:")


def resolve_model(depot: Depot, name: str) -> ModelRef:
    """`name` as the depot's resolver sees it (ModelNotFound when it names nothing)."""
    found = depot.resolver.resolve(name)
    if found.alias is not None:
        first = found.targets[0] if found.targets else None
        remote = first is not None and first.remote is not None
        return ModelRef(name, f"alias:{name}", remote, name)
    target = depot.resolver.target(name)
    return ModelRef(name, target.identity, target.remote is not None, target.label)


@dataclass
class _Waiting:
    key: str
    body: dict[str, Any]
    done: asyncio.Future[dict[str, Any]]


class Models:
    def __init__(self, connect: Connector, cache: ResponseCache, concurrency: int) -> None:
        self.connect = connect
        self.cache = cache
        self._gate = asyncio.Semaphore(concurrency)
        self._client: httpx.AsyncClient | None = None
        self._waiting: dict[tuple[str, str], list[_Waiting]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self.answered: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        """(model name, task) -> how many responses each upstream model gave."""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Models]:
        async with self.connect() as client:
            self._client = client
            try:
                yield self
            finally:
                self._client = None

    def _note(self, model: ModelRef, task: str, answer: dict[str, Any]) -> dict[str, Any]:
        upstream = answer.pop(_UPSTREAM, None)
        self.answered[(model.name, task)][upstream or model.name] += 1
        return answer

    async def post(
        self, model: ModelRef, task: str, version: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        key = request_key(model.identity, task, version, path, body)
        cached = self.cache.get(key)
        if cached is not None:
            return self._note(model, task, cached)
        answer = await self._send(model, path, body)
        self.cache.put(key, answer)
        return self._note(model, task, answer)

    async def score(
        self, model: ModelRef, task: str, version: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A prompt-scoring request (`/v1/completions` with `echo` and a list of prompts) for
        one item, cached as that item's own, but sent in one request together with the other
        items asked at the same moment, so that the engine decodes them in one batch."""
        key = request_key(model.identity, task, version, "/v1/completions", body)
        cached = self.cache.get(key)
        if cached is not None:
            return self._note(model, task, cached)
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
        return self._note(model, task, await waiting[-1].done)

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
            mine = {"object": answer.get("object"), "model": answer.get("model"), "choices": part,
                    _UPSTREAM: answer.get(_UPSTREAM)}  # fmt: skip
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
        answer[_UPSTREAM] = reply.headers.get(UPSTREAM_HEADER)
        return answer
