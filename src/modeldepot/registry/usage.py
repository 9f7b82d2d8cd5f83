"""Per-request usage: one row per answered API request (key, model, endpoint, status, tokens,
latency, time to first token). Kept out of the audit chain: appending takes no global lock,
so replicas serving at once never queue on it. Daily token quotas are counted from here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from modeldepot.registry import schema as t
from modeldepot.registry.records import as_utc

__all__ = ["UsageLog", "UsageRecord"]


@dataclass(frozen=True)
class UsageRecord:
    key: str
    model: str
    endpoint: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None = None
    at: datetime | None = None
    """Set when read back; the time of recording when written."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageLog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, usage: UsageRecord) -> None:
        values = {k: v for k, v in vars(usage).items() if k != "at"}
        with self.engine.begin() as conn:
            conn.execute(t.usage.insert().values(at=datetime.now(UTC), **values))

    def records(
        self, *, key: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[UsageRecord]:
        query = sa.select(t.usage).order_by(t.usage.c.id)
        if key is not None:
            query = query.where(t.usage.c.key == key)
        if since is not None:
            query = query.where(t.usage.c.at >= since)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [
                UsageRecord(r.key, r.model, r.endpoint, r.status, r.prompt_tokens,
                            r.completion_tokens, r.latency_ms, r.ttft_ms, as_utc(r.at))
                for r in conn.execute(query)
            ]  # fmt: skip
