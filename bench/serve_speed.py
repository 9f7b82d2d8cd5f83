"""Serving speed: the depot's OpenAI API against the raw engine and against
llama-cpp-python's own server, same GGUF, same threads, one run.

    python bench/serve_speed.py [--model smollm2] [--threads 2] [--tokens 128]

Measures
- single-stream decode tokens/s through the API vs `llama-bench` (tg);
- aggregate decode tokens/s at 1/4/8 concurrent streams through the API vs
  `llama-batched-bench` (S_TG), and end-to-end tokens/s vs `python -m llama_cpp.server`;
- time to first token with a ~1,000-token shared system prompt, first vs second request;
- 4 concurrent streams vs the same 4 one after another.

Needs llama-bench and llama-batched-bench (`scripts/build-llama-cpp.sh .venv/bin llama-bench
llama-batched-bench`) and `pip install 'llama-cpp-python[server]'` for the peer server.
Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.server.relay import EngineStream
from results import write_section

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
PROMPT = "Write a long story about a lighthouse keeper."


@dataclass
class Stream:
    start: float
    first: float = 0.0
    last: float = 0.0
    tokens: int = 0
    times: list[float] | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready: {url}")


async def one_stream(url: str, model: str, tokens: int, messages: list[dict[str, str]],
                     extra: dict[str, Any] | None = None) -> Stream:  # fmt: skip
    """One streamed chat answer, read with the depot's own raw-socket reader: on two cores the
    measuring client competes with the server for CPU, so it must cost as little as possible
    (httpx's line iterator costs about as much per token as the relay being measured)."""
    body = {"model": model, "messages": messages, "max_tokens": tokens, "stream": True,
            "temperature": 0, "ignore_eos": True, **(extra or {})}  # fmt: skip
    stream = Stream(start=time.perf_counter(), times=[])
    response = await EngineStream.open(f"{url}/v1/chat/completions", body)
    try:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {(await response.read())[:300]!r}")
        pending = b""
        async for chunk in response.chunks():
            pending += chunk
            *events, pending = pending.split(b"\n\n")
            for event in events:
                if not event.startswith(b"data: {"):
                    continue
                choices = json.loads(event[6:]).get("choices") or []
                if any((c.get("delta") or {}).get("content") for c in choices):
                    now = time.perf_counter()
                    stream.first = stream.first or now
                    stream.last = now
                    stream.tokens += 1
                    assert stream.times is not None
                    stream.times.append(now)
    finally:
        await response.aclose()
    return stream


async def concurrent(url: str, model: str, n: int, tokens: int) -> list[Stream]:
    messages = [{"role": "user", "content": PROMPT}]
    return list(await asyncio.gather(
        *(one_stream(url, model, tokens, messages) for _ in range(n))
    ))  # fmt: skip


def decode_rate(streams: list[Stream]) -> float:
    """Aggregate tokens/s while every stream decodes (after the last first token, before the
    first last token): the figure llama-batched-bench reports as S_TG."""
    t0 = max(s.first for s in streams)
    t1 = min(s.last for s in streams)
    if t1 <= t0:
        return sum(s.tokens for s in streams) / (max(s.last for s in streams) - t0)
    count = sum(sum(1 for t in (s.times or []) if t0 < t <= t1) for s in streams)
    return count / (t1 - t0)


def end_to_end(streams: list[Stream]) -> float:
    return sum(s.tokens for s in streams) / (
        max(s.last for s in streams) - min(s.start for s in streams)
    )


def llama_bench(model: Path, threads: int, tokens: int) -> float:
    out = subprocess.run([str(BIN / "llama-bench"), "-m", str(model), "-t", str(threads), "-p", "0",
                          "-n", str(tokens), "-o", "json"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(json.loads(out.stdout)[0]["avg_ts"])


def batched_bench(model: Path, threads: int, tokens: int, sizes: list[int]) -> dict[int, float]:
    out = subprocess.run([str(BIN / "llama-batched-bench"), "-m", str(model), "-t", str(threads),
                          "-tb", str(threads), "-c", str(max(sizes) * (tokens + 64)), "-npp", "32",
                          "-ntg", str(tokens), "-npl", ",".join(map(str, sizes))],
                         capture_output=True, text=True, check=True)  # fmt: skip
    rates = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 10 and cells[2].isdigit():
            rates[int(cells[2])] = float(cells[7])  # S_TG t/s
    return rates


def _engine_url(pid: int) -> str | None:
    """The loopback address the engine process listens on (from its command line)."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"--port" not in args:
        return None
    return f"http://127.0.0.1:{args[args.index(b'--port') + 1].decode()}"


def shared_prefix_ttft(url: str, model: str) -> tuple[float, float]:
    system = " ".join(f"Rule {i}: answer politely and precisely." for i in range(120))
    times = []
    for question in ("What is a lighthouse?", "What is a harbour?"):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        stream = asyncio.run(_single(url, model, messages))
        times.append(stream.first - stream.start)
    return times[0], times[1]


async def _single(url: str, model: str, messages: list[dict[str, str]]) -> Stream:
    return await one_stream(url, model, 8, messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--sizes", default="1,4,8")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    home = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    with Depot(Settings(home=home, user="bench")) as depot:
        version = depot.intake.pull(args.model)
        weights = depot.store.local_path(
            next(f.digest for f in version.files if f.kind == "weights")
        )
    rows: list[tuple[str, str, str, str]] = []

    port = free_port()
    env = {**os.environ, "DEPOT_HOME": str(home), "DEPOT_THREADS": str(args.threads),
           "DEPOT_PARALLEL": str(max(sizes)), "DEPOT_CONTEXT": str(args.tokens + 2048)}  # fmt: skip
    depot_proc = subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", depot_proc)
        asyncio.run(concurrent(url, args.model, 1, 8))  # load the model outside the timings
        engine_url = _engine_url(httpx.get(f"{url}/health").json()["loaded"][0]["pid"])
        # Rounds interleave every contender, so the machine's noise falls on all alike.
        directs, raws = [], []
        decode: dict[int, list[float]] = {n: [] for n in sizes}
        e2e: dict[int, list[float]] = {n: [] for n in sizes}
        batched: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(args.rounds):
            raws.append(llama_bench(weights, args.threads, args.tokens))
            for n, rate in batched_bench(weights, args.threads, args.tokens, sizes).items():
                batched[n].append(rate)
            for n in sizes:
                streams = asyncio.run(concurrent(url, args.model, n, args.tokens))
                decode[n].append(decode_rate(streams))
                e2e[n].append(end_to_end(streams))
            if engine_url:
                direct_streams = asyncio.run(concurrent(engine_url, args.model, 1, args.tokens))
                directs.append(decode_rate(direct_streams))
        sequential_start = time.perf_counter()
        for _ in range(4):
            asyncio.run(concurrent(url, args.model, 1, args.tokens))
        sequential = time.perf_counter() - sequential_start
        together_start = time.perf_counter()
        asyncio.run(concurrent(url, args.model, 4, args.tokens))
        together = time.perf_counter() - together_start
        # Last: its long system prompts would otherwise sit in the slots of the runs above.
        first, second = shared_prefix_ttft(url, args.model)
    finally:
        depot_proc.terminate()
        depot_proc.wait()

    peer: dict[int, float] = {}
    # A GGUF without a chat template: give the peer the architecture's format, as the depot does.
    arch = version.info.architecture or ""
    fallback = "gemma" if arch.startswith("gemma") else "chatml"
    peer_format = [] if version.info.chat_template else ["--chat_format", fallback]
    port = free_port()
    peer_proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(weights),
                                  "--n_threads", str(args.threads), "--port", str(port),
                                  "--n_ctx", str(args.tokens + 2048), "--model_alias", args.model,
                                  *peer_format,
                                  # its default cuts running streams off when a new one arrives
                                  "--interrupt_requests", "False"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", peer_proc)
        for n in sizes:
            peer[n] = end_to_end(asyncio.run(concurrent(f"http://127.0.0.1:{port}", args.model, n,
                                                        args.tokens)))  # fmt: skip
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"llama_cpp.server not measured: {exc}", file=sys.stderr)
    finally:
        peer_proc.terminate()
        peer_proc.wait()
    shutil.rmtree(home, ignore_errors=True)

    raw_single = median(raws)
    single = median(decode[1])
    raw = f"llama-bench tg{args.tokens}: {raw_single:.0f}"
    rows.append(("decode, 1 stream", f"{single:.0f}", raw, f"**{single / raw_single:.2f}x**"))
    if directs:
        engine = median(directs)
        rows.append(("decode, 1 stream, client straight to the engine's own HTTP port",
                     f"{engine:.0f}", raw, f"{engine / raw_single:.2f}x"))  # fmt: skip
    for n in sizes:
        rate = median(decode[n])
        ref = median(batched[n]) if batched[n] else None
        rows.append((f"aggregate decode, {n} streams", f"{rate:.0f}",
                     f"llama-batched-bench S_TG: {ref:.0f}" if ref else "-",
                     f"**{rate / ref:.2f}x**" if ref else "-"))  # fmt: skip
    for n in sizes:
        mine = median(e2e[n])
        theirs = peer.get(n)
        rows.append((f"end to end, {n} streams", f"{mine:.0f}",
                     f"llama_cpp.server: {theirs:.0f}" if theirs else "not measured",
                     f"**{mine / theirs:.2f}x**" if theirs else "-"))  # fmt: skip
    rows.append((
        "time to first token, ~1,000-token system prompt, second request",
        f"{second * 1000:.0f} ms",
        f"first request: {first * 1000:.0f} ms",
        f"{second / first:.2f} of the first",
    ))  # fmt: skip
    rows.append((
        "4 streams together vs one after another",
        f"{together:.1f} s",
        f"sequential: {sequential:.1f} s",
        f"**{sequential / together:.2f}x** faster",
    ))  # fmt: skip

    command = " ".join(["python", "bench/serve_speed.py", *sys.argv[1:]])
    lines = [
        f"## Serving speed: {args.model}",
        "",
        f"Command: `{command}` ({args.threads} threads, {args.tokens} tokens per stream, "
        f"ignore_eos, temperature 0, median of {args.rounds} interleaved rounds, "
        f"{time.strftime('%Y-%m-%d')}). Rates in tokens/s.",
        "",
        "| what | depot API | reference | ratio |",
        "| --- | ---: | --- | ---: |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    print(write_section(f"serve_speed:{args.model}", lines))


if __name__ == "__main__":
    main()
