"""The web UI's speed, one run:

- a catalogue of 10,000 versions: server time for a catalogue page (HTML) against the
  `/depot/api/catalogue` call that returns the same page as JSON;
- the playground: time from the API's first streamed token reaching the browser to its
  appearance on screen (the next frame after it is in the page), in Debian's chromium.

    python bench/ui_speed.py [--versions 10000] [--rounds 20] [--chats 15]

The 10,000 versions are recorded straight into the registry (each its own manifest, with a
name, format, architecture, licence and quantisation drawn from a few of each): this measures
listing, not importing. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
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
from modeldepot.formats.base import ModelInfo
from modeldepot.refs import Reference
from modeldepot.registry import FileRecord
from results import write_section
from serve_speed import free_port, wait_http

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"


def populate(depot: Depot, count: int) -> None:
    rng = random.Random(7)
    version = depot.intake.pull("smollm2")
    files = [FileRecord(f.path, f.digest, f.size, f.kind, f.media_type) for f in version.files]
    archs = ["llama", "gemma3", "qwen2", "mistral", "phi3"]
    quants = ["Q4_1", "Q4_K_M", "Q8_0", "F16"]
    licences = ["Apache-2.0", "MIT", "gemma", "llama3.1"]
    for i in range(count):
        info = ModelInfo(
            format="gguf",
            architecture=rng.choice(archs),
            name=f"model {i}",
            parameters=rng.randrange(10**8, 10**10),
            quantization=rng.choice(quants),
            license=rng.choice(licences),
        )
        digest = f"sha256:{i:064x}"
        depot.registry.record_version(
            Reference.parse(f"team{i % 50}/model-{i}:v{i % 7}"), digest=digest,
            config_digest=version.config_digest, info=info, files=files, source="bench",
            actor="bench")  # fmt: skip
        depot.trust_status_ok = None
    # recorded versions start pending: admit them all at once
    with depot.registry.engine.begin() as conn:
        from modeldepot.registry import schema as t

        conn.execute(t.manifests.update().values(status="scanned"))


def timed(url: str, rounds: int) -> float:
    """Median server time (seconds) of GET `url`, measured by the client on loopback."""
    samples = []
    with httpx.Client(timeout=120) as client:
        client.get(url)  # warm
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - started)
            response.raise_for_status()
    return median(samples)


def playground_latency(url: str, chats: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "/playground")
        page.select_option("#model-a", "smollm2:latest")
        page.fill("#max-tokens", "16")
        for i in range(chats):
            page.click("#clear")
            page.evaluate("document.getElementById('answer-a').dataset.done = ''")
            page.fill("#prompt", f"Say hello number {i}.")
            page.click("#send")
            page.wait_for_selector("#answer-a[data-done='true']", timeout=120_000)
            value = page.locator("#answer-a .turn.assistant").last.get_attribute(
                "data-first-token-ms"
            )
            if value is not None:
                found.append(float(value))
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--chats", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    with Depot(Settings(home=home, user="bench")) as depot:
        started = time.perf_counter()
        populate(depot, args.versions)
        populated = time.perf_counter() - started
    port = free_port()
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": "2"}
    server = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", server)
        query = "?q=llama&licence=MIT&sort=size&page=3"
        started = time.perf_counter()
        httpx.get(f"{url}/{query}", timeout=120).raise_for_status()
        cold = time.perf_counter() - started  # the rows built from the registry
        page_seconds, api_seconds = [], []
        for _ in range(3):  # interleaved
            page_seconds.append(timed(f"{url}/{query}", args.rounds))
            api_seconds.append(timed(f"{url}/depot/api/catalogue{query}", args.rounds))
        latencies = playground_latency(url, args.chats)
    finally:
        server.terminate()
        server.wait()
    shutil.rmtree(home, ignore_errors=True)
    page_s, api_s = median(page_seconds), median(api_seconds)
    command = (f"python bench/ui_speed.py --versions {args.versions} --rounds {args.rounds} "
               f"--chats {args.chats}")  # fmt: skip
    print(write_section("ui-speed", [
        "## Web UI",
        "",
        f"`{command}` ({os.cpu_count()} cores; {args.versions:,} versions recorded in "
        f"{populated:.0f} s; page 3 of `{query}`, median of {args.rounds} requests x 3 "
        "interleaved rounds; the playground in Debian's chromium, SmolLM2)",
        "",
        "| what | measured | compared with | ratio |",
        "|---|---|---|---|",
        f"| catalogue page (HTML), server time | {page_s * 1000:.0f} ms | `/depot/api/catalogue`, "
        f"the same page as JSON: {api_s * 1000:.0f} ms | **{page_s / api_s:.2f}x** (limit 2x) |",
        f"| catalogue page, first load after the registry changed (every row rebuilt) | "
        f"{cold * 1000:.0f} ms | | |",
        f"| playground: first streamed token on screen after it reached the browser, median "
        f"of {len(latencies)} | **{median(latencies):.1f} ms** | limit 50 ms | |",
        "",
        "Per chat: " + ", ".join(f"{x:.1f}" for x in latencies) + " ms",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
