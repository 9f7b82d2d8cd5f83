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
from modeldepot.store.local import LocalBlobStore
from results import write_section

HERE = Path(__file__).parent


def make_file(path: Path, size_mb: int) -> None:
    if path.exists() and path.stat().st_size == size_mb * 1024 * 1024:
        return
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))
        f.flush()
        os.fsync(f.fileno())


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def run_cp(source: Path, target: Path, sync: bool = False) -> None:
    subprocess.run(["cp", source, target], check=True)
    if sync:
        subprocess.run(["sync", target], check=True)  # fsync of that one file


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def bench_copy(work: Path, size_mb: int, rounds: int) -> list[tuple[str, float, str]]:
    source = work / "source.bin"
    make_file(source, size_mb)
    source.read_bytes() if size_mb <= 2048 else None  # warm the page cache for every contender
    times: dict[str, list[float]] = {"cp": [], "cp+sync": [], "import": [], "hash": []}
    for _ in range(rounds):  # interleaved, so machine noise hits every contender alike
        times["cp"].append(timed(run_cp, source, fresh(work / "cp") / "x"))
        times["cp+sync"].append(timed(run_cp, source, fresh(work / "cp") / "x", True))
        store = LocalBlobStore(fresh(work / "store"))
        times["import"].append(timed(store.put_file, source, clone=False))

        def hash_only() -> None:
            with open(source, "rb") as f:
                hashlib.file_digest(f, "sha256")

        times["hash"].append(timed(hash_only))
    shutil.rmtree(work / "cp")
    shutil.rmtree(work / "store")
    cp = statistics.median(times["cp"])
    cp_sync = statistics.median(times["cp+sync"])
    imp = statistics.median(times["import"])
    hsh = statistics.median(times["hash"])
    mb = size_mb * 1024 * 1024 / 1e6
    return [
        ("`cp` (returns before the data is on disk)", cp, f"{mb / cp:.0f} MB/s"),
        ("`cp` then `sync FILE` (same durability as an import)", cp_sync,
         f"{mb / cp_sync:.0f} MB/s"),
        ("depot import: sha256 + copy + fsync + rename", imp,
         f"{mb / imp:.0f} MB/s: **{cp_sync / imp:.2f}x** `cp`+`sync`, {cp / imp:.2f}x `cp`"),
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
        store = LocalBlobStore(fresh(work / "store"))
        start = time.perf_counter()
        blob = store.put_file(source, clone=True)
        clone.append(time.perf_counter() - start)
        cloned = blob.cloned
        store = LocalBlobStore(fresh(work / "store"))
        copy.append(timed(store.put_file, source, clone=False))
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
        elapsed = timed(depot.intake.pull, "smollm2")
        again = timed(depot.intake.pull, "smollm2")
    shutil.rmtree(home)
    return [
        ("`depot pull smollm2` end to end (98 MB, new store)", elapsed,
         "hash + copy + fsync, GGUF metadata, manifest, registry"),
        ("`depot pull smollm2` again (already stored)", again,
         "its known digest is in the store: nothing read or written"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reflink-dir", default="", help="a folder on an XFS/btrfs mount")
    args = parser.parse_args()
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    rows = bench_copy(work, args.size_mb, args.rounds)
    if args.reflink_dir:
        rows += bench_reflink(Path(args.reflink_dir), args.size_mb, args.rounds)
    rows += bench_smollm2(work)
    (work / "source.bin").unlink(missing_ok=True)
    command = " ".join(["python", "bench/import_speed.py", *sys.argv[1:]])
    lines = [
        "## Import speed",
        "",
        f"Command: `{command}` ({args.size_mb} MiB file, median of {args.rounds} interleaved "
        f"rounds, page cache warm, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}).",
        "",
        "| what | seconds | note |",
        "| --- | ---: | --- |",
        *(f"| {name} | {secs:.2f} | {note} |" for name, secs, note in rows),
    ]
    section = write_section("import_speed", lines)
    print(section)


if __name__ == "__main__":
    main()
