"""The audit log's hash chain.

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

from modeldepot.registry.records import as_utc

__all__ = ["ChainProblem", "ChainReport", "chain_hash"]


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
