"""Replicas: two `depot serve` processes on one PostgreSQL registry, behind one client pool,
against one server alone: aggregate requests/s of a light request (the gateway path to a fast
upstream), one run.

    python bench/replicas_speed.py [--seconds 10] [--concurrency 16] [--rounds 3]

Needs the PostgreSQL server `.ci/postgres.sh` starts (its URL in DEPOT_TEST_DATABASE_URL or
given with --database). Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median

import httpx
import sqlalchemy as sa

from gateway_overhead import UPSTREAM, free_port, wait
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.gateway import Remote
from results import write_section

BIN = Path(sys.executable).parent
BODY = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


async def load(urls: list[str], seconds: float, concurrency: int) -> float:
    """Requests per second, `concurrency` workers spread over `urls` in turn."""
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker(i: int) -> None:
            nonlocal done
            n = i
            while time.perf_counter() < deadline:
                reply = await client.post(f"{urls[n % len(urls)]}/v1/chat/completions",
                                          json=BODY)  # fmt: skip
                assert reply.status_code == 200, reply.text
                done += 1
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default=os.environ.get("DEPOT_TEST_DATABASE_URL"))
    args = parser.parse_args()
    if not args.database:
        sys.exit("a PostgreSQL server is needed: bash .ci/postgres.sh, then --database URL")
    name = f"depot_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database = str(sa.engine.make_url(args.database).set(database=name))
    work = Path(tempfile.mkdtemp(prefix="replicas-bench-"))
    (work / "upstream.py").write_text(UPSTREAM)
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "upstream:app", "--port", str(up_port),
         "--log-level", "warning", "--workers", "1"], cwd=work)  # fmt: skip
    with Depot(Settings(home=work / "one", user="bench", database_url=database)) as depot:
        depot.gateway.add_remote(Remote("fast", f"http://127.0.0.1:{up_port}/v1", "fast"))
    servers = []
    for home in ("one", "two"):
        port = free_port()
        env = {**os.environ, "DEPOT_HOME": str(work / home), "DEPOT_DATABASE_URL": database}
        servers.append((subprocess.Popen([str(BIN / "depot"), "serve", "--port", str(port)],
                                         env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL),
                        f"http://127.0.0.1:{port}"))  # fmt: skip
    alone, pair = [], []
    try:
        wait(f"http://127.0.0.1:{up_port}/")
        for _, url in servers:
            wait(f"{url}/health")
        urls = [url for _, url in servers]
        asyncio.run(load(urls, 2, args.concurrency))  # warm
        for _ in range(args.rounds):  # interleaved
            alone.append(asyncio.run(load(urls[:1], args.seconds, args.concurrency)))
            pair.append(asyncio.run(load(urls, args.seconds, args.concurrency)))
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
        upstream.terminate()
        upstream.wait()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    one, two = median(alone), median(pair)
    command = (f"python bench/replicas_speed.py --seconds {args.seconds:g} --concurrency "
               f"{args.concurrency} --rounds {args.rounds}")  # fmt: skip
    print(write_section("replicas-speed", [
        "## Replicas (two depot serve on one PostgreSQL registry)",
        "",
        f"`{command}` ({os.cpu_count()} cores, shared by the client pool, the upstream and the "
        f"servers; a chat request to a registered remote that answers at once; medians of "
        f"{args.rounds} interleaved rounds)",
        "",
        "| servers | requests/s | ratio |",
        "|---|---|---|",
        f"| one | {one:.0f} | 1.00x |",
        f"| two replicas, requests alternated | {two:.0f} | **{two / one:.2f}x** |",
        "",
        "Rounds: " + ", ".join(f"{a:.0f} vs {b:.0f}" for a, b in zip(alone, pair, strict=True)),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
