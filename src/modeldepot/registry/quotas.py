"""Quotas counted in the registry, so every replica of `depot serve` on one database holds a
key to the same limits: requests per minute (a sliding minute of request rows) and tokens per
day (what the `usage` table records for the last day, plus the tokens reserved by requests
still running). Each check-and-count is one transaction; on PostgreSQL it takes an advisory
lock on the key first, so two replicas cannot both grant the last of a quota (SQLite
transactions already run one at a time)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from modeldepot.registry import schema as t

__all__ = ["Grant", "QuotaLedger", "Refusal"]

DAY = 86_400.0
RESERVATION_TTL = 3_600.0
"""A reservation a crashed server never settled stops counting after this long."""


@dataclass(frozen=True)
class Grant:
    tokens: int
    reservation: str


@dataclass(frozen=True)
class Refusal:
    message: str
    retry_after: int
    code: str


class QuotaLedger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _lock(self, conn: sa.Connection, key: str) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})

    def request(self, key: str, rpm: int) -> Refusal | None:
        """Count one request against `rpm`, or refuse it (nothing counted)."""
        now = time.time()
        with self.engine.begin() as conn:
            self._lock(conn, key)
            rows = t.quota_requests
            conn.execute(rows.delete().where(rows.c.key == key, rows.c.at <= now - 60))
            recent = list(conn.scalars(sa.select(rows.c.at).where(rows.c.key == key)
                                       .order_by(rows.c.at)))  # fmt: skip
            if len(recent) >= rpm:
                wait = max(1, int(60 - (now - recent[0])) + 1)
                return Refusal(
                    f"rate limit of {rpm} requests per minute reached for key "
                    f"{key!r}; retry in {wait} s",
                    wait,
                    "rate_limit_exceeded",
                )
            conn.execute(rows.insert().values(key=key, at=now))
        return None

    def reserve(self, key: str, tpd: int, wanted: int | None, least: int = 1) -> Grant | Refusal:
        """Reserve the tokens a request may use (`wanted`, or all that is left today); refused
        when fewer than `least` are left (its prompt, and a token for each answer)."""
        now = time.time()
        since = datetime.now(UTC) - timedelta(seconds=DAY)
        with self.engine.begin() as conn:
            self._lock(conn, key)
            usage, held = t.usage, t.quota_reservations
            conn.execute(held.delete().where(held.c.key == key, held.c.expires <= now))
            spent = conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(usage.c.prompt_tokens
                                                       + usage.c.completion_tokens), 0))
                .where(usage.c.key == key, usage.c.at >= since)) or 0  # fmt: skip
            reserved = conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(held.c.tokens), 0))
                .where(held.c.key == key)) or 0  # fmt: skip
            left = tpd - int(spent) - int(reserved)
            if left < max(1, least):
                oldest = conn.scalar(
                    sa.select(sa.func.min(usage.c.at)).where(
                        usage.c.key == key, usage.c.at >= since
                    )
                )
                wait = 60
                if oldest is not None:
                    at = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
                    wait = max(1, int(DAY - (datetime.now(UTC) - at).total_seconds()) + 1)
                message = f"quota of {tpd} tokens per day used up for key {key!r}"
                if left > 0:
                    message = (f"the request may take up to {least} tokens and {left} of the "
                               f"{tpd} tokens per day are left for key {key!r}")  # fmt: skip
                return Refusal(message, wait, "insufficient_quota")
            tokens = min(wanted, left) if wanted is not None else left
            grant = Grant(tokens, f"r-{secrets.token_hex(8)}")
            conn.execute(held.insert().values(id=grant.reservation, key=key, tokens=tokens,
                                              expires=now + RESERVATION_TTL))  # fmt: skip
        return grant

    def release(self, reservation: str) -> None:
        """The request ended (its usage already recorded): its reservation stops counting."""
        held = t.quota_reservations
        with self.engine.begin() as conn:
            conn.execute(held.delete().where(held.c.id == reservation))
