"""Evaluation results: one row per (model, task) run with its metrics and per-item scores, so
that two models can later be compared item by item.

Of several runs of the same task (version) on the same model, the one kept is the run over the
most items, the newest among equals: a later `depot eval --limit 2` is recorded, but the full
run it did not repeat stays what the card, the leaderboard and comparisons show, unless the
newest run is asked for."""

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

    @property
    def size(self) -> int:
        """How many items it scored."""
        return len(self.items)


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
            subject = result.subject  # `remote:NAME` names the model already
            if subject.startswith("sha256:"):  # a local version: its name and its digest
                subject = f"{result.model}@{subject}"
            self.registry.audit.append_in(conn, actor, "eval", subject,
                                 {"model": result.model, "task": result.task,
                                  "version": result.task_version, "metrics": summary,
                                  "items": len(result.items)})  # fmt: skip

    def results(self, subject: str | None = None, *, newest: bool = False
                ) -> list[EvaluationRecord]:  # fmt: skip
        """The run kept of each (subject, task, task version): the one over the most items,
        the newest among equals; with `newest`, the newest whatever its size."""
        query = sa.select(t.evaluations).order_by(t.evaluations.c.id)
        if subject is not None:
            query = query.where(t.evaluations.c.subject == subject)
        kept: dict[tuple[str, str, str], EvaluationRecord] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                record = EvaluationRecord(
                    r.subject, r.model, r.task, r.task_version, r.category, dict(r.metrics),
                    dict(r.items), dict(r.settings), as_utc(r.at),
                )  # fmt: skip
                key = (r.subject, r.task, r.task_version)
                if newest or key not in kept or record.size >= kept[key].size:
                    kept[key] = record
        return list(kept.values())


def now() -> datetime:
    return datetime.now(UTC)
