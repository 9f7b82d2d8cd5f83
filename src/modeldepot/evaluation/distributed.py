"""Evaluation spread over a Ray cluster (`depot eval ... --ray ADDRESS --server URL`): each
(model, task) is cut into shards of items, each shard a Ray task that asks the depot server at
URL (the models live there, not in the workers) and returns its item results; the driver
aggregates and records them exactly as a local run does, so the scores are the same. The
response cache is the depot's own file, so a rerun or a killed run resumes (on one machine, or
with the depot's home on shared storage). Ray is the `ray` extra; nothing else imports it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from modeldepot.errors import PackageNotInstalled, UsageError
from modeldepot.evaluation.cache import ResponseCache
from modeldepot.evaluation.client import ModelRef, Models, RequestFailed
from modeldepot.evaluation.grading import ItemResult, Scorer
from modeldepot.evaluation.tasks import Task

__all__ = ["score_items_remotely", "shards"]


def shards(items: list[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
    """`items` in `count` contiguous shards (none empty)."""
    count = max(1, min(count, len(items)))
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _score_shard(server: str, api_key: str | None, cache_path: str, model: ModelRef,
                 task: Task, docs: list[dict[str, Any]], seed: int, mc_mode: str,
                 judge: ModelRef | None, concurrency: int
                 ) -> tuple[list[ItemResult], list[str], dict[str, int]]:  # fmt: skip
    """One shard, in a Ray worker: the items' results, failures and who answered."""
    from modeldepot.connection import over_http

    cache = ResponseCache(Path(cache_path))
    failed: list[str] = []

    async def main() -> list[ItemResult]:
        client = Models(lambda: over_http(server, api_key), cache, concurrency)
        async with client.running():
            scorer = Scorer(client, seed=seed, mc_mode=mc_mode, judge=judge)

            async def one(doc: dict[str, Any]) -> ItemResult | None:
                try:
                    return await scorer.item(model, task, doc)
                except RequestFailed as exc:
                    failed.append(f"{doc['_id']}: {exc}")
                    return None

            results = await asyncio.gather(*(one(doc) for doc in docs))
            return [r for r in results if r is not None]

    try:
        items = asyncio.run(main())
    finally:
        cache.close()
    return items, failed, {}


def score_items_remotely(address: str, server: str, api_key: str | None, cache: Path,
                         jobs: list[tuple[ModelRef, Task]], seed: int, mc_mode: str,
                         judge: ModelRef | None, concurrency: int, workers: int,
                         ) -> list[tuple[list[ItemResult], list[str]]]:  # fmt: skip
    """For each (model, task), its items' results and failures, computed on the Ray cluster
    at `address` in `workers` shards each."""
    try:
        import ray
    except ImportError:
        raise PackageNotInstalled(
            "evaluating on Ray needs the ray extra: pip install 'modeldepot[ray]'"
        ) from None
    if not server:
        raise UsageError("--ray needs --server URL: the workers ask that depot server")
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
             runtime_env={"env_vars": {"RAY_DEDUP_LOGS": "0"}})  # fmt: skip
    try:
        remote = ray.remote(num_cpus=0.1)(_score_shard)
        refs: list[list[Any]] = []
        for model, task in jobs:
            refs.append([
                remote.remote(server, api_key, str(cache), model, task, part, seed, mc_mode,
                              judge, concurrency)
                for part in shards(task.items(), workers)
            ])  # fmt: skip
        results = []
        for parts in refs:
            items: list[ItemResult] = []
            failed: list[str] = []
            for shard_items, shard_failed, _ in ray.get(parts):
                items += shard_items
                failed += shard_failed
            results.append((items, failed))
        return results
    finally:
        ray.shutdown()
