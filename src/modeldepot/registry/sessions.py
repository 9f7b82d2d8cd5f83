"""Web UI sessions, in the registry so that every replica of `depot serve` on one database
knows them: a session is a random token held by the browser, of which the registry keeps only
the sha256, with the key it signs in and when it expires. Signing out deletes the row, so the
token is refused at once everywhere, even if the cookie is replayed."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from modeldepot.registry import schema as t

__all__ = ["SessionRecord", "SessionStore"]


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionRecord:
    key: str
    """The API key's name."""
    expires: float


class SessionStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open(self, key: str, lifetime: float) -> str:
        """A new session for `key`: its token (shown to the browser only)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(t.ui_sessions.delete().where(t.ui_sessions.c.expires <= now))
            conn.execute(t.ui_sessions.insert().values(id=_id(token), key=key, created_at=now,
                                                       expires=now + lifetime))  # fmt: skip
        return token

    def find(self, token: str) -> SessionRecord | None:
        """The session `token` opened, unless it ended or expired."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.ui_sessions.c.key, t.ui_sessions.c.expires).where(
                    t.ui_sessions.c.id == _id(token), t.ui_sessions.c.expires > time.time()
                )
            ).first()
        return SessionRecord(row.key, row.expires) if row is not None else None

    def end(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.ui_sessions.delete().where(t.ui_sessions.c.id == _id(token)))
