"""Remote models and aliases: the gateway's part of the registry.

A remote is an OpenAI-compatible model elsewhere (a proprietary API, another depot), listed
and called like a local one. An alias is a name served by the first of its targets (local
models or remotes) that answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from modeldepot.errors import ConflictError, NotFound, UsageError
from modeldepot.registry import schema as t
from modeldepot.registry.audit import AuditLog

__all__ = ["Alias", "GatewayStore", "Remote"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Remote:
    name: str
    base_url: str
    upstream_model: str
    api_key_env: str | None = None
    """The name of the environment variable holding the upstream's key (never the key)."""


@dataclass(frozen=True)
class Alias:
    name: str
    targets: tuple[str, ...]


def _check_name(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise UsageError(f"{name!r}: a name holds lowercase letters, digits, . _ - (at most 128)")
    return name


class GatewayStore:
    """Remotes and aliases; each change is recorded in the audit log with `actor`."""

    def __init__(self, engine: sa.Engine, actor: str = "depot") -> None:
        self.engine = engine
        self.actor = actor

    def add_remote(self, remote: Remote, *, actor: str | None = None) -> Remote:
        _check_name(remote.name)
        url = httpx.URL(remote.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise UsageError(f"{remote.base_url!r}: the base URL must be http(s)://host[:port]/...")
        if remote.api_key_env is not None and _ENV.fullmatch(remote.api_key_env) is None:
            raise UsageError(f"{remote.api_key_env!r} is not an environment variable name")
        with self.engine.begin() as conn:
            if conn.scalar(sa.select(t.aliases.c.id).where(t.aliases.c.name == remote.name)):
                raise ConflictError(f"{remote.name!r} is an alias; remove it first")
            done = conn.execute(
                t.remotes.update().where(t.remotes.c.name == remote.name).values(**_row(remote))
            )
            if done.rowcount == 0:
                conn.execute(t.remotes.insert().values(**_row(remote)))
            details = {"base_url": remote.base_url, "model": remote.upstream_model}
            AuditLog.append_in(conn, actor or self.actor, "remote.add", remote.name, details)
        return remote

    def remove_remote(self, name: str, *, actor: str | None = None) -> None:
        with self.engine.begin() as conn:
            if conn.execute(t.remotes.delete().where(t.remotes.c.name == name)).rowcount == 0:
                raise NotFound(f"no remote named {name!r}; `depot remote list` shows them")
            AuditLog.append_in(conn, actor or self.actor, "remote.remove", name, {})

    def remotes(self) -> list[Remote]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.remotes).order_by(t.remotes.c.name))
            return [Remote(r.name, r.base_url, r.upstream_model, r.api_key_env) for r in rows]

    def remote(self, name: str) -> Remote | None:
        return next((r for r in self.remotes() if r.name == name), None)

    def set_alias(self, name: str, targets: list[str], *, actor: str | None = None) -> Alias:
        _check_name(name)
        if not targets:
            raise UsageError("an alias needs at least one target")
        if name in targets:
            raise UsageError(f"{name!r} cannot point to itself")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if conn.scalar(sa.select(t.remotes.c.id).where(t.remotes.c.name == name)):
                raise ConflictError(f"{name!r} is a remote; remove it first")
            done = conn.execute(
                t.aliases.update()
                .where(t.aliases.c.name == name)
                .values(targets=targets, updated_at=now)
            )
            if done.rowcount == 0:
                conn.execute(t.aliases.insert().values(name=name, targets=targets, updated_at=now))
            AuditLog.append_in(conn, actor or self.actor, "alias.set", name, {"targets": targets})
        return Alias(name, tuple(targets))

    def remove_alias(self, name: str, *, actor: str | None = None) -> None:
        with self.engine.begin() as conn:
            if conn.execute(t.aliases.delete().where(t.aliases.c.name == name)).rowcount == 0:
                raise NotFound(f"no alias named {name!r}; `depot alias list` shows them")
            AuditLog.append_in(conn, actor or self.actor, "alias.remove", name, {})

    def aliases(self) -> list[Alias]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.aliases).order_by(t.aliases.c.name))
            return [Alias(r.name, tuple(r.targets)) for r in rows]

    def alias(self, name: str) -> Alias | None:
        return next((a for a in self.aliases() if a.name == name), None)


def _row(remote: Remote) -> dict[str, Any]:
    return {
        "name": remote.name,
        "base_url": remote.base_url.rstrip("/"),
        "api_key_env": remote.api_key_env,
        "upstream_model": remote.upstream_model,
        "created_at": datetime.now(UTC),
    }
