"""Who may call the API: API keys, their model scopes, and their quotas.

With no key ever configured (neither `DEPOT_API_KEYS` nor `depot key create`) the server is for
local use: every request is let in and `depot serve` listens on loopback only. Once a key has
been created, every request must carry a valid one, even after the last key is revoked (the
server never opens again by itself) (`Authorization: Bearer <key>`): a missing or wrong key is
401, a model outside the key's scope 403, requests past its requests-per-minute or
tokens-per-day quota 429.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from fastapi import Request

from modeldepot.registry.keys import ApiKey, KeyStore, hash_secret
from modeldepot.registry.quotas import QuotaLedger, Refusal
from modeldepot.server.errors import APIError

__all__ = ["LOCAL", "LOCAL_RUN", "Gatekeeper"]

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
    ) -> None:
        self.env_keys = env_keys
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

    async def authenticate(self, request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if self._local is not None and hash_secret(secret.strip()) == self._local:
            return LOCAL_RUN
        if not await self.enabled():
            return LOCAL
        if scheme.lower() != "bearer" or not secret.strip():
            raise APIError(401, "an API key is required: send `Authorization: Bearer <key>`",
                           "invalid_request_error", "missing_api_key")  # fmt: skip
        key = await self._lookup(secret.strip())
        if key is None:
            raise APIError(401, "incorrect API key provided", "invalid_request_error",
                           "invalid_api_key")  # fmt: skip
        return key

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
        self._cache[digest] = (time.monotonic(), key)
        self._cache.move_to_end(digest)
        while len(self._cache) > CACHED_KEYS:  # wrong tokens must not fill the memory
            self._cache.popitem(last=False)
        return key

    def authorize(self, key: ApiKey, model: str) -> None:
        if not key.allows(model):
            raise APIError(403, f"the API key {key.name!r} may not use {model}",
                           "permission_error", "model_not_allowed")  # fmt: skip

    async def admit(self, key: ApiKey, wanted: int | None = None
                    ) -> tuple[int | None, str | None]:  # fmt: skip
        """Count one request against the key's quotas, or refuse it (429). For a key with a
        daily token quota, reserve the tokens the request may generate (`wanted`, or all that
        is left) and return that grant with its reservation: the caller caps generation at it
        and releases it with `spend` once the request's usage is recorded, so concurrent
        requests (on any replica: the counts are in the registry) cannot overrun the quota."""
        if self.ledger is None:
            return None, None
        if key.rpm is not None:
            refused = await asyncio.to_thread(self.ledger.request, key.name, key.rpm)
            if refused is not None:
                raise APIError(429, refused.message, "rate_limit_error", refused.code,
                               retry_after=str(refused.retry_after))  # fmt: skip
        if key.tpd is None:
            return None, None
        grant = await asyncio.to_thread(self.ledger.reserve, key.name, key.tpd, wanted)
        if isinstance(grant, Refusal):
            raise APIError(429, grant.message, "insufficient_quota", grant.code,
                           retry_after=str(grant.retry_after))  # fmt: skip
        return grant.tokens, grant.reservation

    def spend(self, key: ApiKey, reservation: str | None) -> None:
        """A request ended and its usage is recorded: release its reservation."""
        if reservation is not None and self.ledger is not None:
            self.ledger.release(reservation)
