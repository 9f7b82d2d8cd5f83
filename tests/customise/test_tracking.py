"""Fine-tuning with `--eval` (the base and the adapter evaluated on the same items, the
difference in the adapter's card) and `--mlflow` (the run logged to a real MLflow tracking
server started on loopback by `.ci/run`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from customise.conftest import KESTREL, depot_cli
from modeldepot.config import Settings
from modeldepot.depot import Depot

pytestmark = pytest.mark.slow

MLFLOW_URL = os.environ.get("DEPOT_TEST_MLFLOW_URL")


@pytest.fixture(scope="module")
def mlflow() -> str:
    if not MLFLOW_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the MLflow tests: DEPOT_TEST_MLFLOW_URL is not set")
        pytest.skip("DEPOT_TEST_MLFLOW_URL not set (.ci/mlflow.sh starts a server)")
    return MLFLOW_URL


def test_evaluation_before_and_after_logged_to_mlflow(base_home: Path, mlflow: str) -> None:
    done = depot_cli(base_home, "finetune", "smollm2", "--data", str(KESTREL), "--name",
                     "tracked", "--max-steps", "2", "--batch-size", "4", "--eval",
                     "kestrel_facts", "--eval-limit", "4", "--mlflow", mlflow,
                     "--json")  # fmt: skip
    result = json.loads(done.stdout)
    [row] = result["comparisons"]
    assert (
        row["task"] == "kestrel_facts" and row["items"] == 4 and row["against"] == "smollm2:latest"
    )
    assert row["low"] <= row["difference"] <= row["high"]
    with Depot(Settings(home=base_home, user="tests")) as depot:
        card = depot.documents.card(depot.names.show("tracked"))
    assert "## Before and after (against smollm2:latest)" in card
    assert "| kestrel_facts | contains |" in card

    run_id = result["job"]["progress"]["mlflow_run"]
    api = f"{mlflow}/api/2.0/mlflow"
    run = httpx.get(f"{api}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["rank"] == "16" and params["base"] == "smollm2:latest"
    assert params["result"] == "tracked:latest"
    assert params["dataset_digest"].startswith("sha256:")
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert {"loss", "val_loss", "kestrel_facts.contains.before",
            "kestrel_facts.contains.after"} <= set(metrics)  # fmt: skip
    history = httpx.get(
        f"{api}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
    ).json()["metrics"]
    assert sorted(m["step"] for m in history) == [1, 2]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["modeldepot.job"] == result["job"]["id"]


def test_unreachable_tracking_server_is_refused_before_training(base_home: Path) -> None:
    before = depot_cli(base_home, "jobs", "--json").stdout
    done = depot_cli(base_home, "finetune", "smollm2", "--data", str(KESTREL), "--name",
                     "untracked", "--mlflow", "http://127.0.0.1:9", check=False)  # fmt: skip
    assert done.returncode == 1 and "cannot be reached" in done.stderr
    assert depot_cli(base_home, "jobs", "--json").stdout == before
