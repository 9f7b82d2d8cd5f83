"""Transfer grants: what the Hugging Face Xet protocol hands a client instead of its key, kept
in the registry so that every replica on one database honours them. A grant is a random token
held by the client, of which the registry keeps only the sha256, with the key it was granted
to, the model version it is for, its kind, and when it expires:

    read   the access token of `/hf/api/models/{repo}/xet-read-token/{rev}`: asks how the
           files of one version are laid out (`Authorization: Bearer <token>`)
    file   the capability in the URLs of one stored file's byte ranges (the Hub's presigned
           URLs): fetched without a header

Whoever honours a grant checks again that its key is still active and may have the version,
and that the gate still admits it: a grant never outlives a revocation or a quarantine.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from modeldepot.registry import schema as t

__all__ = ["FILE", "READ", "Grant", "GrantStore"]

READ = "read"
FILE = "file"


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    kind: str
    key: str
    """The API key's name."""
    version: str
    """`repository@sha256:...`: the model version it is for."""
    blob: str | None
    """For a `file` grant: the stored file's digest."""
    expires: float


class GrantStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open(self, kind: str, key: str, version: str, lifetime: float,
             blob: str | None = None) -> tuple[str, float]:  # fmt: skip
        """A new grant: its token (given to the client only) and when it expires."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        expires = now + lifetime
        with self.engine.begin() as conn:
            conn.execute(t.transfer_grants.delete().where(t.transfer_grants.c.expires <= now))
            conn.execute(t.transfer_grants.insert().values(
                id=_id(token), kind=kind, key=key, version=version, blob=blob, created_at=now,
                expires=expires))  # fmt: skip
        return token, expires

    def find(self, token: str, kind: str) -> Grant | None:
        """The grant of this kind `token` stands for, unless it expired."""
        c = t.transfer_grants.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(c.kind, c.key, c.version, c.blob, c.expires).where(
                    c.id == _id(token), c.kind == kind, c.expires > time.time()
                )
            ).first()
        return Grant(row.kind, row.key, row.version, row.blob, row.expires) if row else None
