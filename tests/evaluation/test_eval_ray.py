"""`depot eval --ray`: a real Ray head started on loopback (capped to the machine's cores, no
dashboard), the items of each task spread over it in shards, asking a running depot server;
the scores equal a local run's, item by item, and a repeat comes from the cache."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import DEPOT, start_server

pytestmark = pytest.mark.slow
RAY = Path(sys.executable).parent / "ray"


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not RAY.exists():
        pytest.fail("ray is not installed (the `ray` extra): make setup")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run(
        [str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", str(os.cpu_count() or 1), "--include-dashboard=false",
         "--disable-usage-stats", "--object-store-memory", str(100 * 1024**2),
         "--temp-dir", str(temp)], env=env, capture_output=True, text=True,
        timeout=180)  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"127.0.0.1:{port}"
    subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def server(served_home: Path) -> Iterator[str]:
    proc, url = start_server(served_home, DEPOT_THREADS="2")
    yield url
    proc.terminate()
    proc.wait(30)


def _eval(home: Path, server: str, *extra: str) -> list[dict[str, object]]:
    env = {**os.environ, "DEPOT_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("DEPOT_DATABASE_URL", None)
    if not (home / "registry.db").exists():  # the same version as the server's, by digest
        pulled = subprocess.run([*DEPOT, "pull", "smollm2"], env=env, capture_output=True,
                                text=True, timeout=300)  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
    done = subprocess.run([*DEPOT, "eval", "smollm2", "--task", "bbh_navigate", "--limit", "12",
                           "--server", server, "--json", *extra], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_ray_gives_the_local_scores(ray_head: str, server: str, served_home: Path,
                                    tmp_path: Path) -> None:  # fmt: skip
    on_ray = _eval(tmp_path / "ray", server, "--ray", ray_head, "--ray-workers", "3")
    local = _eval(tmp_path / "local", server)
    assert on_ray[0]["metrics"] == local[0]["metrics"]
    assert on_ray[0]["items"] == local[0]["items"] == 12
    # the results are recorded like a local run's: item by item, under the version
    from modeldepot.config import Settings
    from modeldepot.depot import Depot
    from modeldepot.registry.evaluations import EvaluationStore

    records = []
    for home in (tmp_path / "ray", tmp_path / "local"):
        with Depot(Settings(home=home, user="tests")) as depot:
            (record,) = EvaluationStore(depot.registry).results()
            records.append(record)
    assert records[0].items == records[1].items and len(records[0].items) == 12
    # a repeat on Ray comes from the cache the workers share with this depot
    again = _eval(tmp_path / "ray", server, "--ray", ray_head)
    assert again[0]["metrics"] == on_ray[0]["metrics"]
    refused = subprocess.run([*DEPOT, "eval", "smollm2", "--task", "bbh_navigate", "--ray",
                              ray_head], env={**os.environ, "DEPOT_HOME": str(tmp_path / "x")},
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "--ray needs --server" in refused.stderr


def test_batch_on_ray(ray_head: str, server: str, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({
        "custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "smollm2", "max_tokens": 2, "temperature": 0,
                 "messages": [{"role": "user", "content": f"Say {i}."}]},
    }) + "\n" for i in range(6)))  # fmt: skip
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "DEPOT_HOME": str(tmp_path / "home"), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, "batch", "run", str(source), "-o", str(out), "--server",
                           server, "--ray", ray_head, "--json"], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"q{i}" for i in range(6)]
    assert all(r["response"]["status_code"] == 200 for r in rows)
