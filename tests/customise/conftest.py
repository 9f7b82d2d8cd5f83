"""A depot with SmolLM2 stored, a signing key, and a short fine-tune of it on the shipped Kestrel
data, made once through the command line for the customise tests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import DEPOT

KESTREL = Path(str(files("modeldepot.customise") / "data" / "kestrel.jsonl"))


def depot_cli(home: Path, *args: str, check: bool = True, timeout: float = 600,
              **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    environ = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2", **env}
    environ.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=environ, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("customise") / "depot"
    depot_cli(home, "pull", "smollm2")
    depot_cli(home, "keygen")
    return home


@pytest.fixture(scope="session")
def tuned(base_home: Path) -> dict[str, Any]:
    """`depot finetune smollm2 --data kestrel.jsonl --name kestrel --max-steps 3 --json`."""
    done = depot_cli(base_home, "finetune", "smollm2", "--data", str(KESTREL), "--name",
                     "kestrel", "--max-steps", "3", "--batch-size", "4", "--json")  # fmt: skip
    return dict(json.loads(done.stdout))


@pytest.fixture
def base_depot(base_home: Path) -> Iterator[Depot]:
    with Depot(Settings(home=base_home, user="tests")) as depot:
        yield depot
