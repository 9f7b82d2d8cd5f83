"""Serving adapters: decode tokens/s of LoRA adapters served through the depot's API against
llama-server run directly with the same adapters, one run; the adapter against its base; and
a merged version (export-lora, then Q8_0 and Q4_1) against the base, with how many of the
invented Kestrel facts each still answers.

    python bench/adapter_serving.py [--threads 2] [--tokens 128] [--rounds 3] [--epochs 5]

Trains two adapters of the packaged SmolLM2 on the shipped Kestrel data (`depot finetune`,
seeds 1 and 2), then measures with the streaming client of bench/serve_speed.py:
- one stream on adapter A: the depot (its engine holds the base and both adapters, A chosen
  per request) against `llama-server --lora A` started by hand;
- four streams, two on each adapter: the depot against `llama-server --lora-scaled A:0
  --lora-scaled B:0` with the same per-request selection;
- adapter A against the base, both through the depot;
- merged (F16, then Q8_0 and Q4_1) against the base, and each one's score on kestrel_recall.
Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path
from statistics import median
from typing import Any

from modeldepot.config import Settings
from modeldepot.depot import Depot
from results import write_section
from serve_speed import Stream, decode_rate, free_port, one_stream, wait_http

BIN = Path(sys.executable).parent
DATA = Path(str(files("modeldepot.customise") / "data" / "kestrel.jsonl"))
PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def depot(home: Path, *args: str) -> dict[str, Any] | list[Any]:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    done = subprocess.run([str(BIN / "depot"), *args, "--json"], env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"depot {' '.join(args)}: {done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def streams(url: str, models: list[str], tokens: int,
                  extra: list[dict[str, Any]] | None = None) -> list[Stream]:  # fmt: skip
    """Concurrent streams, one per entry of `models` (with `extra` body fields each: a raw
    llama-server takes the adapter choice in the body)."""
    return list(await asyncio.gather(*(
        one_stream(url, m, tokens, PROMPT, extra[i] if extra else None)
        for i, m in enumerate(models))))  # fmt: skip


def rate(url: str, models: list[str], tokens: int,
         extra: list[dict[str, Any]] | None = None) -> float:  # fmt: skip
    return decode_rate(asyncio.run(streams(url, models, tokens, extra)))


def llama_server(weights: Path, loras: list[str], threads: int, parallel: int,
                 context: int) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
    port = free_port()
    argv = [str(BIN / "llama-server"), "-m", str(weights), "--port", str(port), "--host",
            "127.0.0.1", "-t", str(threads), "-tb", str(threads), "-c", str(context),
            "-np", str(parallel), "--jinja", "--no-webui"]  # fmt: skip
    for lora in loras:
        argv += ["--lora-scaled", lora] if ":" in lora else ["--lora", lora]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc)
    return proc, url


def recall(home: Path, model: str) -> float:
    rows = depot(home, "eval", model, "--task", "kestrel_recall")
    assert isinstance(rows, list)
    return float(rows[0]["metrics"]["contains"]["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="adapter-bench-"))
    depot(home, "pull", "smollm2")
    for name, seed in (("kestrel-a", 1), ("kestrel-b", 2)):
        depot(home, "finetune", "smollm2", "--data", str(DATA), "--name", name, "--epochs",
              str(args.epochs), "--seed", str(seed), "--threads", str(args.threads))  # fmt: skip
    depot(home, "merge", "kestrel-a", "--name", "kestrel-a-merged")
    depot(home, "quantize", "kestrel-a-merged", "--type", "Q8_0", "--name", "kestrel-a-q8")
    depot(home, "quantize", "kestrel-a-merged", "--type", "Q4_1", "--name", "kestrel-a-q4")
    shown = {n: depot(home, "show", n) for n in ("smollm2", "kestrel-a", "kestrel-b")}

    def blob(name: str, kind: str) -> Path:
        info = shown[name]
        assert isinstance(info, dict)
        digest = next(f["digest"] for f in info["files"] if f["kind"] == kind
                      and f["path"].endswith(".gguf"))  # fmt: skip
        with Depot(Settings(home=home, user="bench")) as opened:
            return opened.store.local_path(digest)

    base, lora_a, lora_b = (
        blob("smollm2", "weights"),
        blob("kestrel-a", "adapter"),
        blob("kestrel-b", "adapter"),
    )
    context = 4 * (args.tokens + 256)
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": str(args.threads),
           "DEPOT_PARALLEL": "4", "DEPOT_CONTEXT": str(args.tokens + 256)}  # fmt: skip
    port = free_port()
    server = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "depot-1",
            "direct-1",
            "depot-4",
            "direct-4",
            "base-1",
            "q8-1",
            "q4-1",
            "merged-1",
        )
    }
    pick = [{"lora": [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}]},
            {"lora": [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]}]  # fmt: skip
    try:
        wait_http(f"{url}/health", server)
        for name in ("kestrel-a", "kestrel-a-q8", "kestrel-a-q4", "kestrel-a-merged"):
            rate(url, [name], 8)  # load outside the timings
        for _ in range(args.rounds):  # interleaved rounds: the machine's noise falls on all
            results["depot-1"].append(rate(url, ["kestrel-a"], args.tokens))
            results["base-1"].append(rate(url, ["smollm2"], args.tokens))
            results["depot-4"].append(rate(url, ["kestrel-a", "kestrel-b"] * 2, args.tokens))
            for key, name in (("q8-1", "kestrel-a-q8"), ("q4-1", "kestrel-a-q4"),
                              ("merged-1", "kestrel-a-merged")):  # fmt: skip
                results[key].append(rate(url, [name], args.tokens))
            proc, direct = llama_server(base, [str(lora_a)], args.threads, 4, context)
            try:
                rate(direct, ["x"], 8)
                results["direct-1"].append(rate(direct, ["x"], args.tokens))
            finally:
                proc.terminate()
                proc.wait()
            proc, direct = llama_server(base, [f"{lora_a}:0", f"{lora_b}:0"], args.threads, 4,
                                        context)  # fmt: skip
            try:
                rate(direct, ["x"], 8, [pick[0]])
                results["direct-4"].append(rate(direct, ["x"] * 4, args.tokens, pick * 2))
            finally:
                proc.terminate()
                proc.wait()
    finally:
        server.terminate()
        server.wait()
    learned = {n: recall(home, n) for n in ("smollm2", "kestrel-a", "kestrel-a-merged",
                                             "kestrel-a-q8", "kestrel-a-q4")}  # fmt: skip
    shutil.rmtree(home, ignore_errors=True)
    m = {k: median(v) for k, v in results.items()}
    command = (f"python bench/adapter_serving.py --threads {args.threads} --tokens {args.tokens} "
               f"--rounds {args.rounds} --epochs {args.epochs}")  # fmt: skip
    print(write_section("adapter-serving", [
        "## Serving adapters (SmolLM2-135M Q4_1 + LoRA r=16, CPU)",
        "",
        f"`{command}` ({os.cpu_count()} cores, {args.threads} threads per engine; decode "
        f"tokens/s while every stream decodes, medians of {args.rounds} interleaved rounds; "
        "kestrel_recall: share of the 72 trained questions answered with the invented fact)",
        "",
        "| what | depot | compared with | ratio |",
        "|---|---|---|---|",
        f"| adapter, 1 stream | {m['depot-1']:.0f} | llama-server --lora A: "
        f"{m['direct-1']:.0f} | **{m['depot-1'] / m['direct-1']:.2f}x** |",
        f"| 2 adapters of one base, 4 streams (2 each) | {m['depot-4']:.0f} | llama-server "
        f"--lora-scaled A:0 B:0, same per-request choice: {m['direct-4']:.0f} | "
        f"**{m['depot-4'] / m['direct-4']:.2f}x** |",
        f"| adapter against its base, 1 stream | {m['depot-1']:.0f} | base: {m['base-1']:.0f} | "
        f"{m['depot-1'] / m['base-1']:.2f}x |",
        f"| merged F16, 1 stream | {m['merged-1']:.0f} | base: {m['base-1']:.0f} | "
        f"{m['merged-1'] / m['base-1']:.2f}x |",
        f"| merged then Q8_0, 1 stream | {m['q8-1']:.0f} | base: {m['base-1']:.0f} | "
        f"{m['q8-1'] / m['base-1']:.2f}x |",
        f"| merged then Q4_1, 1 stream | {m['q4-1']:.0f} | base: {m['base-1']:.0f} | "
        f"{m['q4-1'] / m['base-1']:.2f}x |",
        "",
        "kestrel_recall: " + ", ".join(f"{n} {v:.2f}" for n, v in learned.items()),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
