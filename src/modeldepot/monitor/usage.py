"""Per-request accounting: tokens, time to first token, decode speed; handed, once the response
is sent, to the metrics, to the key's quota and to the usage log (`registry.usage`), which is
not the audit chain: recording usage takes no global lock."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modeldepot.monitor.metrics import Metrics
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.usage import UsageRecord

__all__ = ["Accounting"]


@dataclass
class Accounting:
    metrics: Metrics
    spend: Callable[[ApiKey, str | None], None]
    """Releases the tokens reserved for the request, once its usage is recorded (called in a
    worker thread)."""
    record: Callable[[UsageRecord], None]
    """Writes the usage row (called in a worker thread)."""
    key: ApiKey
    model: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    status: int = 200
    prompt: int = 0
    completion: int = 0
    decode_rate: float | None = None
    reservation: str | None = None
    """The tokens reserved against the key's daily quota for this request."""
    events: int = 0
    """Stream events relayed: what a stream cut short (the client left) is charged."""
    prompt_bound: int = 0
    """A bound on the prompt's tokens, charged when the engine's count never came (a stream
    cut short, a client that left)."""
    _tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=4))

    def chunk(self, data: bytes) -> None:
        """A piece of a stream went to the client (the last few are kept for its usage)."""
        if self.first is None:
            self.first = time.perf_counter()
        self.events += data.count(b"data: {")
        self._tail.append(data)

    def read_body(self, body: dict[str, Any]) -> None:
        usage = body.get("usage") or {}
        timings = body.get("timings") or {}
        self.prompt = int(usage.get("prompt_tokens") or timings.get("prompt_n") or 0)
        self.completion = int(usage.get("completion_tokens") or timings.get("predicted_n") or 0)
        rate = timings.get("predicted_per_second")
        self.decode_rate = float(rate) if rate else None

    def end_of_stream(self) -> None:
        """Find the engine's closing usage or timings in the last events of the stream."""
        for line in reversed(b"".join(self._tail).split(b"\n")):
            if line.startswith(b"data: {") and (b'"usage"' in line or b'"timings"' in line):
                try:
                    self.read_body(json.loads(line[6:]))
                except json.JSONDecodeError:
                    continue
                return

    async def finish(self) -> None:
        elapsed = time.perf_counter() - self.started
        ttft = self.first - self.started if self.first is not None else None
        if self.events and not self.completion:  # cut short: each event carried a token
            self.completion = self.events
        if not self.prompt and self.status in (200, 499):  # the engine read it, uncounted
            self.prompt = self.prompt_bound
        self.metrics.observe(self.model, self.endpoint, self.status, self.prompt,
                             self.completion, ttft, self.decode_rate)  # fmt: skip
        usage = UsageRecord(
            key=self.key.name,
            model=self.model,
            endpoint=self.endpoint,
            status=self.status,
            prompt_tokens=self.prompt,
            completion_tokens=self.completion,
            latency_ms=round(elapsed * 1000, 1),
            ttft_ms=round(ttft * 1000, 1) if ttft is not None else None,
        )
        await asyncio.to_thread(self.record, usage)
        # Released after the usage is recorded, so the tokens are counted all along.
        await asyncio.to_thread(self.spend, self.key, self.reservation)
