"""Running tasks against models: items sent concurrently, responses cached (so a killed run
resumes and a repeat is free), scores aggregated with standard errors and recorded in the
registry against the model version."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.evaluation.cache import ResponseCache
from modeldepot.evaluation.client import Connector, ModelRef, Models, RequestFailed, resolve_model
from modeldepot.evaluation.grading import ItemResult, Scorer
from modeldepot.evaluation.stats import bootstrap_stderr
from modeldepot.evaluation.stats import sacrebleu as _sacrebleu
from modeldepot.evaluation.tasks import Task, limited
from modeldepot.registry.evaluations import (
    CAPABILITY,
    SAFETY,
    EvaluationRecord,
    EvaluationStore,
    now,
)
from modeldepot.scores import Z95, interval, mean, mean_stderr, within

__all__ = ["RayCluster", "RunOptions", "TaskResult", "evaluate"]

log = logging.getLogger("modeldepot.evaluation")

_CORPUS = {"chrf", "bleu"}


@dataclass(frozen=True)
class RunOptions:
    seed: int = 1234
    mc_mode: str = "auto"
    judge: str | None = None
    concurrency: int = 4
    limit: int | None = None
    max_tokens: int | None = None
    """Caps every generated answer and verdict (a task's own `max_tokens` when lower)."""


@dataclass
class TaskResult:
    model: ModelRef
    task: Task
    metrics: dict[str, dict[str, float]]
    items: list[ItemResult]
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cached: int = 0
    answered_by: dict[str, int] = field(default_factory=dict)
    """The model that answered (an alias's target) and how many responses each gave."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.label,
            "subject": self.model.identity,
            "task": self.task.name,
            "version": self.task.version,
            "category": self.task.category,
            "metrics": self.metrics,
            "items": len(self.items),
            "failed": self.failed,
            "cached": self.cached,
            "seconds": round(self.seconds, 2),
            "answered_by": self.answered_by,
        }


def aggregate(task: Task, items: list[ItemResult]) -> dict[str, dict[str, float]]:
    metrics: dict[str, dict[str, float]] = {}
    names = [m for m in dict.fromkeys(k for it in items for k in it.scores)]
    ordered = [m for m in task.metrics if m in names] + [m for m in names if m not in task.metrics]
    for name in ordered:
        scored = [it for it in items if name in it.scores and not math.isnan(it.scores[name])]
        values = [it.scores[name] for it in scored]
        if not values:
            continue
        if name in _CORPUS:
            bleu = _sacrebleu()
            scorer = bleu.corpus_chrf if name == "chrf" else bleu.corpus_bleu

            def corpus(sample: Any, score: Any = scorer) -> float:
                hyps = [it.response for it in sample]
                refs = [[it.reference for it in sample]]
                return float(score(hyps, refs).score)

            value, stderr = corpus(scored), bootstrap_stderr(scored, corpus, rounds=200)
            low, high = value - Z95 * stderr, value + Z95 * stderr
        else:
            value, stderr = mean(values), mean_stderr(values)
            low, high = interval(values)
        low, high = within(name, low, high)  # every metric here lies in 0 to its scale
        metrics[name] = {"value": value, "stderr": stderr, "n": float(len(values)), "low": low,
                         "high": high}  # fmt: skip
    return metrics


async def _run_task(
    scorer: Scorer, model: ModelRef, task: Task, advance: Callable[[int], None]
) -> TaskResult:
    started = time.perf_counter()
    hits = scorer.models.cache.hits
    failed: list[str] = []

    async def one(doc: dict[str, Any]) -> ItemResult | None:
        try:
            return await scorer.item(model, task, doc)
        except RequestFailed as exc:
            failed.append(f"{doc['_id']}: {exc}")
            return None
        finally:
            advance(1)

    results = await asyncio.gather(*(one(doc) for doc in task.items()))
    items = [r for r in results if r is not None]
    answered = dict(scorer.models.answered[(model.name, task.name)].most_common())
    return TaskResult(model, task, aggregate(task, items), items, failed,
                      time.perf_counter() - started, scorer.models.cache.hits - hits,
                      answered)  # fmt: skip


def evaluate(
    depot: Depot,
    model_names: list[str],
    tasks: list[Task],
    options: RunOptions,
    *,
    connect: Connector,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    ray: RayCluster | None = None,
) -> list[TaskResult]:
    """Run every task against every model through `connect` (the depot's API), or spread over
    a Ray cluster (`ray`); results are recorded as they complete, each under the model that
    answered it."""
    models = [resolve_model(depot, name) for name in model_names]
    judge = resolve_model(depot, options.judge) if options.judge else None
    tasks = [limited(t, options.limit) for t in tasks]
    if options.max_tokens is not None:
        tasks = [dataclasses.replace(t, max_tokens=min(t.max_tokens, options.max_tokens))
                 for t in tasks]  # fmt: skip
    for task in tasks:
        if task.output == "judge" and judge is None:
            raise UsageError(f"task {task.name} is scored by a judge model: add --judge MODEL")
    store = EvaluationStore(depot.registry)
    if ray is not None:
        return _on_ray(depot, models, tasks, options, judge, store, ray)
    cache = ResponseCache(depot.settings.layout.eval_cache)
    results: list[TaskResult] = []

    async def main() -> None:
        client = Models(connect, cache, options.concurrency)
        async with client.running():
            scorer = Scorer(client, seed=options.seed, mc_mode=options.mc_mode, judge=judge,
                            judge_tokens=min(512, options.max_tokens or 512))  # fmt: skip
            for model in models:
                for task in tasks:
                    label = f"{model.name} {task.name}"
                    advance = progress(label, len(task.items())) if progress else (lambda n: None)
                    result = await _run_task(scorer, model, task, advance)
                    if model.alias and result.answered_by:
                        first = next(iter(result.answered_by))
                        result.model = resolve_model(depot, first)
                    results.append(result)
                    _logged(result)
                    if result.metrics:
                        store.record(_record(result, options, judge), actor=depot.settings.actor)

    log.info("evaluating %s on %s", ", ".join(m.label for m in models),
             ", ".join(t.name for t in tasks))  # fmt: skip
    try:
        asyncio.run(main())
    finally:
        cache.close()
    return results


@dataclass(frozen=True)
class RayCluster:
    address: str
    server: str
    """The depot server the workers ask."""
    api_key: str | None = None
    workers: int = 2
    """Shards per (model, task)."""


def _on_ray(depot: Depot, models: list[ModelRef], tasks: list[Task], options: RunOptions,
            judge: ModelRef | None, store: EvaluationStore,
            ray: RayCluster) -> list[TaskResult]:  # fmt: skip
    from modeldepot.evaluation.distributed import score_items_remotely

    if any(m.alias for m in models):
        raise UsageError("--ray evaluates models and remotes by name, not aliases")
    jobs = [(model, task) for model in models for task in tasks]
    started = time.perf_counter()
    found = score_items_remotely(
        ray.address, ray.server, ray.api_key, depot.settings.layout.eval_cache, jobs,
        options.seed, options.mc_mode, judge, options.concurrency, ray.workers)  # fmt: skip
    results = []
    for (model, task), (items, failed) in zip(jobs, found, strict=True):
        result = TaskResult(model, task, aggregate(task, items), items, failed,
                            time.perf_counter() - started)  # fmt: skip
        results.append(result)
        _logged(result)
        if result.metrics:
            store.record(_record(result, options, judge), actor=depot.settings.actor)
    return results


def _logged(result: TaskResult) -> None:
    """The run's line: its first metric over how many items, and what failed."""
    first = next(iter(result.metrics.items()), None)
    score = (f"{first[0]} {first[1]['value']:.4g} [{first[1]['low']:.4g}, {first[1]['high']:.4g}]"
             if first else "no score")  # fmt: skip
    log.info("evaluated %s (%s) on %s v%s: %s over %d items (%d cached) in %.1f s",
             result.model.label, result.model.identity, result.task.name, result.task.version,
             score, len(result.items), result.cached, result.seconds)  # fmt: skip
    if result.failed:
        log.warning("%d items of %s on %s failed, the first: %s", len(result.failed),
                    result.task.name, result.model.label, result.failed[0])  # fmt: skip


def _record(result: TaskResult, options: RunOptions, judge: ModelRef | None) -> EvaluationRecord:
    return EvaluationRecord(
        subject=result.model.identity,
        model=result.model.label,
        task=result.task.name,
        task_version=result.task.version,
        category=result.task.category,
        metrics=result.metrics,
        items={it.id: it.scores for it in result.items},
        settings={"seed": options.seed, "mc_mode": options.mc_mode, "limit": options.limit,
                  "max_tokens": options.max_tokens,
                  "judge": judge.label if judge else None, "failed": len(result.failed),
                  "answered_by": result.answered_by},
        at=now(),
        kind=SAFETY if result.task.category == SAFETY else CAPABILITY,
    )  # fmt: skip
