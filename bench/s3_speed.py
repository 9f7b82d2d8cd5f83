"""Object storage: importing a model into S3 (SeaweedFS on loopback) against a plain upload of
the same file with the same client (obstore), and serving that model from its bucket (warm
cache) against the same model on local disk, one run.

    python bench/s3_speed.py [--rounds 3] [--tokens 128]

Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.receive.catalogue import load_catalogue
from results import write_section
from serve_speed import concurrent, decode_rate, free_port, wait_http

BIN = Path(sys.executable).parent
KEY, SECRET = "bench", "bench-secret"


def _ports(count: int) -> list[int]:
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55000 and port not in found:
            found.append(port)
    return found


def start_weed(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    names = ("s3", "master", "volume", "filer", "admin", "debug", "webdav")
    ports = dict(zip(names, _ports(len(names)), strict=True))
    argv = [str(BIN / "weed"), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-bucket=depot", *(f"-{n}.port={p}" for n, p in ports.items())]  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    for _ in range(300):
        try:
            if httpx.get(f"{endpoint}/depot", timeout=1).status_code < 500:
                time.sleep(1.0)
                return proc, endpoint
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("SeaweedFS did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    import obstore
    from obstore.store import S3Store

    work = Path(tempfile.mkdtemp(prefix="s3-bench-"))
    weed, endpoint = start_weed(work / "weed")
    _, parts = load_catalogue()["smollm2"].model_parts()
    model = work / "smollm2.gguf"
    shutil.copyfile(parts[0], model)
    size = model.stat().st_size
    raw = S3Store("depot", prefix="plain", endpoint=endpoint, access_key_id=KEY,
                  secret_access_key=SECRET, region="us-east-1",
                  client_options={"allow_http": True})  # fmt: skip
    imports, plains = [], []
    try:
        for i in range(args.rounds):  # interleaved
            settings = Settings(
                home=work / f"home-{i}",
                user="bench",
                blobs=f"s3://depot/d{i}",
                s3_endpoint=endpoint,
                s3_access_key=KEY,
                s3_secret_key=SECRET,
            )
            with Depot(settings) as depot:
                depot.keys  # noqa: B018 - the registry opened outside the timing
                started = time.perf_counter()
                depot.intake.import_path(model, "smollm2")
                imports.append(time.perf_counter() - started)
            started = time.perf_counter()
            obstore.put(raw, f"round-{i}.gguf", model, chunk_size=8 * 1024 * 1024)
            plains.append(time.perf_counter() - started)
        # serving: the same model from the bucket (warm cache) and from local disk
        rates: dict[str, list[float]] = {"s3": [], "local": []}
        homes = {"s3": work / "home-0", "local": work / "local"}
        with Depot(Settings(home=homes["local"], user="bench")) as depot:
            depot.intake.import_path(model, "smollm2")
        servers = {}
        for name, home in homes.items():
            env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2",
                   "DEPOT_PARALLEL": "1"}  # fmt: skip
            if name == "s3":
                env |= {
                    "DEPOT_BLOBS": "s3://depot/d0",
                    "AWS_ENDPOINT_URL": endpoint,
                    "AWS_ACCESS_KEY_ID": KEY,
                    "AWS_SECRET_ACCESS_KEY": SECRET,
                }
            port = free_port()
            proc = subprocess.Popen(
                [str(BIN / "depot"), "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers[name] = (proc, f"http://127.0.0.1:{port}")
        try:
            for proc, url in servers.values():
                wait_http(f"{url}/health", proc)
                asyncio.run(concurrent(url, "smollm2", 1, 8))  # load, fill the cache
            for _ in range(args.rounds):
                for name, (_, url) in servers.items():
                    rates[name].append(decode_rate(asyncio.run(
                        concurrent(url, "smollm2", 1, args.tokens))))  # fmt: skip
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait()
    finally:
        weed.terminate()
        weed.wait()
        shutil.rmtree(work, ignore_errors=True)
    imp, plain = median(imports), median(plains)
    s3_rate, local_rate = median(rates["s3"]), median(rates["local"])
    command = f"python bench/s3_speed.py --rounds {args.rounds} --tokens {args.tokens}"
    print(write_section("s3-speed", [
        "## Object storage (SeaweedFS on loopback, obstore)",
        "",
        f"`{command}` ({os.cpu_count()} cores; SmolLM2 Q4_1, {size / 1e6:.0f} MB; medians of "
        f"{args.rounds} interleaved rounds)",
        "",
        "| what | depot | compared with | ratio |",
        "|---|---|---|---|",
        f"| import into S3 (hashed, uploaded under its digest while hashed again, a local cache "
        f"copy, scan, admission) | {imp:.2f} s ({size / imp / 1e6:.0f} MB/s) | a plain "
        f"`obstore.put` of the file: {plain:.2f} s ({size / plain / 1e6:.0f} MB/s) | "
        f"**{plain / imp:.2f}x** |",
        f"| decode, 1 stream, blob in S3 (warm cache) | {s3_rate:.0f} tokens/s | the same model "
        f"on local disk: {local_rate:.0f} | **{s3_rate / local_rate:.2f}x** |",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
