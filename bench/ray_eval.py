"""Evaluation on Ray: the same evaluation run locally (through a depot server) and spread over
a Ray head with two workers (`depot eval --ray`), one run: the scores must be equal, and the
speed ratio is reported. On one 2-core machine the workers share the cores with the server,
so this measures the cost of the distribution, not a cluster's gain.

    python bench/ray_eval.py [--task bbh_navigate] [--limit 60]

Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import write_section
from serve_speed import free_port, wait_http

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="bbh_navigate")
    parser.add_argument("--limit", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "DEPOT_THREADS": "2"}
    served = work / "served"
    subprocess.run([str(BIN / "depot"), "pull", "smollm2"], env={**env, "DEPOT_HOME": str(served)},
                   check=True, capture_output=True)  # fmt: skip
    port, ray_port = free_port(), free_port()
    server = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)],
                              env={**env, "DEPOT_HOME": str(served)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
                    "--port", str(ray_port), "--num-cpus", "2", "--include-dashboard=false",
                    "--disable-usage-stats", "--object-store-memory", str(100 * 1024**2),
                    "--temp-dir", str(work / "ray")], env=env, check=True,
                   capture_output=True)  # fmt: skip
    timings, scores = {}, {}
    try:
        wait_http(f"{url}/health", server)
        for name, extra in (("local", []), ("ray", ["--ray", f"127.0.0.1:{ray_port}",
                                                    "--ray-workers", "2"])):  # fmt: skip
            home = work / name
            subprocess.run([str(BIN / "depot"), "pull", "smollm2"],
                           env={**env, "DEPOT_HOME": str(home)}, check=True,
                           capture_output=True)  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run([str(BIN / "depot"), "eval", "smollm2", "--task", args.task,
                                   "--limit", str(args.limit), "--server", url, "--json",
                                   *extra], env={**env, "DEPOT_HOME": str(home)}, check=True,
                                  capture_output=True, text=True)  # fmt: skip
            timings[name] = time.perf_counter() - started
            scores[name] = json.loads(done.stdout)[0]["metrics"]
    finally:
        server.terminate()
        server.wait()
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    same = scores["local"] == scores["ray"]
    metric = next(iter(scores["local"]))
    command = f"python bench/ray_eval.py --task {args.task} --limit {args.limit}"
    print(write_section("ray-eval", [
        "## Evaluation on Ray",
        "",
        f"`{command}` ({os.cpu_count()} cores shared by the depot server, its engine and the "
        f"Ray head; {args.limit} items of {args.task}, each run in a fresh home so nothing "
        "comes from a cache)",
        "",
        "| run | seconds | " + metric + " | ratio |",
        "|---|---|---|---|",
        f"| local (`--server`) | {timings['local']:.1f} | "
        f"{scores['local'][metric]['value']:.4f} | 1.00x |",
        f"| Ray, 2 workers (`--ray`) | {timings['ray']:.1f} | {scores['ray'][metric]['value']:.4f} "
        f"| {timings['local'] / timings['ray']:.2f}x |",
        "",
        f"Scores identical: **{'yes' if same else 'no'}** (every metric and its standard error).",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
