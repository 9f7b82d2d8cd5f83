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

__all__ = ["CAPABILITY", "KINDS", "REDTEAM", "SAFETY", "EvaluationRecord", "EvaluationStore"]

CAPABILITY = "capability"
SAFETY = "safety"
KINDS = (CAPABILITY, SAFETY)
REDTEAM = "redteam."
"""A red-team run is recorded as task `redteam.<probe module>` (kind SAFETY), its metrics the
attack success rate of the module and of each of its classes."""


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
    kind: str = CAPABILITY
    """CAPABILITY (what it can do) or SAFETY (red-teaming, bias, refusals)."""

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
                    at=result.at, actor=actor, kind=result.kind,
                )
            )  # fmt: skip
            summary = {m: v["value"] for m, v in result.metrics.items()}
            subject = result.subject  # `remote:NAME` names the model already
            if subject.startswith("sha256:"):  # a local version: its name and its digest
                subject = f"{result.model}@{subject}"
            self.registry.audit.append_in(conn, actor, "eval", subject,
                                 {"model": result.model, "task": result.task,
                                  "version": result.task_version, "metrics": summary,
                                  "items": len(result.items), "kind": result.kind})  # fmt: skip

    def results(self, subject: str | None = None, *, newest: bool = False,
                kind: str | None = CAPABILITY, subjects: list[str] | None = None,
                ) -> list[EvaluationRecord]:  # fmt: skip
        """The run kept of each (subject, task, task version): the one over the most items,
        the newest among equals; with `newest`, the newest whatever its size. Of one `kind`
        (capability unless asked; None: both), of one subject or of `subjects`."""
        query = sa.select(t.evaluations).order_by(t.evaluations.c.id)
        if subject is not None:
            query = query.where(t.evaluations.c.subject == subject)
        if subjects is not None:
            query = query.where(t.evaluations.c.subject.in_(subjects))
        if kind is not None:
            query = query.where(t.evaluations.c.kind == kind)
        kept: dict[tuple[str, str, str], EvaluationRecord] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                record = EvaluationRecord(
                    r.subject, r.model, r.task, r.task_version, r.category, dict(r.metrics),
                    dict(r.items), dict(r.settings), as_utc(r.at), r.kind,
                )  # fmt: skip
                key = (r.subject, r.task, r.task_version)
                if newest or key not in kept or record.size >= kept[key].size:
                    kept[key] = record
        return list(kept.values())

    def attack_success(self, subjects: list[str]) -> dict[str, dict[str, tuple[float, int]]]:
        """Per subject, the red-team results kept: probe module or class -> (attack success
        rate, outputs scored)."""
        found: dict[str, dict[str, tuple[float, int]]] = {s: {} for s in subjects}
        if not subjects:
            return found
        for r in self.results(kind=SAFETY, subjects=subjects):
            if r.task.startswith(REDTEAM):
                for probe, m in r.metrics.items():
                    found[r.subject][probe] = (float(m["value"]), int(m.get("n", 0)))
        return found


def now() -> datetime:
    return datetime.now(UTC)
