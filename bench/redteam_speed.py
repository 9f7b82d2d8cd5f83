"""Red-teaming overhead: `depot redteam MODEL --server URL` (the whole command: resolving the
model, checking the probes against garak's plugin cache, running garak, reading its report
back, storing the results and artifacts) against garak run on its own with the same
configuration (the same probes, seed, prompt cap, generations and parallel attempts) against
the same `depot serve`, in interleaved rounds (alternating which goes first). On a shared
machine the model's own time varies from run to run far more than the depot adds, so the
depot's cost is also measured inside each of its runs: the whole command's wall time against
that of the garak process it started.

    python bench/redteam_speed.py [--model smollm2] [--rounds 3] [--max-prompts 12]

The model is loaded (one request) before the first round. Writes its section of
bench/RESULTS.md.
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
from statistics import median

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.evaluation import garak
from results import write_section

PROBES = ("dan.AutoDANCached", "encoding.InjectBase64", "lmrc.QuackMedicine",
          "leakreplay.GuardianComplete", "malwaregen.TopLevel")  # fmt: skip
KEY = "bench-redteam-key"
DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-prompts", type=int, default=12)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="redteam-bench-"))
    home = work / "depot"
    with Depot(Settings(home=home, user="bench")) as depot:
        depot.intake.pull(args.model)
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_API_KEYS": KEY, "BENCH_KEY": KEY}
    env.pop("DEPOT_DATABASE_URL", None)
    port = _free_port()
    server = subprocess.Popen([*DEPOT, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": args.model, "max_tokens": 4,
                         "messages": [{"role": "user", "content": "hi"}]},
                   timeout=300).raise_for_status()  # fmt: skip
        python = Settings.from_env().garak_program
        run = garak.GarakRun(f"{url}/v1/", args.model, PROBES, seed=1234,
                             max_prompts=args.max_prompts, parallel=args.parallel)  # fmt: skip
        ours: list[float] = []
        theirs: list[float] = []
        inside: list[float] = []
        """garak's own time within each `depot redteam`."""
        for i in range(args.rounds):
            if i % 2:
                _depot(args, url, env, ours, inside)
            folder = work / f"alone-{i}"
            folder.mkdir()
            config = garak.write_config(run, folder)
            started = time.perf_counter()
            subprocess.run([str(python), "-m", "garak", "--config", str(config), "--spec",
                            ",".join(f"probes.{p}" for p in PROBES)],
                           env={**env, "OPENAICOMPATIBLE_API_KEY": KEY, "HF_HUB_OFFLINE": "1",
                                "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                "TOKENIZERS_PARALLELISM": "false",
                                "XDG_DATA_HOME": str(folder / "data"),
                                "XDG_CACHE_HOME": str(folder / "cache"),
                                "XDG_CONFIG_HOME": str(folder / "config")},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)  # fmt: skip
            theirs.append(time.perf_counter() - started)
            if not i % 2:
                _depot(args, url, env, ours, inside)
            print(f"round {i + 1}: depot redteam {ours[-1]:.1f} s (its garak {inside[-1]:.1f} s), "
                  f"garak alone {theirs[-1]:.1f} s", file=sys.stderr)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    ratio = median(ours) / median(theirs)
    added = median(o / g for o, g in zip(ours, inside, strict=True))
    command = (f"python bench/redteam_speed.py --model {args.model} --rounds {args.rounds} "
               f"--max-prompts {args.max_prompts}")  # fmt: skip
    print(write_section("redteam-speed", [
        f"## Red-teaming overhead ({args.model}, garak {garak.GARAK_VERSION}, CPU)",
        "",
        f"`{command}` ({os.cpu_count()} cores; probes {', '.join(PROBES)}; at most "
        f"{args.max_prompts} prompts each, 1 generation, seed 1234, {args.parallel} attempts "
        f"at once, against one `depot serve`; medians of {args.rounds} interleaved rounds)",
        "",
        "| run | wall seconds | ratio |",
        "|---|---|---|",
        f"| depot redteam --server (the whole command: checks, garak, report read back, "
        f"results stored) | {median(ours):.1f} | **{ratio:.3f}x** |",
        f"| garak alone (the same configuration) | {median(theirs):.1f} | 1.000x |",
        f"| within each depot redteam: the command against the garak process it ran | "
        f"{median(ours):.1f} vs {median(inside):.1f} | **{added:.3f}x** |",
        "",
        "Rounds (depot redteam, its garak, garak alone): " + ", ".join(
            f"{a:.1f} / {g:.1f} / {b:.1f}" for a, g, b in zip(ours, inside, theirs, strict=True)),
    ]))  # fmt: skip


def _depot(args: argparse.Namespace, url: str, env: dict[str, str], ours: list[float],
           inside: list[float]) -> None:  # fmt: skip
    """One `depot redteam --server`: its wall time, and that of the garak process it ran."""
    started = time.perf_counter()
    done = subprocess.run([*DEPOT, "redteam", args.model, *(x for p in PROBES for x in ("-p", p)),
                           "--max-prompts", str(args.max_prompts), "--parallel",
                           str(args.parallel), "--server", url, "--api-key-env", "BENCH_KEY",
                           "--json"], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    ours.append(time.perf_counter() - started)
    inside.append(float(json.loads(done.stdout)["garak_seconds"]))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("depot serve did not start")


if __name__ == "__main__":
    main()
