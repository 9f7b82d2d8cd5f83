"""A real `depot serve` on loopback, with the packaged SmolLM2 stored, for the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import DEPOT, free_port, start_server

__all__ = ["DEPOT", "free_port", "start_server"]


@pytest.fixture(scope="session")
def server(served_home: Path) -> Iterator[str]:
    proc, url = start_server(served_home, DEPOT_PARALLEL="4", DEPOT_CONTEXT="2048",
                             DEPOT_THREADS="2")  # fmt: skip
    yield url
    proc.terminate()
    proc.wait(30)
