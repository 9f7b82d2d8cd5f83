"""vLLM behind the depot: the depot's OpenAI API over a vLLM engine against a client straight to
the same vLLM server, and, on CPU, vLLM against llama-server on the same model, for the record.

    python bench/vllm_speed.py [--threads 2] [--tokens 64] [--rounds 3] [--type f32]
    python bench/vllm_speed.py --device cuda --sizes 1,8,64 --type bf16 \\
        --results bench/gpu/RESULTS.md            (on a GPU machine: bench/gpu/README.md)

The packaged SmolLM2 is converted to a Hugging Face folder (`depot convert --to hf`, f32 by
default: the dequantised Q4_1 values), or `--folder` names a Hugging Face folder to import, and
`depot serve` serves it on vLLM (`make vllm`, or DEPOT_VLLM_PYTHON). Streams are read with the
depot's raw-socket reader (bench/serve_speed.py); rounds interleave the depot and the direct
client at each number of streams and, on CPU, the GGUF itself through the same API on
llama-server (Q4_1, so not the same arithmetic: a record, not a contest; an idle engine takes no
CPU, so both stay loaded). Writes its section of the results file with the machine's load
average, since a machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
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
from modeldepot.customise import transforms
from modeldepot.depot import Depot
from results import RESULTS, write_section
from serve_speed import _engine_url, concurrent, decode_rate, end_to_end, free_port, wait_http

BIN = Path(sys.executable).parent
MODEL = "bench-hf"


def _vllm_python() -> str:
    given = os.environ.get("DEPOT_VLLM_PYTHON")
    found = Path(given) if given else BIN / "vllm-python"
    if not found.is_file():
        raise SystemExit("vLLM is not installed: `make vllm` (or set DEPOT_VLLM_PYTHON)")
    return str(found)


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _ratios(a: list[float], b: list[float]) -> str:
    """The median of each round's ratio (its two runs were next to each other in time, so a
    busy spell of the machine falls on both), and the range over the rounds."""
    each = sorted(x / y for x, y in zip(a, b, strict=True))
    return f"{median(each):.2f}x ({each[0]:.2f}-{each[-1]:.2f})"


def _streams(n: int) -> str:
    return f"{n} stream{'s' if n > 1 else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,4")
    parser.add_argument("--type", dest="outtype", default="f32", choices=["f32", "bf16", "f16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--folder", type=Path, help="a Hugging Face folder to serve instead")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    vllm = _vllm_python()
    home = Path(tempfile.mkdtemp(prefix="vllm-bench-"))
    with Depot(Settings(home=home, user="bench")) as depot:
        depot.intake.pull("smollm2")
        if args.folder:
            described = f"{args.folder.name} (imported)"
            depot.intake.import_path(args.folder, MODEL)
        else:
            described = f"SmolLM2-135M, {args.outtype}"
            transforms.convert(depot, "smollm2", to="hf", outtype=args.outtype, name=MODEL)
    load_before = _load()
    port = free_port()
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": str(args.threads),
           "DEPOT_PARALLEL": str(max(sizes)), "DEPOT_CONTEXT": str(args.tokens + 1024),
           "DEPOT_VLLM_PYTHON": vllm, "DEPOT_DEVICE": args.device}  # fmt: skip
    depot_proc = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    via: dict[int, list[float]] = {n: [] for n in sizes}
    direct: dict[int, list[float]] = {n: [] for n in sizes}
    via_e2e: dict[int, list[float]] = {n: [] for n in sizes}
    llama: dict[int, list[float]] = {n: [] for n in sizes}
    try:
        wait_http(f"{url}/health", depot_proc)
        started = time.perf_counter()
        asyncio.run(concurrent(url, MODEL, 1, 4))  # vLLM starts outside the timings
        start_seconds = time.perf_counter() - started
        loaded = httpx.get(f"{url}/health").json()["loaded"]
        engine = next(e for e in loaded if e["name"] == f"{MODEL}:latest")
        engine_url = _engine_url(engine["pid"])
        assert engine_url is not None
        asyncio.run(concurrent(engine_url, f"{MODEL}:latest", 1, 4))
        compare = args.device == "cpu"
        if compare:  # loaded too: an idle engine takes no CPU (measured), so rounds interleave
            asyncio.run(concurrent(url, "smollm2", 1, 4))
        for _ in range(args.rounds):
            for n in sizes:
                streams = asyncio.run(concurrent(url, MODEL, n, args.tokens))
                via[n].append(decode_rate(streams))
                via_e2e[n].append(end_to_end(streams))
                streams = asyncio.run(concurrent(engine_url, f"{MODEL}:latest", n, args.tokens))
                direct[n].append(decode_rate(streams))
                if compare:
                    streams = asyncio.run(concurrent(url, "smollm2", n, args.tokens))
                    llama[n].append(decode_rate(streams))
    finally:
        depot_proc.terminate()
        depot_proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    load_after = _load()

    where = "CPU" if args.device == "cpu" else "GPU"
    eager = ", `--enforce-eager`" if args.device == "cpu" else ""
    lines = [
        f"## vLLM behind the depot ({described}, {where})",
        "",
        f"Command: `python bench/vllm_speed.py --device {args.device} --threads {args.threads} "
        f"--tokens {args.tokens} --rounds {args.rounds} --sizes {args.sizes} --type "
        f"{args.outtype}{f' --folder {args.folder}' if args.folder else ''}` (vLLM 0.32.0"
        f"{eager}, {args.threads} threads, {args.tokens} tokens per stream, ignore_eos, "
        f"temperature 0, {args.rounds} interleaved rounds, {time.strftime('%Y-%m-%d')}). Load "
        f"average (1/5/15 min) {load_before} before, {load_after} after. Rates in tokens/s "
        "(aggregate decode, while every stream decodes), medians over the rounds; a ratio is the "
        "median of each round's own ratio, with its range over the rounds.",
        "",
        "| what | depot API | reference | ratio |",
        "| --- | ---: | --- | ---: |",
    ]
    for n in sizes:
        a, b, r = median(via[n]), median(direct[n]), _ratios(via[n], direct[n])
        lines.append(f"| decode, {_streams(n)} | {a:.1f} | client straight to vLLM: {b:.1f} | "
                     f"**{r}** |")  # fmt: skip
    for n in sizes if llama[sizes[0]] else []:
        a, b, r = median(via[n]), median(llama[n]), _ratios(via[n], llama[n])
        lines.append(f"| decode, {_streams(n)}, both through the depot | vLLM {args.outtype}: "
                     f"{a:.1f} | llama-server Q4_1: {b:.1f} | {r} |")  # fmt: skip
    lines += [
        "",
        "End to end through the depot (first request to last token): "
        + ", ".join(f"{median(via_e2e[n]):.1f} at {_streams(n)}" for n in sizes)
        + f" tokens/s. vLLM's first answer came {start_seconds:.0f} s after the first request "
        "(the engine's start).",
    ]
    print(write_section(f"vllm_speed:{args.device}", lines, args.results))


if __name__ == "__main__":
    main()
