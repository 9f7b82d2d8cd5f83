"""Downloading through the Hugging Face API: `hf_hub_download` of a 1 GiB file from a running
`depot serve` (`HF_ENDPOINT=.../hf`, the client unmodified) against `curl` of the same blob
from the depot's own blob route, and `curl` of the `/hf` URL itself (what the client adds),
side by side in one run, interleaved. All write the file to the same disk; the client's time is
taken inside its process around the call (its import is not counted), so it pays for its HEAD,
its GET and its move into the cache.

    python bench/hf_download.py [--size-mb 1024] [--rounds 5]
    python bench/hf_download.py --size-mb 512 --profile   # where the client's time goes

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


def hf_download(url: str, cache: Path, program: str = CLIENT) -> str:
    """What the client program printed: its seconds (CLIENT), or its profile (PROFILE)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=f"{url}/hf", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(cache / "home"))  # fmt: skip
    done = subprocess.run([sys.executable, "-c", program, str(cache)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


RAW = """
import sys, time
import httpx2
start = time.perf_counter()
with httpx2.stream("GET", sys.argv[1]) as answer, open(sys.argv[2], "wb") as out:
    for chunk in answer.iter_raw():
        out.write(chunk)
print(time.perf_counter() - start)
"""


def python_raw(url: str, target: Path) -> float:
    """The HTTP library huggingface_hub reads with, its chunks written as they come (without
    the client's own re-chunking into 10 MiB pieces): the floor of a Python client."""
    done = subprocess.run([sys.executable, "-c", RAW, url, str(target)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return float(done.stdout.strip())


def curl(url: str, target: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(target), url], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one hf_hub_download and print it (RESULTS.md untouched)",
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
                print(hf_download(url, work / "cache", PROFILE))
                return
            times: dict[str, list[float]] = {"hf": [], "curl": [], "curl-hf": [], "raw": []}
            for _ in range(args.rounds):
                cache = work / "cache"
                answer = hf_download(url, cache).strip().splitlines()[-1]
                times["hf"].append(float(json.loads(answer)["seconds"]))
                shutil.rmtree(cache)
                times["curl"].append(curl(blob, work / "curl.bin"))
                (work / "curl.bin").unlink()
                times["curl-hf"].append(curl(resolve, work / "curl.bin"))
                (work / "curl.bin").unlink()
                times["raw"].append(python_raw(resolve, work / "raw.bin"))
                (work / "raw.bin").unlink()
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hf, cu = statistics.median(times["hf"]), statistics.median(times["curl"])
    cu_hf, raw = statistics.median(times["curl-hf"]), statistics.median(times["raw"])
    mib = args.size_mb
    load = os.getloadavg()[0]
    lines = [
        "## Hugging Face downloads through the depot",
        "",
        f"`python bench/hf_download.py --size-mb {mib} --rounds {args.rounds}`: "
        f"{time.strftime('%Y-%m-%d')}, load average {load:.1f} on 2 cores when it ended. "
        "`hf_hub_download` (huggingface_hub, `HF_ENDPOINT` at the depot's `/hf`) against "
        "`curl -o` of the same blob from the depot's blob route; medians, rounds interleaved.",
        "",
        "| contender | seconds | MiB/s | vs curl |",
        "| --- | --- | --- | --- |",
        f"| `curl` of the blob route | {cu:.2f} | {mib / cu:.0f} | 1.00x |",
        f"| `curl` of the `/hf` URL | {cu_hf:.2f} | {mib / cu_hf:.0f} | {cu / cu_hf:.2f}x |",
        f"| httpx2 reading the `/hf` URL | {raw:.2f} | {mib / raw:.0f} | {cu / raw:.2f}x |",
        f"| `hf_hub_download` through `/hf` | {hf:.2f} | {mib / hf:.0f} | {cu / hf:.2f}x |",
        "",
        "The depot's side is the `/hf` row by curl: the Hub route reads a stored file 1 MiB "
        "at a time, the blob route 64 KiB (Starlette's default), and adds nothing else per "
        "byte. The httpx2 row reads the same URL with the HTTP library huggingface_hub uses, "
        "writing its chunks as they come; `hf_hub_download` re-chunks the body into 10 MiB "
        "pieces before writing each (`DOWNLOAD_CHUNK_SIZE`), and that copying is the rest of "
        "its time: the client, unmodified, is what stays below curl.",
        "",
        "Each round (blob route / `/hf` by curl / hf_hub_download): "
        + ", ".join(
            f"{c:.2f}/{r:.2f}/{h:.2f} s"
            for c, r, h in zip(times["curl"], times["curl-hf"], times["hf"], strict=True)
        )
        + ".",
    ]
    print(write_section("hf-download", lines))


if __name__ == "__main__":
    main()
