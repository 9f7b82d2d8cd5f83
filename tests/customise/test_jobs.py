"""Fine-tuning as a job: killed with SIGKILL mid-training it leaves no version and resumes from
its last checkpoint without repeating a finished step; cancelled, it stops and leaves none."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from customise.conftest import KESTREL, depot_cli
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.jobs import Job
from servers import DEPOT

pytestmark = pytest.mark.slow


def _start(home: Path, *args: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2"}
    environ.pop("DEPOT_DATABASE_URL", None)
    return subprocess.Popen([*DEPOT, "finetune", "smollm2", "--data", str(KESTREL), *args],
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _job_at_step(home: Path, target: str, step: int, proc: subprocess.Popen[str]) -> Job:
    deadline = time.monotonic() + 300
    with Depot(Settings(home=home, user="tests")) as depot:
        while time.monotonic() < deadline:
            jobs = [j for j in depot.jobs.list() if j.target == target]
            if jobs and jobs[0].progress.get("step", 0) >= step:
                return jobs[0]
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
    raise AssertionError(f"{target} never reached step {step}")


def test_killed_job_leaves_no_version_and_resumes_without_repeating_steps(
    base_home: Path,
) -> None:
    proc = _start(base_home, "--name", "resumed", "--max-steps", "6", "--batch-size", "4")
    job = _job_at_step(base_home, "resumed:latest", 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with Depot(Settings(home=base_home, user="tests")) as depot:
        killed = depot.jobs.get(job.id)
        assert killed.status == "interrupted"
        losses_before = list(killed.progress["losses"])
    assert depot_cli(base_home, "show", "resumed", check=False).returncode != 0
    listed = json.loads(depot_cli(base_home, "jobs", "--json").stdout)
    assert next(j for j in listed if j["id"] == job.id)["status"] == "interrupted"

    done = depot_cli(base_home, "jobs", "resume", job.id)
    steps = [int(m) for m in re.findall(r"step (\d+)/6", done.stderr)]
    assert steps and steps[0] > len(losses_before) - 1 and steps[-1] == 6
    assert steps == list(range(steps[0], 7))  # each remaining step once
    with Depot(Settings(home=base_home, user="tests")) as depot:
        finished = depot.jobs.get(job.id)
        assert finished.status == "succeeded" and finished.result == "resumed:latest"
        version = depot.names.show("resumed")
        record = json.loads(depot.store.read_bytes(
            next(f.digest for f in version.files if f.path == "derivation.json")))  # fmt: skip
    assert len(record["losses"]) == 6
    # the steps done before the kill were kept, not trained again
    kept = min(len(losses_before), steps[0] - 1)
    assert kept >= 1
    assert record["losses"][:kept] == pytest.approx(losses_before[:kept], abs=1e-4)
    assert not (base_home / "jobs" / job.id).exists()  # its working folder is gone
    # a finished job cannot be resumed again
    again = depot_cli(base_home, "jobs", "resume", job.id, check=False)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def test_cancelled_job_stops_and_leaves_no_version(base_home: Path) -> None:
    proc = _start(base_home, "--name", "cancelled", "--max-steps", "200", "--batch-size", "4")
    job = _job_at_step(base_home, "cancelled:latest", 1, proc)
    depot_cli(base_home, "jobs", "cancel", job.id)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "stopped at step" in stderr
    with Depot(Settings(home=base_home, user="tests")) as depot:
        cancelled = depot.jobs.get(job.id)
        assert cancelled.status == "cancelled"
        assert cancelled.progress["step"] < 200
    assert depot_cli(base_home, "show", "cancelled", check=False).returncode != 0
    again = depot_cli(base_home, "jobs", "cancel", job.id, check=False)
    assert again.returncode == 2 and "already cancelled" in again.stderr
