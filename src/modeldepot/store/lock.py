"""The store lock: imports share it, garbage collection takes it alone.

Many imports may run at once (each writes its own temporary files and renames blobs into
place atomically); `gc` must not run during any of them, or it would delete blobs an import
has written but not yet recorded. The lock is a strategy: on one machine an advisory `flock` on
`DEPOT_HOME/store.lock` (`FileLock`), which the kernel releases when a process dies, even by
`kill -9`; when several machines share a registry on PostgreSQL, a lease held in the registry
(`registry.lease.LeaseLock`), which the server releases when the holder's connection ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from modeldepot.errors import StoreLocked

__all__ = ["FileLock", "StoreLock"]


class StoreLock(Protocol):
    def shared(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Held while writing blobs and recording them (many holders at once)."""
        ...

    def exclusive(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Held by garbage collection and repairs (nobody else meanwhile); with timeout 0,
        raises StoreLocked at once when it is held."""
        ...


def busy(where: str, what: str) -> StoreLocked:
    return StoreLocked(
        f"the store at {where} is busy ({what} is waiting for another depot command to "
        "finish); try again when it has"
    )


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _hold(self, mode: int, timeout: float, what: str) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise busy(str(self.path.parent), what) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def shared(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Held while writing blobs and recording them (many holders at once)."""
        return self._hold(fcntl.LOCK_SH, timeout, "an import")

    def exclusive(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Held by garbage collection (no import may run meanwhile)."""
        return self._hold(fcntl.LOCK_EX, timeout, "garbage collection")
