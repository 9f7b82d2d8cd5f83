"""Downloading through the Hugging Face API: `hf_hub_download` of a 1 GiB file from a running
`depot serve` (`HF_ENDPOINT=.../hf`, the client unmodified: it takes the Xet path the depot
offers, through `hf_xet`) against `curl` of the same blob from the depot's own blob route; with
`curl` of the `/hf` URL and `hf_hub_download` made to read plain HTTP (`HF_HUB_DISABLE_XET=1`)
beside them, side by side in one run, interleaved. All write the file to the same disk; the
client's time is taken inside its process around the call (its import is not counted), so it
pays for its HEAD, its token, its reads and its move into the cache.

    python bench/hf_download.py [--size-mb 1024] [--rounds 8]
    python bench/hf_download.py --size-mb 512 --profile   # the plain HTTP path, profiled
    python bench/hf_download.py --sequence hf,hf,curl,hf  # runs in this order, each printed

Writes its table into bench/RESULTS.md (between its own markers) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from results import write_section

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
from servers import start_server  # noqa: E402

CLIENT = """
import json, sys, time
from huggingface_hub import hf_hub_download
start = time.perf_counter()
path = hf_hub_download("bench/big", "model.safetensors", cache_dir=sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "path": path}))
"""

PROFILE = """
import cProfile, pstats, sys
from huggingface_hub import hf_hub_download
with cProfile.Profile() as profile:
    hf_hub_download("bench/big", "model.safetensors", cache_dir=sys.argv[1])
pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
"""


def big_folder(folder: Path, size_mb: int) -> Path:
    """A Hugging Face folder whose `model.safetensors` holds one U8 tensor of `size_mb` MiB
    of random bytes (a real safetensors file the depot reads and scans)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"],
                                                    "model_type": "llama"}))  # fmt: skip
    size = size_mb * 1024 * 1024
    header = json.dumps({"big": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))
    return folder


def blob_url(base: str, digest: str) -> str:
    """The depot's own blob route (`/depot/api/blobs/...`, or `/api/blobs/...` on a depot
    that still serves its API there)."""
    for prefix in ("/depot/api", "/api"):
        url = f"{base}{prefix}/blobs/{digest}"
        with httpx.stream("GET", url) as answer:
            if answer.status_code == 200:
                return url
    raise SystemExit(f"no blob route answers for {digest}")


def hf_download(url: str, cache: Path, program: str = CLIENT, xet: bool = True) -> str:
    """What the client program printed: its seconds (CLIENT), or its profile (PROFILE);
    `xet=False`: with `HF_HUB_DISABLE_XET=1`, over plain HTTP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=f"{url}/hf", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(cache / "home"))  # fmt: skip
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    done = subprocess.run([sys.executable, "-c", program, str(cache)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def curl(url: str, target: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(target), url], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one hf_hub_download and print it (RESULTS.md untouched)",
    )
    parser.add_argument(
        "--sequence",
        help="run these contenders (hf, http, curl, curl-hf) in this order and print each "
        "time (RESULTS.md untouched)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    try:
        home = work / "depot"
        with Depot(Settings(home=home, user="bench")) as depot:
            version = depot.intake.import_path(big_folder(work / "big", args.size_mb),
                                               "bench/big")  # fmt: skip
            digest = next(f.digest for f in version.files if f.path == "model.safetensors")
        shutil.rmtree(work / "big")
        proc, url = start_server(home)
        try:
            blob = blob_url(url, digest)
            resolve = f"{url}/hf/bench/big/resolve/main/model.safetensors"
            if args.profile:
                print(hf_download(url, work / "cache", PROFILE, xet=False))
                return
            times: dict[str, list[float]] = {"hf": [], "curl": [], "curl-hf": [], "http": []}
            cache = work / "cache"

            def client(xet: bool) -> float:
                answer = hf_download(url, cache, xet=xet).strip().splitlines()[-1]
                shutil.rmtree(cache)
                return float(json.loads(answer)["seconds"])

            def fetch(source: str) -> float:
                seconds = curl(source, work / "curl.bin")
                (work / "curl.bin").unlink()
                return seconds

            runs = {"hf": lambda: client(True), "http": lambda: client(False),
                    "curl": lambda: fetch(blob), "curl-hf": lambda: fetch(resolve)}  # fmt: skip
            order = list(runs)
            if args.sequence:
                for name in args.sequence.split(","):
                    print(name, f"{runs[name]():.2f}", flush=True)
                return
            for r in range(args.rounds):  # each round starts one further on: every contender
                for name in order[r % 4 :] + order[: r % 4]:  # runs at every place in turn
                    times[name].append(runs[name]())
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(found) for name, found in times.items()}
    low = {name: min(found) for name, found in times.items()}
    mib = args.size_mb
    load = os.getloadavg()[0]
    rows = [("`curl` of the blob route", "curl"),
            ("**`hf_hub_download` through `/hf` (Xet)**", "hf"),
            ("`curl` of the `/hf` URL", "curl-hf"),
            ("`hf_hub_download`, `HF_HUB_DISABLE_XET=1` (plain HTTP)", "http")]  # fmt: skip
    lines = [
        "## Hugging Face downloads through the depot",
        "",
        f"`python bench/hf_download.py --size-mb {mib} --rounds {args.rounds}`: "
        f"{time.strftime('%Y-%m-%d')}, load average {load:.1f} on 2 cores when it ended. "
        "`hf_hub_download` (huggingface_hub, `HF_ENDPOINT` at the depot's `/hf`, unmodified: "
        "it downloads over the Xet protocol the depot offers, with `hf_xet`) against `curl -o` "
        "of the same blob from the depot's blob route. Each round runs the four in turn, "
        "starting one further on each time, so that each runs at every place equally often.",
        "",
        "| contender | median s | MiB/s | vs curl | fastest s | vs curl |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {label} | {med[k]:.2f} | {mib / med[k]:.0f} | {med['curl'] / med[k]:.2f}x | "
            f"{low[k]:.2f} | {low['curl'] / low[k]:.2f}x |"
            for label, k in rows
        ),
        "",
        "The blob route reads 64 KiB at a time (Starlette's default), the `/hf` URL 1 MiB. "
        "Over Xet the client fetches the file's 64 MiB xorbs in parallel and writes them "
        "itself (Rust); over plain HTTP it re-chunks the body into 10 MiB pieces in Python "
        "before writing each (`DOWNLOAD_CHUNK_SIZE`; `--profile`).",
        "",
        "Every run, in order (seconds): "
        + "; ".join(f"{k} " + " ".join(f"{t:.2f}" for t in times[k]) for _, k in rows)
        + ".",
    ]
    print(write_section("hf-download", lines))


if __name__ == "__main__":
    main()
