"""Evaluation fidelity and speed: the depot against lm-evaluation-harness, same model file,
same items, same task file.

    python bench/eval_fidelity.py [--task navigate] [--limit 100]

One task YAML in lm-evaluation-harness's format, pointed at the vendored BIG-bench JSONL, is run
by both tools: lm-evaluation-harness 0.4.13 (from PyPI) through its `local-completions` model
against the depot's `/v1/completions` (with the model's tokenizer converted from the GGUF by
transformers, as that model needs), and `depot eval` reading the very same YAML. Both start from
an empty response cache. Reports acc and acc_norm with standard errors side by side, whether
they agree within one standard error, and items per second. Needs
`pip install 'lm-eval[api]==0.4.13' transformers` (`make bench` does it). Writes its section
of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from results import write_section

BIN = Path(sys.executable).parent
DATA = Path(__file__).parents[1] / "src" / "modeldepot" / "evaluation" / "data" / "bigbench"
PREFIX = {"navigate": "If you follow these instructions, do you return to the starting point?"
                      "\n\n",
          "sports_understanding": "Determine whether the following statement or statements "
                                  "are plausible or implausible:\n\n"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def task_yaml(folder: Path, name: str, shots: int) -> Path:
    """The task in lm-evaluation-harness's format; few-shot examples (the first `shots` items)
    in a split of their own, taken in order, so both tools build the same prompts."""
    rows = (DATA / f"{name}.jsonl").read_text().splitlines(keepends=True)
    (folder / "shots.jsonl").write_text("".join(rows[:shots]))
    (folder / "items.jsonl").write_text("".join(rows[shots:]))
    path = folder / f"depot_{name}.yaml"
    path.write_text(
        f"task: depot_{name}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n  data_files:\n"
        f"    test: {folder / 'items.jsonl'}\n    train: {folder / 'shots.jsonl'}\n"
        "test_split: test\n"
        "fewshot_split: train\n"
        f"num_fewshot: {shots}\n"
        "fewshot_config:\n  sampler: first_n\n"
        "output_type: multiple_choice\n"
        f"doc_to_text: {json.dumps(PREFIX.get(name, '') + 'Q: {{input}}' + chr(10) + 'A:')}\n"
        "doc_to_choice: '{{choices}}'\n"
        "doc_to_target: target\n"
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
        "metadata:\n  version: 1.0\n"
    )
    return path


def run_harness(args: argparse.Namespace, work: Path, env: dict[str, str]
                ) -> tuple[dict[str, Any], float]:  # fmt: skip
    """lm-evaluation-harness against `depot serve`, the server's scoring engine loaded first."""
    port = free_port()
    server = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    out = work / "lm-eval"
    shutil.rmtree(out, ignore_errors=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # load the scoring engine outside the timing
        httpx.post(f"http://127.0.0.1:{port}/v1/completions", timeout=120, json={
            "model": "smollm2", "prompt": "warm up", "max_tokens": 0, "echo": True,
            "logprobs": 0})  # fmt: skip
        model_args = (f"model=smollm2,base_url=http://127.0.0.1:{port}/v1/completions,"
                      f"tokenizer={work / 'tokenizer'},tokenizer_backend=huggingface,"
                      f"num_concurrent={args.concurrency},max_retries=3")  # fmt: skip
        started = time.perf_counter()
        harness_run = subprocess.run(
            [str(BIN / "lm_eval"), "--model", "local-completions", "--model_args", model_args,
             "--tasks", f"depot_{args.task}", "--include_path", str(work), "--num_fewshot",
             str(args.shots), "--limit", str(args.limit), "--output_path", str(out)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if harness_run.returncode != 0:
            raise SystemExit(f"lm_eval failed:\n{harness_run.stderr[-3000:]}")
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    found = next(out.rglob("results_*.json"))
    results: dict[str, Any] = json.loads(found.read_text())["results"][f"depot_{args.task}"]
    return results, seconds


def run_depot(args: argparse.Namespace, home: Path, yaml_path: Path, env: dict[str, str]
              ) -> tuple[dict[str, Any], float]:  # fmt: skip
    """`depot eval` on the same YAML, from an empty cache, process start and model load
    included."""
    (home / "eval-cache.db").unlink(missing_ok=True)
    started = time.perf_counter()
    command_line = [str(BIN / "depot"), "eval", "smollm2", "--task", str(yaml_path), "--limit",
                    str(args.limit), "--concurrency", str(args.concurrency), "--json"]  # fmt: skip
    done = subprocess.run(command_line, env=env, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    metrics: dict[str, Any] = json.loads(done.stdout)[0]["metrics"]
    return metrics, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="navigate", choices=sorted(PREFIX))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--shots", type=int, default=3, help="few-shot examples (BBH uses 3)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each tool")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    home = work / "depot"
    with Depot(Settings(home=home, user="bench")) as depot:
        version = depot.intake.pull("smollm2")
        gguf = depot.store.local_path(next(f.digest for f in version.files if f.kind == "weights"))
    from transformers import AutoTokenizer

    (work / "gguf").mkdir()
    os.symlink(gguf, work / "gguf" / "model.gguf")
    AutoTokenizer.from_pretrained(str(work / "gguf"), gguf_file="model.gguf").save_pretrained(
        str(work / "tokenizer"))  # fmt: skip
    yaml_path = task_yaml(work, args.task, args.shots)
    env = {
        **os.environ,
        "DEPOT_HOME": str(home),
        "DEPOT_THREADS": "2",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }

    rates: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        harness, harness_seconds = run_harness(args, work, env)
        mine, depot_seconds = run_depot(args, home, yaml_path, env)
        rates.append((args.limit / depot_seconds, args.limit / harness_seconds))
    shutil.rmtree(work, ignore_errors=True)

    rows = []
    for metric in ("acc", "acc_norm"):
        theirs, theirs_se = harness[f"{metric},none"], harness[f"{metric}_stderr,none"]
        ours, ours_se = mine[metric]["value"], mine[metric]["stderr"]
        agree = abs(ours - theirs) <= max(ours_se, theirs_se)
        rows.append(f"| {metric} | {ours:.3f} ± {ours_se:.3f} | {theirs:.3f} ± {theirs_se:.3f} | "
                    f"{'yes' if agree else '**no**'} |")  # fmt: skip
    ratios = [ours / theirs for ours, theirs in rates]
    middle = sorted(range(len(rates)), key=lambda i: ratios[i])[len(rates) // 2]
    ours_rate, theirs_rate = rates[middle]
    command = " ".join(["python", "bench/eval_fidelity.py", *sys.argv[1:]])
    lines = [
        f"## Evaluation fidelity and speed: SmolLM2, BIG-bench {args.task}",
        "",
        f"Command: `{command}` ({args.limit} items, {args.shots}-shot, one task YAML read by "
        "both tools, "
        f"{args.concurrency} concurrent requests each, empty caches, {args.rounds} rounds, "
        f"{time.strftime('%Y-%m-%d')})."
        " lm-evaluation-harness 0.4.13 `local-completions` against `depot serve` (one prompt "
        "per request, every token scored); the depot through `depot eval` (several items per "
        "request, decoded together, only the answers scored; process start and model load "
        "included). llama.cpp's numbers move by a few hundredths of a nat with the way tokens "
        "are batched, so items whose answers are that close can fall either way: agreement is "
        "judged within one standard error.",
        "",
        "| metric | depot | lm-evaluation-harness | within one SE |",
        "| --- | ---: | ---: | --- |",
        *rows,
        "",
        "| | depot | lm-evaluation-harness | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| items per second (median round) | {ours_rate:.2f} | {theirs_rate:.2f} | "
        f"**{ours_rate / theirs_rate:.2f}x** |",
        f"| every round | {', '.join(f'{o:.2f}' for o, _ in rates)} | "
        f"{', '.join(f'{t:.2f}' for _, t in rates)} | "
        f"{', '.join(f'{r:.2f}x' for r in ratios)} |",
    ]
    print(write_section(f"eval-fidelity:{args.task}", lines))


if __name__ == "__main__":
    main()
