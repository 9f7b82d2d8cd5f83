"""The store lock held in the registry, for depots on several machines that share a PostgreSQL
registry: session-level advisory locks, shared by imports and exclusive for gc, on a connection
kept open while the lock is held. PostgreSQL releases them when that connection ends, so a
holder killed with `kill -9` (or a machine that vanishes) frees the lease as `flock` would."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import sqlalchemy as sa

from modeldepot.store.lock import busy

__all__ = ["LeaseLock"]

_KEY = 7004002


class LeaseLock:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def _hold(self, shared: bool, timeout: float, what: str) -> Iterator[None]:
        kind = "_shared" if shared else ""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            deadline = time.monotonic() + timeout
            while not conn.scalar(sa.text(f"SELECT pg_try_advisory_lock{kind}({_KEY})")):
                if time.monotonic() >= deadline:
                    raise busy(str(self.engine.url.render_as_string()), what)
                time.sleep(0.05)
            try:
                yield
            finally:
                conn.execute(sa.text(f"SELECT pg_advisory_unlock{kind}({_KEY})"))

    def shared(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        return self._hold(True, timeout, "an import")

    def exclusive(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        return self._hold(False, timeout, "garbage collection")
