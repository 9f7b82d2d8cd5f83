"""Monitor: what serving does, measured: per-request accounting (tokens, latency, time to first
token) recorded as usage, and the Prometheus metrics."""

from modeldepot.monitor.metrics import Metrics
from modeldepot.monitor.usage import Accounting

__all__ = ["Accounting", "Metrics"]
