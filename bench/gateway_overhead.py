"""Gateway overhead: latency a request to a remote model gains by going through the depot.

    python bench/gateway_overhead.py [--requests 300]

A fast upstream (an OpenAI-compatible endpoint on loopback that answers at once) is called
directly and through `depot serve` as a registered remote, alternately, in one run; the table
gives p50 and p95 of both and the p50 the depot adds. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.gateway import Remote
from results import write_section

BIN = Path(sys.executable).parent
ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "fast",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}  # fmt: skip
UPSTREAM = f"""
import json
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = {json.dumps(json.dumps(ANSWER))}.encode()
async def chat(request):
    await request.body()
    return Response(BODY, media_type="application/json")
app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    (work / "upstream.py").write_text(UPSTREAM)
    up_port, depot_port = free_port(), free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "upstream:app", "--port", str(up_port),
         "--log-level", "warning"], cwd=work,
    )  # fmt: skip
    home = work / "depot"
    with Depot(Settings(home=home, user="bench")) as depot:
        depot.gateway.add_remote(Remote("fast", f"http://127.0.0.1:{up_port}/v1", "fast"))
    server = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(depot_port)],
                              env={**os.environ, "DEPOT_HOME": str(home)})  # fmt: skip
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    direct, through = [], []
    try:
        wait(f"http://127.0.0.1:{up_port}/")
        wait(f"http://127.0.0.1:{depot_port}/health")
        with httpx.Client(timeout=30) as client:
            for i in range(args.requests + 20):
                for url, into in (
                    (f"http://127.0.0.1:{up_port}/v1/chat/completions", direct),
                    (f"http://127.0.0.1:{depot_port}/v1/chat/completions", through),
                ):
                    start = time.perf_counter()
                    reply = client.post(url, json=body)
                    elapsed = time.perf_counter() - start
                    assert reply.status_code == 200, reply.text
                    if i >= 20:  # warm-up
                        into.append(elapsed * 1000)
    finally:
        server.terminate()
        upstream.terminate()
        server.wait()
        upstream.wait()
    added = statistics.median(through) - statistics.median(direct)
    command = " ".join(["python", "bench/gateway_overhead.py", *sys.argv[1:]])
    lines = [
        "## Gateway overhead",
        "",
        f"Command: `{command}` ({args.requests} requests each way, alternating, keep-alive "
        f"client, {time.strftime('%Y-%m-%d')}). Milliseconds.",
        "",
        "| path | p50 | p95 |",
        "| --- | ---: | ---: |",
        f"| client -> fast upstream | {statistics.median(direct):.2f} | "
        f"{percentile(direct, 0.95):.2f} |",
        f"| client -> depot serve -> fast upstream | {statistics.median(through):.2f} | "
        f"{percentile(through, 0.95):.2f} |",
        f"| **added by the depot (p50)** | **{added:.2f}** | |",
        "",
        "The depot's part: key check, alias and remote lookup in the registry, the relayed "
        "request, and the usage row written after the response (not an audit event).",
    ]
    print(write_section("gateway_overhead", lines))


if __name__ == "__main__":
    main()
