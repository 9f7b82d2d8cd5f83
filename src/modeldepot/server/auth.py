"""Who may call the API: API keys, their model scopes, and their quotas.

With no key ever configured (neither `DEPOT_API_KEYS` nor `depot key create`) the server is for
local use: every request that names the server (`hosts.py`: no DNS rebinding) is let in, and
`depot serve` listens on loopback only. Once a key has been created, every request must carry
a valid one, even after the last key is revoked (the server never opens again by itself)
(`Authorization: Bearer <key>`): a missing or wrong key is 401, a model outside the key's scope
403, requests past its requests-per-minute or tokens-per-day quota 429.

Routes say who may call them by their parameters: `key: Caller` (FastAPI's dependency on
`caller`) authenticates before the route runs and before any request body is read; a route
that reads a body reads it itself, after that.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Request

from modeldepot.registry.keys import ApiKey, KeyStore, hash_secret
from modeldepot.registry.quotas import QuotaLedger, Refusal
from modeldepot.server.access import note
from modeldepot.server.errors import APIError
from modeldepot.server.hosts import Hosts

__all__ = ["LOCAL", "LOCAL_RUN", "Caller", "Gatekeeper", "MaybeCaller", "caller"]

LOCAL = ApiKey("local", "", "*", admin=True)
"""The caller when no key was ever created (loopback only): it may do everything."""
LOCAL_RUN = ApiKey("local-run", "", "*")
"""The caller holding the server's local key (`depot run` on the same home)."""
_DAY = 86400.0
CACHED_KEYS = 1024
"""Look-ups of presented tokens (right or wrong) kept for `cache_seconds`; the oldest go."""


class Gatekeeper:
    def __init__(
        self,
        env_keys: dict[str, ApiKey],
        store: KeyStore,
        ledger: QuotaLedger | None = None,
        cache_seconds: float = 2.0,
        local_secret: str | None = None,
        hosts: Hosts | None = None,
    ) -> None:
        self.env_keys = env_keys
        self.hosts = hosts or Hosts.for_server(None, None)
        self._local = hash_secret(local_secret) if local_secret else None
        self.store = store
        self.ledger = ledger
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._enabled: tuple[float, bool] = (0.0, False)

    async def enabled(self) -> bool:
        if self.env_keys:
            return True
        checked, value = self._enabled
        if time.monotonic() - checked > self.cache_seconds:
            value = await asyncio.to_thread(self.store.ever_created)
            self._enabled = (time.monotonic(), value)
        return value

    async def open_for(self, request: Request) -> bool:
        """Whether `request` is let in without a key: no key was ever created, and it names
        this server (421 or 403 otherwise: see `hosts`)."""
        if await self.enabled():
            return False
        self.hosts.check(request)
        return True

    async def authenticate(self, request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if self._local is not None and hash_secret(secret.strip()) == self._local:
            return LOCAL_RUN
        if await self.open_for(request):
            return LOCAL
        if scheme.lower() != "bearer" or not secret.strip():
            raise APIError(401, "an API key is required: send `Authorization: Bearer <key>`",
                           "invalid_request_error", "missing_api_key")  # fmt: skip
        key = await self._lookup(secret.strip())
        if key is None:
            raise APIError(401, "incorrect API key provided", "invalid_request_error",
                           "invalid_api_key")  # fmt: skip
        return key

    async def key_named(self, name: str) -> ApiKey | None:
        """The active key called `name` (a web UI session's, a batch's), or None once it has
        been revoked."""
        from_env = self._from_env(name)
        if from_env is not None:
            return from_env
        cached = self._cache.get(f"name:{name}")
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        key = await asyncio.to_thread(self.store.active, name)
        self._remember(f"name:{name}", key)
        return key

    async def still_valid(self, key: ApiKey) -> ApiKey | None:
        """`key` as it stands now (its scope and quotas may have changed), or None once it has
        been revoked; the local caller only while the depot still has no key."""
        if key is LOCAL_RUN:
            return key
        if key is LOCAL:
            return None if await self.enabled() else key
        from_env = self._from_env(key.name)
        if from_env is not None:
            return from_env
        return await asyncio.to_thread(self.store.active, key.name)  # now, not as cached

    def _from_env(self, name: str) -> ApiKey | None:
        return next((k for k in self.env_keys.values() if k.name == name), None)

    async def key_for(self, secret: str) -> ApiKey | None:
        """The active key with this secret (a web UI sign-in), or None."""
        return await self._lookup(secret)

    async def _lookup(self, secret: str) -> ApiKey | None:
        digest = hash_secret(secret)
        if digest in self.env_keys:
            return self.env_keys[digest]
        cached = self._cache.get(digest)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        key = await asyncio.to_thread(self.store.lookup, secret)
        self._remember(digest, key)
        return key

    def _remember(self, lookup: str, key: ApiKey | None) -> None:
        self._cache[lookup] = (time.monotonic(), key)
        self._cache.move_to_end(lookup)
        while len(self._cache) > CACHED_KEYS:  # wrong tokens must not fill the memory
            self._cache.popitem(last=False)

    def authorize(self, key: ApiKey, model: str) -> None:
        if not key.allows(model):
            raise APIError(403, f"the API key {key.name!r} may not use {model}",
                           "permission_error", "model_not_allowed")  # fmt: skip

    async def admit(self, key: ApiKey, prompt: int = 0, wanted: int | None = None,
                    choices: int = 1) -> tuple[int | None, str | None]:  # fmt: skip
        """Count one request against the key's quotas, or refuse it (429). For a key with a
        daily token quota, reserve what the request may take: its `prompt` (a bound on its
        tokens) and `wanted` tokens for each of its `choices` answers (all that is left when
        `wanted` is None; nothing when `choices` is 0, as for embeddings). Returns the tokens
        each answer may generate, with the reservation: the caller caps generation at it and
        releases it with `spend` once the request's usage is recorded, so concurrent requests
        (on any replica: the counts are in the registry) cannot overrun the quota."""
        if self.ledger is None:
            return None, None
        if key.rpm is not None:
            refused = await asyncio.to_thread(self.ledger.request, key.name, key.rpm)
            if refused is not None:
                raise APIError(429, refused.message, "rate_limit_error", refused.code,
                               retry_after=str(refused.retry_after))  # fmt: skip
        if key.tpd is None:
            return None, None
        need = None if wanted is None and choices else prompt + choices * (wanted or 0)
        grant = await asyncio.to_thread(self.ledger.reserve, key.name, key.tpd, need,
                                        prompt + choices)  # fmt: skip
        if isinstance(grant, Refusal):
            raise APIError(429, grant.message, "insufficient_quota", grant.code,
                           retry_after=str(grant.retry_after))  # fmt: skip
        each = (grant.tokens - prompt) // choices if choices else 0
        return each, grant.reservation

    def spend(self, key: ApiKey, reservation: str | None) -> None:
        """A request ended and its usage is recorded: release its reservation."""
        if reservation is not None and self.ledger is not None:
            self.ledger.release(reservation)


def _gate(request: Request) -> Gatekeeper:
    gate: Gatekeeper = request.app.state.depot.gate
    return gate


async def caller(request: Request) -> ApiKey:
    """The key a request is sent with (401 without a valid one; the local caller in a depot
    without keys)."""
    key = await _gate(request).authenticate(request)
    note(request, key=key.name)
    return key


async def maybe_caller(request: Request) -> ApiKey | None:
    """The key a request is sent with, or None (for what anyone may see)."""
    try:
        return await caller(request)
    except APIError:
        return None


Caller = Annotated[ApiKey, Depends(caller)]
"""A route's parameter `key: Caller`: authenticated before the route runs."""
MaybeCaller = Annotated[ApiKey | None, Depends(maybe_caller)]
