"""Ollama's `/api/chat` against the OpenAI route on the same model and server: the decode rate a
client reads through the translation layer (NDJSON) against the OpenAI API it translates onto
(server-sent events), 1 and 4 concurrent streams, interleaved in one run.

    python bench/ollama_speed.py [--model smollm2] [--tokens 128] [--rounds 5]

Each stream asks the same greedy completion of `--tokens` tokens; its decode rate is the
engine's token count (`eval_count`, `usage.completion_tokens`) over the time from its first to
its last piece as the client reads them; with 4 streams, the tokens of all over the time from
the first piece of any to the last of all. The ratio is Ollama / OpenAI, medians of the rounds.
Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from results import write_section

PROMPT = "Write a long story about a lighthouse keeper."


@dataclass
class Read:
    first: float
    last: float
    tokens: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ollama_stream(client: httpx.AsyncClient, model: str, tokens: int) -> Read:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
            "options": {"num_predict": tokens, "temperature": 0, "seed": 1}}  # fmt: skip
    first = last = 0.0
    count = 0
    async with client.stream("POST", "/api/chat", json=body) as reply:
        async for line in reply.aiter_lines():
            if not line:
                continue
            now = time.perf_counter()
            piece = json.loads(line)
            if piece.get("done"):
                count = int(piece.get("eval_count") or 0)
                break
            first = first or now
            last = now
    return Read(first, last, count)


async def openai_stream(client: httpx.AsyncClient, model: str, tokens: int) -> Read:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": tokens, "temperature": 0, "seed": 1, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    first = last = 0.0
    count = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        async for line in reply.aiter_lines():
            if not line.startswith("data: {"):
                continue
            now = time.perf_counter()
            event = json.loads(line[6:])
            if event.get("usage"):
                count = int(event["usage"].get("completion_tokens") or 0)
            if any((c.get("delta") or {}).get("content") for c in event.get("choices") or []):
                first = first or now
                last = now
    return Read(first, last, count)


async def rate(url: str, kind: str, streams: int, model: str, tokens: int) -> float:
    """Aggregate decode tokens/s of `streams` concurrent streams through route `kind`."""
    read = ollama_stream if kind == "ollama" else openai_stream
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        reads = await asyncio.gather(*(read(client, model, tokens) for _ in range(streams)))
    span = max(r.last for r in reads) - min(r.first for r in reads)
    return sum(r.tokens for r in reads) / span if span > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ollama-bench-")) / "depot"
    with Depot(Settings(home=home, user="bench")) as depot:
        depot.intake.pull(args.model)
    port = free_port()
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_PARALLEL": "4",
           "DEPOT_THREADS": str(args.threads)}  # fmt: skip
    env.pop("DEPOT_DATABASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-c", "from modeldepot.cli import main; main()", "serve", "--port",
         str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(rate(url, "openai", 1, args.model, 16))  # load the model
        rates: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.rounds):
            for streams in (1, 4):
                for kind in ("ollama", "openai") if _ % 2 == 0 else ("openai", "ollama"):
                    got = asyncio.run(rate(url, kind, streams, args.model, args.tokens))
                    rates.setdefault((kind, streams), []).append(got)
    finally:
        server.terminate()
        server.wait(30)
    load = os.getloadavg()[0]
    lines = [
        f"## Ollama API speed: {args.model}",
        "",
        f"Command: `python bench/ollama_speed.py --model {args.model} --tokens {args.tokens} "
        f"--rounds {args.rounds}` ({args.threads} threads, greedy, {args.tokens} tokens per "
        f"stream, median of {args.rounds} interleaved rounds, {time.strftime('%Y-%m-%d')}, "
        f"load average {load:.1f} when it ended). Aggregate decode tokens/s as the client "
        "reads them.",
        "",
        "| streams | Ollama `/api/chat` (NDJSON) | OpenAI `/v1/chat/completions` (SSE) | ratio |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for streams in (1, 4):
        mine, theirs = median(rates[("ollama", streams)]), median(rates[("openai", streams)])
        lines.append(f"| {streams} | {mine:.0f} | {theirs:.0f} | **{mine / theirs:.2f}x** |")
    lines += [
        "",
        "Rounds (Ollama / OpenAI): "
        + "; ".join(
            f"{s} stream{'s' if s > 1 else ''}: "
            + ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(rates[("ollama", s)],
                                                           rates[("openai", s)], strict=True))
            for s in (1, 4)
        ),
    ]  # fmt: skip
    print(write_section(f"ollama_speed:{args.model}", lines))


if __name__ == "__main__":
    main()
