"""A remote model (a second depot on loopback that requires a key, standing for a proprietary
API) is evaluated through the gateway on the same items as the local one, by the letter it
writes; the same model on both sides scores identically, item by item."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.gateway import Remote
from server.conftest import free_port, start_server

pytestmark = pytest.mark.slow
DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


def test_remote_model_scored_on_the_same_items(tmp_path: Path) -> None:
    upstream_home = tmp_path / "upstream"
    with Depot(Settings(home=upstream_home)) as depot:
        depot.intake.pull("smollm2")
    upstream, upstream_url = start_server(upstream_home, DEPOT_API_KEYS="upstream-secret",
                                          DEPOT_CONTEXT="2048")  # fmt: skip
    home = tmp_path / "front"
    try:
        with Depot(Settings(home=home, user="admin")) as depot:
            depot.intake.pull("smollm2")
            depot.gateway.add_remote(Remote("cloud", f"{upstream_url}/v1", "smollm2", "CLOUD_KEY"))
        env = {**os.environ, "DEPOT_HOME": str(home), "CLOUD_KEY": "upstream-secret",
               "DEPOT_CONTEXT": "2048"}  # fmt: skip
        env.pop("DEPOT_DATABASE_URL", None)

        def run(*args: str) -> list[dict[str, object]]:
            done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            return json.loads(done.stdout)  # type: ignore[no-any-return]

        remote = run("eval", "cloud", "--task", "bbh_navigate", "--limit", "8", "--json")[0]
        assert remote["subject"] == "remote:cloud" and set(remote["metrics"]) == {"acc_letter"}
        local = run("eval", "smollm2", "--task", "bbh_navigate", "--limit", "8", "--mc",
                    "letter", "--json")[0]  # fmt: skip
        assert local["metrics"] == remote["metrics"]
        gap = run("eval", "compare", "smollm2", "cloud", "--chart", str(tmp_path / "c.svg"),
                  "--json")  # fmt: skip
        row = next(r for r in gap if r["label"] == "bbh_navigate")
        assert row["metric"] == "acc_letter" and row["items"] == 8
        assert row["difference"] == 0 and row["low"] == 0 == row["high"]
        # An alias whose first target is down: the fallback answers, and the result is
        # recorded under the model that answered, not under the alias's first target.
        with Depot(Settings(home=home, user="admin")) as depot:
            depot.gateway.add_remote(Remote("down", f"http://127.0.0.1:{free_port()}/v1", "x"))
            depot.gateway.set_alias("front", ["down", "smollm2"])
        fell = run("eval", "front", "--task", "bbh_navigate", "--limit", "8", "--mc", "letter",
                   "--json")[0]  # fmt: skip
        assert fell["subject"] == local["subject"] and fell["model"] == "smollm2:latest"
        assert fell["answered_by"] == {"smollm2:latest": 8}
        assert fell["metrics"] == local["metrics"]
    finally:
        upstream.terminate()
        upstream.wait(30)
