"""Signing in to the web UI with an API key: a session cookie (HttpOnly, SameSite=Strict,
expiring) holding a random token that the registry knows (`registry/sessions.py`), so every
replica on one database accepts it and signing out ends it everywhere; and a CSRF token per
session for every form that changes state. The key is looked up again on every request, so a
revoked key's sessions end at once. A depot without keys has one local viewer, whose CSRF
token is signed with a secret kept in DEPOT_HOME."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from modeldepot.layout import Layout
from modeldepot.registry.sessions import SessionStore

__all__ = ["COOKIE", "CSRF_COOKIE", "LIFETIME", "Session", "Sessions"]

COOKIE = "depot_session"
CSRF_COOKIE = "depot_signin"
LIFETIME = 8 * 3600
_MAX_COOKIE = 200
"""Longer session cookies are not ours (ours are 43 characters)."""


@dataclass(frozen=True)
class Session:
    key: str
    """The API key's name."""
    csrf: str
    """The token its forms carry."""
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _local_secret(home: Path) -> bytes:
    """The secret in `home/ui-secret` (made on first use, readable by the owner)."""
    path = Layout(home).ui_secret
    try:
        return path.read_bytes()
    except FileNotFoundError:
        home.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # pragma: no cover - two servers starting at once
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret


class Sessions:
    def __init__(self, store: SessionStore, home: Path, lifetime: float = LIFETIME) -> None:
        self.store = store
        self.lifetime = lifetime
        self._local = hmac.new(_local_secret(home), b"csrf:local", hashlib.sha256).digest()

    async def issue(self, key: str) -> str:
        """A new session for the key named `key`: the cookie's value."""
        return await asyncio.to_thread(self.store.open, key, self.lifetime)

    async def read(self, cookie: str | None) -> Session | None:
        """The live session a cookie holds (None when it ended, expired or never was)."""
        if not cookie or len(cookie) > _MAX_COOKIE:
            return None
        found = await asyncio.to_thread(self.store.find, cookie)
        if found is None:
            return None
        csrf = _b64(hashlib.sha256(b"csrf:" + cookie.encode()).digest())
        return Session(found.key, csrf, found.expires)

    async def end(self, cookie: str | None) -> None:
        """Sign out: the cookie's session is refused from now on, on every replica."""
        if cookie and len(cookie) <= _MAX_COOKIE:
            await asyncio.to_thread(self.store.end, cookie)

    def csrf(self, session: Session | None) -> str:
        """The token forms of this session carry (the local viewer's: one per depot home)."""
        return session.csrf if session is not None else _b64(self._local)
