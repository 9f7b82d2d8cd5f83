"""Which models are loaded: load on first use, keep for a keep-alive time, unload the least
recently used when the memory budget would be exceeded, and restart a model whose engine died.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from modeldepot.errors import DepotError
from modeldepot.runtime.runner import ModelUnavailable, Runner, RunnerSpec

__all__ = ["PoolStatus", "QueueFull", "RunnerPool"]

Launcher = Callable[[RunnerSpec], Runner]


class QueueFull(DepotError):
    """A model has as many requests in flight as it may hold (HTTP 429)."""


@dataclass(frozen=True)
class PoolStatus:
    name: str
    digest: str
    kind: str
    pid: int
    memory_estimate: int
    resident_memory: int
    active_requests: int
    idle_seconds: float


class RunnerPool:
    """Loaded runners by spec key (digest and kind), most recently used last."""

    def __init__(
        self, launcher: Launcher, *, budget: int, keep_alive: float, queue_limit: int = 1 << 30
    ) -> None:
        self._launch = launcher
        self.budget = budget
        self.keep_alive = keep_alive
        self.queue_limit = queue_limit
        self._runners: OrderedDict[str, Runner] = OrderedDict()
        self._loading: dict[str, asyncio.Lock] = {}
        self._admit = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def use(self, spec: RunnerSpec) -> AsyncIterator[Runner]:
        """The running engine for `spec`, started if needed, counted busy while in use."""
        runner = await self._get(spec)
        if runner.active >= self.queue_limit:
            raise QueueFull(
                f"{spec.name} has {runner.active} requests in flight, its limit "
                "(DEPOT_MAX_QUEUE); retry shortly"
            )
        runner.active += 1
        try:
            yield runner
        finally:
            runner.active -= 1
            runner.last_used = time.monotonic()

    async def _get(self, spec: RunnerSpec) -> Runner:
        lock = self._loading.setdefault(spec.key, asyncio.Lock())
        async with lock:
            runner = self._runners.get(spec.key)
            if runner is not None and runner.alive:
                self._runners.move_to_end(spec.key)
                runner.last_used = time.monotonic()
                return runner
            if runner is not None:  # its engine died: forget it and start a new one
                self._runners.pop(spec.key)
            async with self._admit:
                await self._make_room(spec)
                runner = await asyncio.to_thread(self._launch, spec)
                self._runners[spec.key] = runner
            return runner

    async def _make_room(self, spec: RunnerSpec) -> None:
        if spec.memory > self.budget:
            raise ModelUnavailable(
                f"{spec.name} needs about {spec.memory / 2**30:.1f} GiB, more than the memory "
                f"budget of {self.budget / 2**30:.1f} GiB (DEPOT_MAX_MEMORY)"
            )
        while self.used + spec.memory > self.budget:
            idle = [d for d, r in self._runners.items() if r.active == 0]
            if not idle:
                raise ModelUnavailable(
                    f"no memory to load {spec.name}: every loaded model is busy; try again"
                )
            await self._unload(idle[0])

    @property
    def used(self) -> int:
        return sum(r.spec.memory for r in self._runners.values() if r.alive)

    async def _unload(self, digest: str) -> None:
        runner = self._runners.pop(digest, None)
        if runner is not None:
            await asyncio.to_thread(runner.stop)

    async def reap(self) -> None:
        """Unload models idle longer than the keep-alive time, and forget dead engines."""
        now = time.monotonic()
        for digest, runner in list(self._runners.items()):
            if not runner.alive or (
                runner.active == 0 and now - runner.last_used > self.keep_alive
            ):
                await self._unload(digest)

    async def run_reaper(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            await self.reap()

    async def close(self) -> None:
        for digest in list(self._runners):
            await self._unload(digest)

    def status(self) -> list[PoolStatus]:
        now = time.monotonic()
        return [
            PoolStatus(
                r.spec.name,
                r.spec.digest,
                r.spec.kind,
                r.process.pid,
                r.spec.memory,
                r.resident_memory,
                r.active,
                now - r.last_used,
            )
            for r in self._runners.values()
        ]

    def get(self, digest: str) -> Runner | None:
        return self._runners.get(digest)
