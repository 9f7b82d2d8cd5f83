"""garak's own environment (`make garak`), for the red-team tests: CI demands it be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modeldepot.config import Settings


@pytest.fixture(scope="session")
def garak_python() -> Path:
    program = Settings.from_env().garak_program
    if not program.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the red-team tests: {program} is missing (make garak)")
        pytest.skip(f"{program} is missing: `make garak` builds garak's environment")
    return program
