"""Monitor: what serving does, measured: per-request accounting (tokens, latency, time to first
token) recorded as usage, and the Prometheus metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["Accounting", "Metrics"]

if TYPE_CHECKING:
    from modeldepot.monitor.metrics import Metrics
    from modeldepot.monitor.usage import Accounting
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {"modeldepot.monitor.metrics": ["Metrics"], "modeldepot.monitor.usage": ["Accounting"]},
    )
