"""Which models are loaded: load on first use, keep for a keep-alive time, unload the least
recently used when the memory budget would be exceeded, and restart a model whose engine died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from modeldepot.errors import DepotError
from modeldepot.runtime.engine import EngineSpec
from modeldepot.runtime.process import EngineProcess, ModelUnavailable

__all__ = ["EnginePool", "Launcher", "PoolStatus", "QueueFull"]

log = logging.getLogger("modeldepot.runtime")

Launcher = Callable[[EngineSpec], EngineProcess]
"""Starts an engine process for a spec (a fake one in tests, as Ollama's scheduler takes a
server factory)."""


class QueueFull(DepotError):
    """A model has as many requests in flight as it may hold (HTTP 429)."""

    http_status = 429


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
    engine: str
    """The engine plugin running it (`llama-server`, `vllm`, ...)."""


class EnginePool:
    """Loaded engines by spec key (digest and kind), most recently used last."""

    def __init__(
        self, launcher: Launcher, *, budget: int, keep_alive: float, queue_limit: int = 1 << 30
    ) -> None:
        self._launch = launcher
        self.budget = budget
        self.keep_alive = keep_alive
        self.queue_limit = queue_limit
        self._loaded: OrderedDict[str, EngineProcess] = OrderedDict()
        self._loading: dict[str, asyncio.Lock] = {}
        self._admit = asyncio.Lock()
        self._retired: set[str] = set()

    @contextlib.asynccontextmanager
    async def use(
        self, spec: EngineSpec, keep_alive: float | None = None
    ) -> AsyncIterator[EngineProcess]:
        """The running engine for `spec`, started if needed, counted busy while in use.
        `keep_alive`: seconds it stays loaded once idle from now on (0: unloaded as soon as
        its last request ends; infinite: until stopped), as Ollama's `keep_alive` asks."""
        engine = await self._get(spec)
        if engine.active >= self.queue_limit:
            raise QueueFull(
                f"{spec.name} has {engine.active} requests in flight, its limit "
                "(DEPOT_MAX_QUEUE); retry shortly"
            )
        engine.active += 1
        try:
            yield engine
        finally:
            engine.active -= 1
            engine.last_used = time.monotonic()
            if keep_alive is not None:
                engine.keep_alive = keep_alive
            if engine.active == 0 and spec.key in self._retired:
                await self._unload(spec.key, "superseded by a new set of adapters")
            elif engine.active == 0 and engine.keep_alive == 0:
                await self._unload(spec.key, "its last request asked to unload it")

    async def _get(self, spec: EngineSpec) -> EngineProcess:
        lock = self._loading.setdefault(spec.key, asyncio.Lock())
        async with lock:
            engine = self._loaded.get(spec.key)
            if engine is not None and engine.alive:
                self._loaded.move_to_end(spec.key)
                engine.last_used = time.monotonic()
                return engine
            if engine is not None:  # its engine died: forget it and start a new one
                _died(engine)
                self._loaded.pop(spec.key)
            async with self._admit:
                await self._make_room(spec)
                engine = await asyncio.to_thread(self._launch, spec)
                self._loaded[spec.key] = engine
                # The same version with another set of adapters: superseded. It answers the
                # requests it holds and is unloaded once idle.
                self._retired.update(
                    k for k, e in self._loaded.items()
                    if k != spec.key and e.spec.digest == spec.digest and e.spec.kind == spec.kind
                )  # fmt: skip
            return engine

    async def _make_room(self, spec: EngineSpec) -> None:
        if spec.memory > self.budget:
            raise ModelUnavailable(
                f"{spec.name} needs about {spec.memory / 2**30:.1f} GiB, more than the memory "
                f"budget of {self.budget / 2**30:.1f} GiB (DEPOT_MAX_MEMORY)"
            )
        while self.used + spec.memory > self.budget:
            idle = [d for d, r in self._loaded.items() if r.active == 0]
            if not idle:
                raise ModelUnavailable(
                    f"no memory to load {spec.name}: every loaded model is busy; try again"
                )
            await self._unload(idle[0], f"to make room for {spec.name}")

    @property
    def used(self) -> int:
        return sum(r.spec.memory for r in self._loaded.values() if r.alive)

    async def _unload(self, digest: str, why: str) -> None:
        self._retired.discard(digest)
        engine = self._loaded.pop(digest, None)
        if engine is not None:
            if engine.alive:
                log.info("unloading %s (%s engine pid %d): %s", engine.spec.name,
                         engine.spec.kind, engine.process.pid, why)  # fmt: skip
            await asyncio.to_thread(engine.stop)

    async def reap(self) -> None:
        """Unload models idle longer than the keep-alive time, and forget dead engines."""
        now = time.monotonic()
        for digest, engine in list(self._loaded.items()):
            keep = self.keep_alive if engine.keep_alive is None else engine.keep_alive
            if not engine.alive:
                _died(engine)
                await self._unload(digest, "its engine died")
            elif engine.active == 0 and digest in self._retired:
                await self._unload(digest, "superseded by a new set of adapters")
            elif engine.active == 0 and now - engine.last_used > keep:
                await self._unload(digest, f"idle for {keep:g} s")

    async def run_reaper(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            await self.reap()

    def expires(self, engine: EngineProcess) -> float | None:
        """Seconds until `engine` is unloaded if no request comes (None: never; 0 while a
        request holds it counts from its end)."""
        keep = self.keep_alive if engine.keep_alive is None else engine.keep_alive
        if keep == float("inf"):
            return None
        idle = 0.0 if engine.active else time.monotonic() - engine.last_used
        return max(0.0, keep - idle)

    def engines(self) -> list[EngineProcess]:
        """The loaded engines, least recently used first."""
        return list(self._loaded.values())

    async def stop(self, digest: str) -> list[PoolStatus]:
        """Unload every engine of the version `digest` (waiting for none of its requests: they
        fail as if the engine had died). Returns what was stopped."""
        stopped = [s for s in self.status() if s.digest == digest]
        for key in [k for k, e in self._loaded.items() if e.spec.digest == digest]:
            await self._unload(key, "stopped on request")
        return stopped

    async def close(self) -> None:
        for digest in list(self._loaded):
            await self._unload(digest, "the server is stopping")

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
                r.spec.engine,
            )
            for r in self._loaded.values()
        ]

    def get(self, digest: str) -> EngineProcess | None:
        return self._loaded.get(digest)


def _died(engine: EngineProcess) -> None:
    log.warning("the %s engine of %s (pid %d) died (exit code %s); its log: %s",
                engine.spec.kind, engine.spec.name, engine.process.pid,
                engine.process.returncode, engine.log_path)  # fmt: skip
