"""API keys of the HTTP server. A key is shown once, when created; the registry keeps only its
sha256, a short prefix to recognise it by, its model scope and its quotas."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modeldepot.errors import ConflictError, NotFound, UsageError
from modeldepot.registry import schema as t
from modeldepot.registry.audit import AuditLog

__all__ = ["ApiKey", "KeyStore", "hash_secret", "keys_from_env"]

log = logging.getLogger("modeldepot.registry")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED = re.compile(r"local|local-run|env-\d+", re.IGNORECASE)
"""Names the depot gives callers that are not stored keys (the caller with no key, the local
`depot run`, `DEPOT_API_KEYS`' entries): a stored key of such a name would be taken for them
wherever a key is found again by its name (a UI session, a batch, a transfer grant)."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    models: str = "*"
    """Comma-separated glob patterns of the model names the key may use (`smollm2*,acme/*`)."""
    rpm: int | None = None
    tpd: int | None = None
    private: bool = False
    """Requests made with this key never leave the machine (no remote models)."""
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    admin: bool = False
    """May govern: release and hold versions, manage keys (the web UI's governance pages)."""

    def allows(self, model: str) -> bool:
        patterns = [p.strip() for p in self.models.split(",") if p.strip()]
        names = {model, model.split(":", 1)[0]}
        return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def keys_from_env(value: str | None) -> dict[str, ApiKey]:
    """`DEPOT_API_KEYS`: comma-separated `SECRET` or `SECRET=PATTERN|PATTERN` entries."""
    found: dict[str, ApiKey] = {}
    for i, entry in enumerate(e.strip() for e in (value or "").split(",")):
        if not entry:
            continue
        secret, _, patterns = entry.partition("=")
        models = ",".join(p for p in patterns.split("|") if p) or "*"
        found[hash_secret(secret)] = ApiKey(f"env-{i + 1}", secret[:6], models)
    return found


class KeyStore:
    """API keys; creating and revoking one is recorded in the audit log with `actor`."""

    def __init__(self, engine: sa.Engine, actor: str = "depot") -> None:
        self.engine = engine
        self.actor = actor

    def create(
        self, name: str, *, models: str = "*", rpm: int | None = None, tpd: int | None = None,
        private: bool = False, admin: bool = False, actor: str | None = None,
    ) -> tuple[ApiKey, str]:  # fmt: skip
        if _NAME.fullmatch(name) is None:
            raise UsageError(f"{name!r}: a key name holds letters, digits, . _ - (at most 64)")
        if _RESERVED.fullmatch(name):
            raise UsageError(f"{name!r} is the depot's name for a caller without a stored key; "
                             "pick another name")  # fmt: skip
        for value, what in ((rpm, "--rpm"), (tpd, "--tpd")):
            if value is not None and value <= 0:
                raise UsageError(f"{what} must be a positive number")
        secret = f"md-{secrets.token_urlsafe(32)}"
        key = ApiKey(name, secret[:10], models, rpm, tpd, private, datetime.now(UTC),
                     admin=admin)  # fmt: skip
        with self.engine.begin() as conn:
            if conn.scalar(sa.select(t.api_keys.c.id).where(t.api_keys.c.name == name)):
                raise ConflictError(f"a key named {name!r} exists; revoke it or pick another name")
            conn.execute(
                t.api_keys.insert().values(
                    name=name, prefix=key.prefix, secret_hash=hash_secret(secret), models=models,
                    rpm=rpm, tpd=tpd, private=private, created_at=key.created_at, admin=admin,
                )
            )  # fmt: skip
            details = {"models": models, "rpm": rpm, "tpd": tpd, "private": private,
                       "admin": admin}  # fmt: skip
            AuditLog.append_in(conn, actor or self.actor, "key.create", name, details)
        return key, secret

    def revoke(self, name: str, *, actor: str | None = None) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                t.api_keys.update()
                .where(t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            if done.rowcount == 0:
                raise NotFound(f"no active key named {name!r}; `depot key list` shows them")
            AuditLog.append_in(conn, actor or self.actor, "key.revoke", name, {})

    def all(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            return [self._key(r) for r in conn.execute(sa.select(t.api_keys).order_by("name"))]

    def any_active(self) -> bool:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(t.api_keys.c.revoked_at.is_(None))
            return bool(conn.scalar(query))

    def ever_created(self) -> bool:
        """Whether any key was ever created (revoked ones included): once keys have been
        turned on, the server never opens again by itself."""
        with self.engine.connect() as conn:
            return bool(conn.scalar(sa.select(sa.func.count()).select_from(t.api_keys)))

    def active(self, name: str) -> ApiKey | None:
        """The key called `name` unless it was revoked."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.api_keys).where(
                    t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return self._usable(row)

    def lookup(self, secret: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.api_keys).where(
                    t.api_keys.c.secret_hash == hash_secret(secret),
                    t.api_keys.c.revoked_at.is_(None),
                )
            ).first()
        return self._usable(row)

    def _usable(self, row: Any) -> ApiKey | None:
        """The key of an active row, unless it bears a reserved name (stored before such names
        were refused): it would be taken for a caller without a stored key."""
        if row is None:
            return None
        if _RESERVED.fullmatch(row.name):
            log.warning("the key %r is not accepted: its name is reserved; revoke it and "
                        "create one of another name", row.name)  # fmt: skip
            return None
        return self._key(row)

    @staticmethod
    def _key(r: Any) -> ApiKey:
        return ApiKey(
            r.name,
            r.prefix,
            r.models,
            r.rpm,
            r.tpd,
            bool(r.private),
            r.created_at,
            r.revoked_at,
            admin=bool(r.admin),
        )
