"""Fine-tuning speed: `depot finetune`'s training (as a job: checkpoint every step, progress
in the registry) against a plain PEFT training loop written directly on transformers and peft,
on the same model (the packaged SmolLM2, dequantised from its GGUF), the same tokenised
examples and batches, the same LoRA and optimiser settings and the same threads, one run.

    python bench/finetune_speed.py [--steps 12] [--rounds 2] [--threads 2]

Both are timed over their training steps only (from the first step's start to the last one's
end, checkpoints and bookkeeping included for the depot); model loading is outside both.
Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from statistics import median

from modeldepot.config import Settings
from modeldepot.customise import finetune
from modeldepot.customise.examples import encode, read_records
from modeldepot.customise.results import base_files
from modeldepot.customise.training import PROJECTIONS, TrainingConfig, _batches, _collate, _split
from modeldepot.depot import Depot
from results import write_section

DATA = Path(str(files("modeldepot.customise") / "data" / "kestrel.jsonl"))


def plain_loop(folder: Path, gguf: str, config: TrainingConfig, steps: int) -> float:
    """A plain PEFT loop: load, wrap, step. Returns trained tokens per second."""
    import peft
    import torch
    import transformers

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf,
                                                              dtype=torch.float32)  # fmt: skip
    model.hf_quantizer = None
    model.config.quantization_config = None
    examples = encode(list(read_records(DATA)), "chat", tokenizer, None, config.max_length)
    train, _ = _split(examples, config.val_split, config.seed)
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=list(PROJECTIONS), task_type="CAUSAL_LM"))  # fmt: skip
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.lr, weight_decay=0.0)  # fmt: skip
    per_epoch = len(_batches(len(train), config.batch_size, config.seed, 0))
    tokens = 0
    started = time.perf_counter()
    for step in range(steps):
        epoch, index = divmod(step, per_epoch)
        ids = _batches(len(train), config.batch_size, config.seed, epoch)[index]
        batch = _collate(torch, [train[i] for i in ids], tokenizer.eos_token_id, "cpu")
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - started)


def depot_job(home: Path, config: TrainingConfig, steps: int, name: str) -> float:
    """`depot finetune` as a job; trained tokens per second over its steps."""
    marks: dict[str, float] = {}
    tokens = [0]

    def phase(text: str) -> None:
        if text.startswith("training"):
            marks["start"] = time.perf_counter()

    def step(s: finetune.Step) -> None:
        tokens[0] += s.tokens
        marks["end"] = time.perf_counter()

    with Depot(Settings(home=home, user="bench")) as depot:
        job = finetune.prepare(depot, finetune.FineTune(
            "smollm2", DATA, name, TrainingConfig(**{**config.to_dict(), "max_steps": steps,
                                                     "targets": PROJECTIONS})))  # fmt: skip
        finetune.run(depot, job, on_step=step, on_phase=phase)
    return tokens[0] / (marks["end"] - marks["start"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    config = TrainingConfig(threads=args.threads, batch_size=8, rank=16, alpha=32, lr=2e-3)
    with Depot(Settings(home=home, user="bench")) as depot:
        version = depot.intake.pull("smollm2")
        folder = base_files(depot, version)
        gguf = next(f.path for f in version.files if f.kind == "weights")
    ours, theirs = [], []
    for i in range(args.rounds):  # interleaved, so the machine's noise falls on both alike
        ours.append(depot_job(home, config, args.steps, f"bench-{i}"))
        theirs.append(plain_loop(folder, gguf, config, args.steps))
        print(
            f"round {i + 1}: depot {ours[-1]:.0f} tokens/s, plain PEFT {theirs[-1]:.0f}",
            file=sys.stderr,
        )
    shutil.rmtree(home, ignore_errors=True)
    ratio = median(ours) / median(theirs)
    command = (f"python bench/finetune_speed.py --steps {args.steps} --rounds {args.rounds} "
               f"--threads {args.threads}")  # fmt: skip
    print(write_section("finetune-speed", [
        "## Fine-tuning speed (LoRA, SmolLM2-135M, CPU)",
        "",
        f"`{command}` ({os.cpu_count()} cores; r=16 on q,k,v,o,gate,up,down, batch 8, AdamW "
        f"lr 2e-3, the shipped Kestrel data set; {args.steps} steps per round, medians of "
        f"{args.rounds} interleaved rounds)",
        "",
        "| trainer | trained tokens/s | ratio |",
        "|---|---|---|",
        f"| depot finetune (job: checkpoint every step, progress in the registry) | "
        f"{median(ours):.0f} | **{ratio:.2f}x** |",
        f"| plain PEFT loop (transformers + peft, no checkpoints) | {median(theirs):.0f} | 1.00x |",
        "",
        "Rounds: " + ", ".join(f"{a:.0f} vs {b:.0f}" for a, b in zip(ours, theirs, strict=True)),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
