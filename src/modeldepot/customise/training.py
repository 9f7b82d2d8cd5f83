"""LoRA training with PEFT on PyTorch: the base as the depot stores it (a GGUF file loaded and
dequantised through transformers' GGUF loader, or a Hugging Face folder), adapters on the
attention and MLP projections only (tied input/output embeddings stay frozen), AdamW with a
linear decay, the loss on the trained tokens only.

A checkpoint (adapter weights, optimiser, schedule, random state, losses) is written atomically
every `checkpoint_every` steps, so a run killed at any point resumes from its last checkpoint
without repeating a finished step; the data order of every epoch is fixed by the seed.

A GGUF base is also exported here as a Hugging Face folder (`export_hf`, for `depot convert
--to hf`), through the same loader.

torch, transformers and peft are the `train` extra: only this module imports them, and only
when training or exporting starts.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modeldepot.customise.examples import IGNORE, Example, encode, read_records
from modeldepot.errors import DepotError, PackageNotInstalled, UsageError

__all__ = [
    "EXPORT_DTYPES",
    "PROJECTIONS",
    "Base",
    "Cancelled",
    "Step",
    "TrainingConfig",
    "TrainingResult",
    "export_hf",
    "gguf_architectures",
    "library_versions",
    "train",
]

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The linear layers adapted, by their Hugging Face names (llama, gemma3, qwen2, mistral...)."""


class Cancelled(DepotError):
    """Training stopped on request, after writing a checkpoint."""


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 3
    max_steps: int | None = None
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    lr: float = 2e-3
    batch_size: int = 8
    max_length: int = 512
    val_split: float = 0.1
    seed: int = 1234
    device: str = "cpu"
    threads: int = 0
    """0: one per core."""
    checkpoint_every: int = 1
    targets: tuple[str, ...] = PROJECTIONS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "targets" in known:
            known["targets"] = tuple(known["targets"])
        return cls(**known)


@dataclass(frozen=True)
class Base:
    """Where the base model's files are, as the depot stores them."""

    folder: Path
    gguf_file: str | None
    """The GGUF file inside `folder`, or None for a Hugging Face folder."""
    architecture: str | None
    chat_template: str | None
    """A template to render chat data with, when the model's own files have none."""


@dataclass(frozen=True)
class Step:
    step: int
    total: int
    loss: float
    tokens: int
    seconds: float
    epoch: int
    average_seconds: float = 0.0
    """Mean seconds per step so far (for the time left)."""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float:
        return (self.total - self.step) * (self.average_seconds or self.seconds)


@dataclass
class TrainingResult:
    steps: int
    train_loss: float
    val_loss: float | None
    first_val_loss: float | None
    train_examples: int
    val_examples: int
    trained_tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    peft_dir: Path | None = None
    config_dir: Path | None = None
    """A folder with the base's config.json (what convert_lora_to_gguf.py reads)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()
                if k not in ("peft_dir", "config_dir", "losses")}  # fmt: skip


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "gguf", "safetensors"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _import_stack() -> tuple[Any, Any, Any]:
    try:
        import peft
        import torch
        import transformers
    except ImportError as exc:
        raise PackageNotInstalled(
            f"fine-tuning needs the training extra ({exc.name} is missing): "
            "pip install 'modeldepot[train]' (torch's CPU build first, see the README)"
        ) from None
    # Their progress bars and advice (dequantising, deprecations) are not the user's business:
    # the depot reports the steps itself.
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", module=r"(transformers|peft|torch)(\.|$)")
    return torch, transformers, peft


def gguf_architectures() -> tuple[str, ...]:
    """The GGUF architectures transformers' loader can dequantise into a trainable model."""
    _import_stack()
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return tuple(sorted(a for a in GGUF_CONFIG_MAPPING if a not in ("general", "tokenizer")))


def _load(base: Base, config: TrainingConfig) -> tuple[Any, Any]:
    model, tokenizer = _load_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(config.device), tokenizer


def _load_pretrained(base: Base) -> tuple[Any, Any]:
    """The base as a float32 transformers model and its tokenizer (a GGUF file dequantised)."""
    torch, transformers, _ = _import_stack()
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if base.gguf_file:
        kwargs["gguf_file"] = base.gguf_file
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(base.folder, **(
            {"gguf_file": base.gguf_file} if base.gguf_file else {}))  # fmt: skip
        model = transformers.AutoModelForCausalLM.from_pretrained(base.folder, **kwargs)
    except (ValueError, KeyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"the trainer cannot load this base ({base.architecture or 'unknown architecture'}): "
            f"{first}"
        ) from None
    if getattr(model, "hf_quantizer", None) is not None:
        # Loaded from GGUF, the weights are already dequantised; the marker would stop
        # save_pretrained and PEFT.
        model.hf_quantizer = None
        model.config.quantization_config = None
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
    return model, tokenizer


EXPORT_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def export_hf(base: Base, out: Path, dtype: str = "f32") -> None:
    """A GGUF base as a Hugging Face folder (safetensors, config, tokenizer, chat template),
    its weights dequantised and saved as `dtype` (f32, f16, bf16); `base.chat_template`, when
    given, becomes the folder's template."""
    torch, _, _ = _import_stack()
    model, tokenizer = _load_pretrained(base)
    if base.chat_template:
        tokenizer.chat_template = base.chat_template
    model = model.to(getattr(torch, EXPORT_DTYPES[dtype]))
    with contextlib.suppress(AttributeError):
        del model.config.quantization_config  # loaded from GGUF; the saved weights are plain
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _batches(n: int, size: int, seed: int, epoch: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def _collate(torch: Any, examples: Sequence[Example], pad: int, device: str) -> dict[str, Any]:
    width = max(len(e.ids) for e in examples)
    ids = [list(e.ids) + [pad] * (width - len(e.ids)) for e in examples]
    labels = [list(e.labels) + [IGNORE] * (width - len(e.labels)) for e in examples]
    mask = [[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in examples]
    return {
        "input_ids": torch.tensor(ids, device=device),
        "labels": torch.tensor(labels, device=device),
        "attention_mask": torch.tensor(mask, device=device),
    }


def _split(
    examples: list[Example], val_split: float, seed: int
) -> tuple[list[Example], list[Example]]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = round(len(examples) * val_split) if val_split > 0 else 0
    if val_split > 0 and len(examples) >= 10:
        held = max(1, held)
    val = [examples[i] for i in sorted(order[:held])]
    train = [examples[i] for i in sorted(order[held:])]
    return train, val


def _val_loss(torch: Any, model: Any, examples: list[Example], pad: int, config: TrainingConfig
              ) -> float | None:  # fmt: skip
    """Mean loss per trained token over the held-out examples."""
    if not examples:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), config.batch_size):
            chunk = examples[start : start + config.batch_size]
            batch = _collate(torch, chunk, pad, config.device)
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits  # fmt: skip
            shifted = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(), shifted.reshape(-1),
                ignore_index=IGNORE, reduction="sum")  # fmt: skip
            total += float(losses)
            count += int((shifted != IGNORE).sum())
    model.train()
    return total / max(1, count)


class _Checkpoints:
    """Checkpoints written in the background: the state is copied at the end of a step (a
    few milliseconds) and written while the next step computes, one write at a time. Each is
    written to `checkpoint.tmp/` and swapped in by rename, so a kill at any moment leaves a
    whole checkpoint (the one before, if the kill falls inside a write)."""

    def __init__(self, torch: Any, folder: Path) -> None:
        self.torch = torch
        self.folder = folder
        self._writer: threading.Thread | None = None
        self._failed: BaseException | None = None

    def save(self, peft: Any, model: Any, optimizer: Any, scheduler: Any,
             state: dict[str, Any]) -> None:  # fmt: skip
        payload = {
            "adapter": {k: v.detach().clone() for k, v in
                        peft.get_peft_model_state_dict(model).items()},
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "scheduler": scheduler.state_dict(),
            "rng": self.torch.get_rng_state(),
            "state": copy.deepcopy(state),
        }  # fmt: skip
        self.wait()
        self._writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
        self._writer.start()

    def wait(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def _write(self, payload: dict[str, Any]) -> None:
        try:
            folder = self.folder
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            with open(tmp / "checkpoint.pt", "wb") as f:
                self.torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            old = folder.with_name(folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if folder.exists():
                folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException as exc:  # reported by the next wait()
            self._failed = exc


def _load_checkpoint(torch: Any, folder: Path) -> dict[str, Any] | None:
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        path = candidate / "checkpoint.pt"
        if path.is_file():
            # Written by this module in the job's own folder.
            return dict(torch.load(path, weights_only=False))
    return None


def _step(torch: Any, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any],
          total: int, per_epoch: int, train_set: list[Example], pad: int,
          config: TrainingConfig) -> Step:  # fmt: skip
    """One optimiser step on the batch the seed gives this step number."""
    step = state["step"]
    epoch, index = divmod(step, per_epoch)
    batch_ids = _batches(len(train_set), config.batch_size, config.seed, epoch)[index]
    batch = _collate(torch, [train_set[i] for i in batch_ids], pad, config.device)
    started = time.perf_counter()
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - started
    tokens = int(batch["attention_mask"].sum())
    value = float(loss.detach())
    state["step"] = step + 1
    state["losses"].append(value)
    state["tokens"] += tokens
    state["seconds"] += seconds
    return Step(
        state["step"], total, value, tokens, seconds, epoch + 1, state["seconds"] / state["step"]
    )


def train(
    base: Base,
    data: Path,
    kind: str,
    config: TrainingConfig,
    workdir: Path,
    *,
    on_step: Callable[[Step], None] | None = None,
    on_ready: Callable[[int, int, list[float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Train a LoRA adapter of `base` on `data` (a checked JSONL file of format `kind`), in
    `workdir` (its checkpoint is resumed when there is one). Writes the PEFT adapter to
    `workdir/peft` and the base's config to `workdir/base-config`."""
    torch, _, peft = _import_stack()
    threads = config.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    model, tokenizer = _load(base, config)
    template = None
    if not getattr(tokenizer, "chat_template", None) and kind == "chat":
        if base.chat_template is None:
            raise UsageError("the base has no chat template: train it on prompt/completion or "
                             "text data")  # fmt: skip
        template = base.chat_template
    records = list(read_records(data))
    examples = encode(records, kind, tokenizer, template, config.max_length)
    train_set, val_set = _split(examples, config.val_split, config.seed)
    if not train_set:
        raise UsageError("no examples left to train on after the validation split")
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in config.targets if t in present]
    if not targets:
        raise UsageError(
            f"the base has none of the projections adapters target ({', '.join(config.targets)})"
        )
    lora = peft.LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                           target_modules=targets, task_type="CAUSAL_LM", bias="none")  # fmt: skip
    model = peft.get_peft_model(model, lora)
    model.train()
    per_epoch = math.ceil(len(train_set) / config.batch_size)
    total = per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps) if config.epochs else config.max_steps
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.lr, weight_decay=0.0)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: max(0.0, 1.0 - s / max(1, total))
    )
    pad = tokenizer.pad_token_id
    checkpoint = workdir / "checkpoint"
    saved = _load_checkpoint(torch, checkpoint)
    state: dict[str, Any] = {"step": 0, "losses": [], "tokens": 0, "seconds": 0.0,
                             "first_val_loss": None}  # fmt: skip
    if saved is not None:
        peft.set_peft_model_state_dict(model, saved["adapter"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        state = saved["state"]
    else:
        state["first_val_loss"] = _val_loss(torch, model, val_set, pad, config)
    if on_ready is not None:
        on_ready(state["step"], total, list(state["losses"]))
    checkpoints = _Checkpoints(torch, checkpoint)
    try:
        while state["step"] < total:
            step = _step(torch, model, optimizer, scheduler, state, total, per_epoch,
                         train_set, pad, config)  # fmt: skip
            stop = should_stop is not None and should_stop()
            if state["step"] % config.checkpoint_every == 0 or state["step"] == total or stop:
                checkpoints.save(peft, model, optimizer, scheduler, state)
            if on_step is not None:
                on_step(step)
            if stop and state["step"] < total:
                checkpoints.wait()
                raise Cancelled(f"stopped at step {state['step']} of {total}")
    finally:
        checkpoints.wait()
    val_loss = _val_loss(torch, model, val_set, pad, config)
    peft_dir = workdir / "peft"
    shutil.rmtree(peft_dir, ignore_errors=True)
    model.save_pretrained(peft_dir)
    config_dir = workdir / "base-config"
    shutil.rmtree(config_dir, ignore_errors=True)
    inner = model.base_model.model
    inner.config.architectures = [type(inner).__name__]  # a GGUF-loaded config lacks it
    inner.config.save_pretrained(config_dir)
    tail = state["losses"][-per_epoch:] or [float("nan")]
    return TrainingResult(
        steps=state["step"],
        train_loss=sum(tail) / len(tail),
        val_loss=val_loss,
        first_val_loss=state["first_val_loss"],
        train_examples=len(train_set),
        val_examples=len(val_set),
        trained_tokens=sum(e.trained_tokens for e in train_set),
        seconds=state["seconds"],
        losses=list(state["losses"]),
        peft_dir=peft_dir,
        config_dir=config_dir,
    )
