"""Signing in to the web UI with an API key: a session cookie (HttpOnly, SameSite=Strict,
HMAC-signed with a secret kept in DEPOT_HOME, expiring) naming the key, and a CSRF token per
session for every form that changes state. The key is looked up again on every request, so a
revoked key's sessions end at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from modeldepot.layout import Layout

__all__ = ["COOKIE", "CSRF_COOKIE", "Session", "Sessions"]

COOKIE = "depot_session"
CSRF_COOKIE = "depot_signin"
LIFETIME = 8 * 3600


@dataclass(frozen=True)
class Session:
    key: str
    """The API key's name."""
    nonce: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, secret: bytes, lifetime: float = LIFETIME) -> None:
        self._secret = secret
        self.lifetime = lifetime

    @classmethod
    def for_home(cls, home: Path) -> Sessions:
        """With the secret in `home/ui-secret` (made on first use, readable by the owner)."""
        path = Layout(home).ui_secret
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            home.mkdir(parents=True, exist_ok=True)
            secret = secrets.token_bytes(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secret)
            return cls(secret)
        except FileExistsError:  # pragma: no cover - two servers starting at once
            return cls(path.read_bytes())

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, key: str) -> str:
        body = json.dumps({"k": key, "n": secrets.token_urlsafe(12),
                           "e": int(time.time() + self.lifetime)})  # fmt: skip
        payload = _b64(body.encode())
        return f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["k"]), str(body["n"]), float(body["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf(self, session: Session | None) -> str:
        """The token forms of this session carry (the local session: one per server secret)."""
        nonce = session.nonce if session else "local"
        return self._sign(f"csrf:{nonce}")

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))
