"""The audit log: an append-only, hash-chained record of every governance action (imports,
tags, removals, scans, quarantine, signatures, policy, keys, remotes), each with its actor.

Every event stores the hash of the event before it and a sha256 over that hash and its own
fields (time, actor, action, subject, details in canonical JSON). Editing an event changes its
hash; deleting one breaks the link of the next. Removing events from the end leaves a shorter
valid chain: `depot audit verify` prints the head hash and count, so an operator can anchor
them elsewhere and compare later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modeldepot.errors import UsageError
from modeldepot.registry import schema as t
from modeldepot.registry.records import Event, as_utc
from modeldepot.spans import parse_span

__all__ = ["ACTIONS", "AuditLog", "ChainProblem", "ChainReport", "chain_hash", "parse_since",
           "readable"]  # fmt: skip

ACTIONS = (
    "import", "pull", "push", "tag", "remove", "prune", "gc",
    "scan", "quarantine", "quarantine.update", "quarantine.clear", "quarantine.hold",
    "quarantine.release", "policy", "sign", "verify", "verify.fail", "card.edit", "bom", "eval",
    "key.create", "key.revoke", "remote.add", "remote.remove", "alias.set", "alias.remove",
)  # fmt: skip
"""Every action the depot records. A filter by action also takes a family (`quarantine`
matches `quarantine.release`)."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`1h`, `30m`, `2d`, `1w` ago (`modeldepot.spans`), or an ISO date or time (UTC unless it
    says otherwise); ValueError otherwise."""
    span = parse_span(text)
    if span is not None:
        return (now or datetime.now(UTC)) - span
    at = datetime.fromisoformat(text.strip())
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "; ".join(_value(v) for v in value) if value else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def readable(details: dict[str, Any], *, limit: int = 400) -> str:
    """An event's details as a person reads them: `reason: checked; until: 2026-12-31`."""
    text = "; ".join(f"{k.replace('_', ' ')}: {_value(v)}" for k, v in details.items()
                     if k != "text")  # fmt: skip
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _instant(at: datetime) -> str:
    return as_utc(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(
    previous: str, at: datetime, actor: str, action: str, subject: str, details: Any
) -> str:
    body = json.dumps(
        [previous, _instant(at), actor, action, subject, details],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )  # fmt: skip
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    event_id: int
    message: str


@dataclass(frozen=True)
class ChainReport:
    events: int
    head: str
    problems: tuple[ChainProblem, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


class AuditLog:
    """The one writer and reader of events. `append_in` extends the chain inside the caller's
    transaction (so a change and its event commit together); `append` in a transaction of its
    own. On PostgreSQL an advisory transaction lock keeps concurrent writers from forking the
    chain; on SQLite `BEGIN IMMEDIATE` already serialises writers. Per-request usage is not an
    event (see `registry.usage`): serving never takes this lock."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            self.append_in(conn, actor, action, subject, details)

    @staticmethod
    def append_in(
        conn: sa.Connection, actor: str, action: str, subject: str, details: dict[str, Any]
    ) -> None:
        if conn.dialect.name == "postgresql":  # one writer at a time extends the chain
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7004001)"))
        previous = (
            conn.scalar(sa.select(t.events.c.hash).order_by(t.events.c.id.desc()).limit(1)) or ""
        )
        at = datetime.now(UTC)
        details = json.loads(json.dumps(details, default=str))  # as it will read back
        conn.execute(
            t.events.insert().values(
                at=at, actor=actor, action=action, subject=subject, details=details,
                prev_hash=previous,
                hash=chain_hash(previous, at, actor, action, subject, details),
            )
        )  # fmt: skip

    def events(
        self,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        action: str | None = None,
    ) -> list[Event]:
        query = sa.select(t.events).order_by(t.events.c.id)
        if since is not None:
            query = query.where(t.events.c.at >= since)
        if action is not None:  # the action, or its family (`quarantine`: quarantine.*)
            family = t.events.c.action.startswith(f"{action}.", autoescape=True)
            query = query.where(sa.or_(t.events.c.action == action, family))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [
                Event(r.id, as_utc(r.at), r.actor, r.action, r.subject, dict(r.details))
                for r in conn.execute(query)
            ]

    def actions(self) -> list[str]:
        """Every action the depot records, and any other the chain holds, sorted."""
        with self.engine.connect() as conn:
            recorded = conn.scalars(sa.select(t.events.c.action).distinct()).all()
        return sorted(set(ACTIONS) | set(recorded))

    def check_action(self, action: str) -> str:
        """`action` itself when it is an action or a family of actions (`quarantine`) that
        `actions` lists; UsageError naming them otherwise."""
        known = self.actions()
        if action not in known and not any(a.startswith(f"{action}.") for a in known):
            raise UsageError(f"{action!r} is not an action the depot records; one of: "
                             f"{', '.join(known)}")  # fmt: skip
        return action

    def head(self) -> tuple[int, str]:
        """How many events the chain holds, and the hash of the last."""
        with self.engine.connect() as conn:
            count = conn.scalar(sa.select(sa.func.count()).select_from(t.events)) or 0
            last = conn.scalar(sa.select(t.events.c.hash).order_by(t.events.c.id.desc()).limit(1))
        return int(count), last or ""

    def count(self, action: str) -> int:
        """How many events of one action the chain holds."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                sa.select(sa.func.count()).select_from(t.events).where(t.events.c.action == action)
            )
        return int(found or 0)

    def hash_at(self, position: int) -> str | None:
        """The hash of the `position`-th event (1-based, in chain order), if there is one."""
        if position < 1:
            return ""
        with self.engine.connect() as conn:
            found: str | None = conn.scalar(
                sa.select(t.events.c.hash).order_by(t.events.c.id).offset(position - 1).limit(1)
            )
        return found

    def verify(self) -> ChainReport:
        """Recompute every event's hash and link; report the problems found."""
        problems: list[ChainProblem] = []
        previous = ""
        count = 0
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(t.events).order_by(t.events.c.id)):
                count += 1
                if r.prev_hash != previous:
                    problems.append(ChainProblem(
                        r.id,
                        "does not link to the event before it (an event was deleted or reordered)",
                    ))  # fmt: skip
                expected = chain_hash(r.prev_hash or "", as_utc(r.at), r.actor, r.action,
                                      r.subject, r.details)  # fmt: skip
                if r.hash != expected:
                    problems.append(ChainProblem(
                        r.id, "its content does not match its hash (the event was edited)"
                    ))  # fmt: skip
                previous = r.hash or ""
        return ChainReport(count, previous, tuple(problems))
