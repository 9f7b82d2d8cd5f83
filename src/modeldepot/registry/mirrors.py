"""Mirrors: the upstream hubs models are pulled through (`depot mirror add`).

A mirror names an upstream and the protocol it speaks: a Hugging Face Hub (`hf`:
huggingface.co, or any endpoint speaking its API, another depot's `/hf` included), an Ollama
registry (`ollama`), or another depot's own API (`depot`). Its key, when it needs one, is
read from the environment variable it names (never stored). `on_demand`: a client asking this
depot for a model it lacks gets it fetched through the mirror (receive/mirror.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from modeldepot.errors import NotFound, UsageError
from modeldepot.registry import schema as t
from modeldepot.registry.audit import AuditLog

__all__ = ["KINDS", "Mirror", "MirrorStore"]

KINDS = ("hf", "ollama", "depot")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Mirror:
    name: str
    kind: str
    """`hf`, `ollama` or `depot`."""
    url: str
    api_key_env: str | None = None
    """The environment variable holding the upstream's key (never the key)."""
    on_demand: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "url": self.url,
                "api_key_env": self.api_key_env, "on_demand": self.on_demand}  # fmt: skip


def _checked(mirror: Mirror) -> Mirror:
    if _NAME.fullmatch(mirror.name) is None:
        raise UsageError(f"{mirror.name!r}: a mirror's name holds lowercase letters, digits, "
                         ". _ - (at most 128)")  # fmt: skip
    if mirror.kind not in KINDS:
        raise UsageError(f"{mirror.kind!r}: a mirror is one of {', '.join(KINDS)}")
    url = httpx.URL(mirror.url)
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise UsageError(f"{mirror.url!r}: the upstream's URL must be http(s)://HOST[:PORT][/PATH]")
    if mirror.api_key_env is not None and _ENV.fullmatch(mirror.api_key_env) is None:
        raise UsageError(f"{mirror.api_key_env!r} is not an environment variable name")
    return Mirror(mirror.name, mirror.kind, str(url).rstrip("/"), mirror.api_key_env,
                  mirror.on_demand)  # fmt: skip


class MirrorStore:
    """Mirrors; each change is recorded in the audit log with `actor`."""

    def __init__(self, engine: sa.Engine, actor: str = "depot") -> None:
        self.engine = engine
        self.actor = actor

    def add(self, mirror: Mirror, *, actor: str | None = None) -> Mirror:
        """Add `mirror`, or change the one of that name."""
        mirror = _checked(mirror)
        row = {**mirror.to_dict(), "created_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            done = conn.execute(t.mirrors.update().where(t.mirrors.c.name == mirror.name)
                                .values(**row))  # fmt: skip
            if done.rowcount == 0:
                conn.execute(t.mirrors.insert().values(**row))
            AuditLog.append_in(conn, actor or self.actor, "mirror.add", mirror.name,
                               mirror.to_dict())  # fmt: skip
        return mirror

    def remove(self, name: str, *, actor: str | None = None) -> None:
        with self.engine.begin() as conn:
            if conn.execute(t.mirrors.delete().where(t.mirrors.c.name == name)).rowcount == 0:
                raise NotFound(f"no mirror named {name!r}; `depot mirror list` shows them")
            AuditLog.append_in(conn, actor or self.actor, "mirror.remove", name, {})

    def mirrors(self) -> list[Mirror]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.mirrors).order_by(t.mirrors.c.name))
            return [Mirror(r.name, r.kind, r.url, r.api_key_env, bool(r.on_demand)) for r in rows]

    def mirror(self, name: str) -> Mirror:
        found = next((m for m in self.mirrors() if m.name == name), None)
        if found is None:
            raise NotFound(f"no mirror named {name!r}; `depot mirror list` shows them")
        return found
