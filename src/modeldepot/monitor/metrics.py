"""Prometheus metrics of the server (`GET /metrics`), in a registry of the app's own."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modeldepot.runtime.pool import EnginePool

__all__ = ["Metrics"]


class _PoolCollector(Collector):
    def __init__(self, pool: EnginePool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        status = self.pool.status()
        loaded = GaugeMetricFamily("depot_loaded_models", "Models loaded in an engine")
        loaded.add_metric([], len(status))
        memory = GaugeMetricFamily("depot_model_memory_bytes", "Resident memory of each engine",
                                   labels=["model"])  # fmt: skip
        active = GaugeMetricFamily("depot_active_requests", "Requests in flight per model",
                                   labels=["model"])  # fmt: skip
        for s in status:
            memory.add_metric([s.name], s.resident_memory)
            active.add_metric([s.name], s.active_requests)
        budget = GaugeMetricFamily("depot_memory_budget_bytes", "DEPOT_MAX_MEMORY")
        budget.add_metric([], self.pool.budget)
        yield from (loaded, memory, active, budget)


class Metrics:
    def __init__(self, pool: EnginePool) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("depot_requests", "API requests", ["model", "endpoint", "status"],
                                registry=self.registry)  # fmt: skip
        self.tokens = Counter("depot_tokens", "Tokens processed", ["model", "kind"],
                              registry=self.registry)  # fmt: skip
        self.ttft = Histogram("depot_time_to_first_token_seconds", "Time to the first streamed "
                              "token", ["model"], registry=self.registry,
                              buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))  # fmt: skip
        self.speed = Histogram("depot_decode_tokens_per_second", "Decode speed per request",
                               ["model"], registry=self.registry,
                               buckets=(5, 10, 25, 50, 100, 200, 400, 800))  # fmt: skip
        self.registry.register(_PoolCollector(pool))

    def observe(self, model: str, endpoint: str, status: int, prompt: int, completion: int,
                ttft: float | None, decode_rate: float | None) -> None:  # fmt: skip
        self.requests.labels(model, endpoint, str(status)).inc()
        if prompt:
            self.tokens.labels(model, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(model, "completion").inc(completion)
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
        if decode_rate:
            self.speed.labels(model).observe(decode_rate)
