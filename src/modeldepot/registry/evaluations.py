"""Evaluation results: one row per (model, task) run with its metrics and per-item scores, so
that two models can later be compared item by item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modeldepot.registry import schema as t
from modeldepot.registry.records import as_utc
from modeldepot.registry.versions import Registry

__all__ = ["EvaluationRecord", "EvaluationStore"]


@dataclass(frozen=True)
class EvaluationRecord:
    subject: str
    model: str
    task: str
    task_version: str
    category: str
    metrics: dict[str, dict[str, float]]
    """metric -> {"value", "stderr", "n"}"""
    items: dict[str, dict[str, float]]
    """item id -> metric -> score"""
    settings: dict[str, Any]
    at: datetime

    def primary(self) -> str | None:
        return next(iter(self.metrics), None)


class EvaluationStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = registry.engine

    def record(self, result: EvaluationRecord, *, actor: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.evaluations.insert().values(
                    subject=result.subject, model=result.model, task=result.task,
                    task_version=result.task_version, category=result.category,
                    metrics=result.metrics, items=result.items, settings=result.settings,
                    at=result.at, actor=actor,
                )
            )  # fmt: skip
            summary = {m: v["value"] for m, v in result.metrics.items()}
            self.registry.audit.append_in(conn, actor, "eval", result.subject,
                                 {"model": result.model, "task": result.task,
                                  "version": result.task_version, "metrics": summary})  # fmt: skip

    def latest(self, subject: str | None = None) -> list[EvaluationRecord]:
        """The newest result of each (subject, task, task version)."""
        query = sa.select(t.evaluations).order_by(t.evaluations.c.id)
        if subject is not None:
            query = query.where(t.evaluations.c.subject == subject)
        newest: dict[tuple[str, str, str], EvaluationRecord] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                newest[(r.subject, r.task, r.task_version)] = EvaluationRecord(
                    r.subject, r.model, r.task, r.task_version, r.category, dict(r.metrics),
                    dict(r.items), dict(r.settings), as_utc(r.at),
                )  # fmt: skip
        return list(newest.values())


def now() -> datetime:
    return datetime.now(UTC)
