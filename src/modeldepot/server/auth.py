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
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from modeldepot.registry.keys import ApiKey, KeyStore, hash_secret
from modeldepot.server.errors import APIError

__all__ = ["LOCAL", "LOCAL_RUN", "Gatekeeper"]

LOCAL = ApiKey("local", "", "*", admin=True)
"""Whoever uses a depot on which no key was ever created (loopback only): everything."""
"""The caller when no key is configured."""
LOCAL_RUN = ApiKey("local-run", "", "*")
"""The caller holding the server's local key (`depot run` on the same home)."""
_DAY = 86400.0
CACHED_KEYS = 1024
"""Look-ups of presented tokens (right or wrong) kept for `cache_seconds`; the oldest go."""


@dataclass
class _Usage:
    minute: deque[float] = field(default_factory=deque)
    day: deque[tuple[float, int]] = field(default_factory=deque)
    reserved: int = 0
    """Tokens granted to requests still running."""

    def tokens_today(self, now: float) -> int:
        while self.day and now - self.day[0][0] > _DAY:
            self.day.popleft()
        return sum(n for _, n in self.day)


History = Callable[[str], list[tuple[float, int]]]
"""A key's spending over the last day: (unix time, tokens) per request, from the registry."""


class Gatekeeper:
    def __init__(
        self,
        env_keys: dict[str, ApiKey],
        store: KeyStore,
        history: History | None = None,
        cache_seconds: float = 2.0,
        local_secret: str | None = None,
    ) -> None:
        self.env_keys = env_keys
        self._local = hash_secret(local_secret) if local_secret else None
        self.store = store
        self.history = history
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._enabled: tuple[float, bool] = (0.0, False)
        self._usage: dict[str, _Usage] = defaultdict(_Usage)

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

    async def admit(self, key: ApiKey, wanted: int | None = None) -> int | None:
        """Count one request against the key's quotas, or refuse it (429). For a key with a
        daily token quota, reserve the tokens the request may generate (`wanted`, or all that
        is left) and return that grant: the caller caps generation at it and settles it with
        `spend` when the request ends, so concurrent requests cannot overrun the quota. A key's
        tokens of the last day are read from the registry once, so a restart does not reset
        them."""
        if key.tpd is not None and key.name not in self._usage and self.history is not None:
            spent = await asyncio.to_thread(self.history, key.name)
            offset = time.monotonic() - time.time()
            self._usage[key.name].day.extend((at + offset, n) for at, n in spent)
        usage = self._usage[key.name]
        now = time.monotonic()
        while usage.minute and now - usage.minute[0] > 60:
            usage.minute.popleft()
        if key.rpm is not None and len(usage.minute) >= key.rpm:
            wait = max(1, int(60 - (now - usage.minute[0])) + 1)
            raise APIError(429, f"rate limit of {key.rpm} requests per minute reached for key "
                           f"{key.name!r}; retry in {wait} s", "rate_limit_error",
                           "rate_limit_exceeded", retry_after=str(wait))  # fmt: skip
        grant = None
        if key.tpd is not None:
            left = key.tpd - usage.tokens_today(now) - usage.reserved
            if left <= 0:
                wait = max(1, int(_DAY - (now - usage.day[0][0])) + 1) if usage.day else 60
                raise APIError(429, f"quota of {key.tpd} tokens per day used up for key "
                               f"{key.name!r}", "insufficient_quota", "insufficient_quota",
                               retry_after=str(wait))  # fmt: skip
            grant = min(wanted, left) if wanted else left
            usage.reserved += grant
        usage.minute.append(now)
        return grant

    def spend(self, key: ApiKey, tokens: int, reserved: int = 0) -> None:
        """Charge what a request used, releasing what was reserved for it."""
        usage = self._usage[key.name]
        usage.reserved = max(0, usage.reserved - reserved)
        if tokens:
            usage.day.append((time.monotonic(), tokens))
