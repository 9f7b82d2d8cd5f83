"""Quantising: `depot quantize` against llama-quantize run directly on the same F16 file, with
the same type and threads, one run.

    python bench/quantize_speed.py [--model gemma3] [--type Q4_K_M] [--rounds 3] [--threads 2]

The F16 source is made from the packaged model (llama-quantize --allow-requantize F16) and
stored in the depot. `depot quantize` is timed whole (llama-quantize, then storing, scanning,
admitting and signing the result) and with the perplexity of source and result that it writes
into the card reported apart. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from modeldepot.config import Settings
from modeldepot.customise import llamacpp, transforms
from modeldepot.depot import Depot
from results import write_section

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3")
    parser.add_argument("--type", default="Q4_K_M")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="quantize-bench-"))
    settings = Settings(home=home, user="bench", threads=args.threads)
    with Depot(settings) as depot:
        depot.keys  # noqa: B018 - the registry, opened before any timing
        version = depot.intake.pull(args.model)
        packaged = depot.store.local_path(next(f.digest for f in version.files
                                               if f.kind == "weights"))  # fmt: skip
        f16 = home / "source.F16.gguf"
        llamacpp.quantize(packaged, f16, "F16", settings, requantize=True)
        depot.intake.import_path(f16, f"{args.model}-f16")
        subprocess.run([str(BIN / "depot"), "keygen"], env={**os.environ, "DEPOT_HOME": str(home)},
                       check=True, capture_output=True)  # fmt: skip
        stored = depot.store.local_path(next(
            f.digest for f in depot.names.show(f"{args.model}-f16").files
            if f.kind == "weights"))  # fmt: skip
        direct, whole, quantise_part, perplexity_part = [], [], [], []
        spent = [0.0]
        real_perplexity = llamacpp.perplexity

        def timed(*a: object, **k: object) -> tuple[float, float]:
            t0 = time.perf_counter()
            try:
                return real_perplexity(*a, **k)  # type: ignore[arg-type]
            finally:
                spent[0] += time.perf_counter() - t0

        for i in range(args.rounds):  # interleaved rounds
            out = home / f"direct-{i}.gguf"
            started = time.perf_counter()
            subprocess.run([str(BIN / "llama-quantize"), str(stored), str(out), args.type,
                            str(args.threads)], check=True, capture_output=True)  # fmt: skip
            direct.append(time.perf_counter() - started)
            out.unlink()
            spent[0] = 0.0
            llamacpp.perplexity = timed  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                transforms.quantize(depot, f"{args.model}-f16", args.type, name=f"q:{i}")
                elapsed = time.perf_counter() - started
            finally:
                llamacpp.perplexity = real_perplexity  # type: ignore[assignment]
            whole.append(elapsed)
            perplexity_part.append(spent[0])
            quantise_part.append(elapsed - spent[0])
    shutil.rmtree(home, ignore_errors=True)
    d, q, p, w = median(direct), median(quantise_part), median(perplexity_part), median(whole)
    command = (f"python bench/quantize_speed.py --model {args.model} --type {args.type} "
               f"--rounds {args.rounds} --threads {args.threads}")  # fmt: skip
    print(write_section("quantize-speed", [
        f"## Quantising ({args.model} F16 to {args.type}, CPU)",
        "",
        f"`{command}` ({os.cpu_count()} cores; wall seconds, medians of {args.rounds} "
        "interleaved rounds)",
        "",
        "| what | seconds | llama-quantize directly | ratio (speed) |",
        "|---|---|---|---|",
        f"| depot quantize: quantise, store, scan, admit, sign | {q:.2f} | {d:.2f} | "
        f"**{d / q:.2f}x** |",
        f"| depot quantize, with the perplexity of source and result for the card | {w:.2f} | "
        f"{d:.2f} | {d / w:.2f}x |",
        "",
        f"The two perplexity runs (source and result, on the shipped text) take {p:.2f} s of "
        "it. The rest of the difference is the result read once more to store it under its "
        "sha256 (it is moved into the store, not copied, and signed with the digests computed "
        "then) and the scan and admission; llama-quantize itself runs with the same arguments "
        "and threads. Perplexity is computed by llama-perplexity over the whole text each "
        "time, since the card states it for both.",
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
