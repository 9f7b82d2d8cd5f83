"""The store lock: imports share it, garbage collection takes it alone.

Many imports may run at once (each writes its own temporary files and renames blobs into
place atomically); `gc` must not run during any of them, or it would delete blobs an import
has written but not yet recorded. An advisory `flock` on `DEPOT_HOME/store.lock` gives exactly
that, and the kernel releases it when a process dies, even by `kill -9`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from modeldepot.errors import StoreLocked

__all__ = ["StoreLock"]


class StoreLock:
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
                        raise StoreLocked(
                            f"the store at {self.path.parent} is busy ({what} is waiting for "
                            "another depot command to finish); try again when it has"
                        ) from None
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
