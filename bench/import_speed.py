"""Import speed: storing a file (sha256 + copy + fsync + rename) against a plain `cp` of the
same file, side by side in one run; the copy-on-write path where a reflink filesystem is
given; and SmolLM2 end to end.

    python bench/import_speed.py [--size-mb 1024] [--rounds 3] [--reflink-dir DIR]

Writes its table into bench/RESULTS.md (between its own markers) and prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.store.blobs import BlobStore

HERE = Path(__file__).parent
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- import_speed:begin -->", "<!-- import_speed:end -->"


def make_file(path: Path, size_mb: int) -> None:
    if path.exists() and path.stat().st_size == size_mb * 1024 * 1024:
        return
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))
        f.flush()
        os.fsync(f.fileno())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def bench_copy(work: Path, size_mb: int, rounds: int) -> list[tuple[str, float, str]]:
    source = work / "source.bin"
    make_file(source, size_mb)
    source.read_bytes() if size_mb <= 2048 else None  # warm the page cache for every contender
    times: dict[str, list[float]] = {"cp": [], "import": [], "hash": []}
    for _ in range(rounds):  # interleaved, so machine noise hits every contender alike
        target = fresh(work / "cp")
        times["cp"].append(timed(lambda: subprocess.run(["cp", source, target / "x"], check=True)))
        store = BlobStore(fresh(work / "store"))
        times["import"].append(timed(lambda: store.put_file(source, clone=False)))

        def hash_only() -> None:
            with open(source, "rb") as f:
                hashlib.file_digest(f, "sha256")

        times["hash"].append(timed(hash_only))
    shutil.rmtree(work / "cp")
    shutil.rmtree(work / "store")
    cp = statistics.median(times["cp"])
    imp = statistics.median(times["import"])
    hsh = statistics.median(times["hash"])
    mb = size_mb * 1024 * 1024 / 1e6
    return [
        ("`cp` (no fsync)", cp, f"{mb / cp:.0f} MB/s"),
        ("depot import: sha256 + copy + fsync + rename", imp,
         f"{mb / imp:.0f} MB/s, **{cp / imp:.2f}x** the speed of `cp`"),
        ("sha256 alone (hashlib, reference)", hsh, f"{mb / hsh:.0f} MB/s"),
    ]  # fmt: skip


def bench_reflink(directory: Path, size_mb: int, rounds: int) -> list[tuple[str, float, str]]:
    work = directory / "modeldepot-bench"
    work.mkdir(exist_ok=True)
    source = work / "source.bin"
    make_file(source, size_mb)
    clone, copy = [], []
    cloned = False
    for _ in range(rounds):
        store = BlobStore(fresh(work / "store"))
        start = time.perf_counter()
        blob = store.put_file(source, clone=True)
        clone.append(time.perf_counter() - start)
        cloned = blob.cloned
        store = BlobStore(fresh(work / "store"))
        copy.append(timed(lambda: store.put_file(source, clone=False)))
    shutil.rmtree(work)
    c, p = statistics.median(clone), statistics.median(copy)
    label = "reflink clone + sha256 of the clone" if cloned else "clone refused: copied"
    return [
        (f"{label} ({directory})", c, f"{p / c:.2f}x faster than copying there"),
        (f"copy + sha256 + fsync ({directory})", p, ""),
    ]


def bench_smollm2(work: Path) -> list[tuple[str, float, str]]:
    home = fresh(work / "home")
    with Depot(Settings(home=home, user="bench")) as depot:
        depot.registry  # noqa: B018 - open the database outside the timing
        elapsed = timed(lambda: depot.pull("smollm2"))
        again = timed(lambda: depot.pull("smollm2"))
    shutil.rmtree(home)
    return [
        ("`depot pull smollm2` end to end (98 MB, new store)", elapsed,
         "hash + copy + fsync, GGUF metadata, manifest, registry"),
        ("`depot pull smollm2` again (already stored)", again, "re-hashed, nothing written"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reflink-dir", type=Path)
    args = parser.parse_args()
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    rows = bench_copy(work, args.size_mb, args.rounds)
    if args.reflink_dir:
        rows += bench_reflink(args.reflink_dir, args.size_mb, args.rounds)
    rows += bench_smollm2(work)
    (work / "source.bin").unlink(missing_ok=True)
    command = " ".join(["python", "bench/import_speed.py", *sys.argv[1:]])
    lines = [
        BEGIN,
        "## Import speed",
        "",
        f"Command: `{command}` ({args.size_mb} MiB file, median of {args.rounds} interleaved "
        f"rounds, page cache warm, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}).",
        "",
        "| what | seconds | note |",
        "| --- | ---: | --- |",
        *(f"| {name} | {secs:.2f} | {note} |" for name, secs, note in rows),
        END,
    ]
    section = "\n".join(lines)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text:
        head, _, rest = text.partition(BEGIN)
        text = head + section + rest.partition(END)[2]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
