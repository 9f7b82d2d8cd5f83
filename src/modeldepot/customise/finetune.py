"""`depot finetune`: a LoRA adapter trained from a stored base on the user's data, as a job.

`prepare` checks everything a run needs before any work (the base is an admitted generative
model, every data record is valid and there are enough of them, the new name is free to use),
stores the data set content-addressed, and records the job. `run` trains in the job's folder
(resuming its checkpoint), converts the PEFT adapter to GGUF with llama.cpp's
`convert_lora_to_gguf.py`, and stores the adapter as a version with relation `adapter` (see
results.py). A job killed at any point leaves no version; `depot jobs resume` continues it.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from modeldepot.customise.data import check_data
from modeldepot.customise.examples import BUILTIN_TEMPLATES
from modeldepot.customise.llamacpp import convert_lora
from modeldepot.customise.provenance import Material
from modeldepot.customise.results import Output, base_files, servable_base, store_result
from modeldepot.customise.tracking import MLflowRun
from modeldepot.customise.training import (
    Base,
    Cancelled,
    Step,
    TrainingConfig,
    TrainingResult,
    gguf_architectures,
    library_versions,
    train,
)
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, FormatError, UsageError
from modeldepot.formats.gguf import read_gguf_info
from modeldepot.refs import Reference
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.registry.jobs import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED, Job
from modeldepot.runtime.llama import ARCHITECTURE_TEMPLATES
from modeldepot.store import LayerKind

__all__ = [
    "MIN_EXAMPLES",
    "FineTune",
    "Step",
    "TrainingConfig",
    "log_comparisons",
    "prepare",
    "run",
]

log = logging.getLogger("modeldepot.customise")

REPORT_EVERY = 1.0
"""Seconds between progress writes to the registry."""
MIN_EXAMPLES = 8
"""Fewer examples than this teach nothing a held-out loss could show."""
KIND = "finetune"


@dataclass(frozen=True)
class FineTune:
    base: str
    data: Path
    name: str
    config: TrainingConfig
    licence: str | None = None
    """The data set's licence (SPDX), when the user gives it."""
    mlflow: str | None = None
    """An MLflow tracking server to log the run to."""


def _job_dir(depot: Depot, job: Job) -> Path:
    return depot.settings.layout.job(job.id)


def prepare(depot: Depot, request: FineTune, *, actor: str | None = None) -> Job:
    """Check the request and record the job (nothing is trained yet)."""
    ref = Reference.parse(request.name)
    if ref.digest is not None:
        raise UsageError(f"{request.name!r}: name the new model NAME[:TAG], without a digest")
    base = servable_base(depot, request.base)
    if base.info.format not in ("gguf", "safetensors", "huggingface"):
        raise UsageError(
            f"{base.reference} is {base.info.format}; fine-tuning reads GGUF and Hugging Face "
            "folders"
        )
    if base.info.format == "gguf":
        known = gguf_architectures()
        if (base.info.architecture or "") not in known:
            raise UsageError(
                f"the trainer cannot load {base.info.architecture or 'this'} GGUF models "
                f"(transformers' GGUF loader reads {', '.join(known)})"
            )
    config = request.config
    if config.device not in ("cpu", "cuda") and not config.device.startswith("cuda:"):
        raise UsageError(f"--device {config.device!r}: cpu or cuda")
    if request.mlflow:
        MLflowRun.check(request.mlflow)
    report = check_data(request.data)
    if report.errors:
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise FormatError(f"{request.data}: {report.errors[0]}{more}")
    if report.examples < MIN_EXAMPLES:
        raise UsageError(
            f"{request.data}: {report.examples} examples; fine-tuning needs at least {MIN_EXAMPLES}"
        )
    with depot.lock.shared():
        blob = depot.store.put_file(request.data)
        dataset = depot.datasets.record(blob.digest, request.data.name, blob.size,
                                        report.format or "text", report.examples,
                                        request.licence)  # fmt: skip
    spec = {
        "base": str(base.reference),
        "base_digest": base.digest,
        "dataset": dataset.to_dict(),
        "config": config.to_dict(),
        "name": str(ref),
        **({"mlflow": request.mlflow} if request.mlflow else {}),
    }
    job = depot.jobs.create(KIND, str(ref), spec, actor or depot.settings.actor)
    log.info("fine-tuning job %s prepared: %s from %s %s, %d examples of data set %s", job.id,
             ref, base.reference, base.digest, report.examples, blob.digest)  # fmt: skip
    return job


@contextmanager
def _stop_on_term(flag: list[bool]) -> Iterator[None]:
    """SIGTERM asks training to stop at the next step (after a checkpoint)."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(_signum: int, _frame: Any) -> None:
        flag.append(True)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _base(depot: Depot, spec: dict[str, Any]) -> tuple[ModelVersion, Base]:
    """The base version the job was prepared with (by digest, wherever its tag moved since)."""
    ref = Reference.parse(spec["base"])
    version = depot.names.show(f"{ref.repository}@{spec['base_digest']}")
    folder = base_files(depot, version)
    weights = [f.path for f in version.files if f.kind == LayerKind.WEIGHTS]
    gguf_file = weights[0] if version.info.format == "gguf" and weights else None
    template = None
    if not version.info.chat_template:
        template = BUILTIN_TEMPLATES.get(ARCHITECTURE_TEMPLATES.get(
            version.info.architecture or "", "chatml"))  # fmt: skip
    return version, Base(folder, gguf_file, version.info.architecture, template)


def _convert(depot: Depot, result: TrainingResult, base_ref: str, out: Path) -> Path:
    """The PEFT adapter as a GGUF LoRA (f16), with llama.cpp's own converter."""
    assert result.peft_dir is not None and result.config_dir is not None
    config_path = result.peft_dir / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = base_ref  # not the training folder's path
    config_path.write_text(json.dumps(adapter_config, indent=2) + "\n")
    (result.peft_dir / "README.md").unlink(missing_ok=True)
    convert_lora(result.peft_dir, result.config_dir, out, depot.settings)
    return out


def _tracking(depot: Depot, job: Job) -> MLflowRun | None:
    """The job's MLflow run (started once; a resumed job logs into the same run)."""
    uri = job.spec.get("mlflow")
    if not uri:
        return None
    known = job.progress.get("mlflow_run")
    run = MLflowRun.start(uri, job.target, {"modeldepot.job": job.id,
                          "modeldepot.base": job.spec["base"]}, run_id=known)  # fmt: skip
    if known is None:
        depot.jobs.report(job.id, mlflow_run=run.run_id)
        config = job.spec["config"]
        run.log(params={**{k: v for k, v in config.items() if k != "targets"},
                        "targets": ",".join(config["targets"]), "base": job.spec["base"],
                        "base_digest": job.spec["base_digest"],
                        "dataset": job.spec["dataset"]["name"],
                        "dataset_digest": job.spec["dataset"]["digest"]})  # fmt: skip
    return run


def log_comparisons(depot: Depot, job: Job, rows: list[dict[str, Any]]) -> None:
    """The evaluation before and after, into the job's MLflow run (when it has one)."""
    uri, run_id = job.spec.get("mlflow"), depot.jobs.get(job.id).progress.get("mlflow_run")
    if not uri or not run_id or not rows:
        return
    run = MLflowRun.start(uri, job.target, {}, run_id=run_id)
    metrics: dict[str, float] = {}
    for r in rows:
        key = f"{r['task']}.{r['metric']}".replace("@", "_at_")
        metrics |= {f"{key}.before": r["before"], f"{key}.after": r["after"],
                    f"{key}.difference": r["difference"]}  # fmt: skip
    run.log(metrics=metrics)


def run(
    depot: Depot,
    job: Job,
    *,
    on_step: Callable[[Step], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Train, convert and store the job's adapter; the job ends succeeded, failed, cancelled
    or (interrupted by Ctrl-C) resumable."""
    spec = job.spec
    config = TrainingConfig.from_dict(spec["config"])
    workdir = _job_dir(depot, job)
    workdir.mkdir(parents=True, exist_ok=True)
    started = datetime.fromisoformat(spec.get("started") or job.created_at.isoformat())
    stop: list[bool] = []
    phase = on_phase or (lambda _text: None)
    tracked: MLflowRun | None = None

    losses: list[float] = []
    reported = [0.0]

    def stepped(step: Step) -> None:
        losses.append(round(step.loss, 5))
        if tracked is not None:
            tracked.log(metrics={"loss": step.loss, "tokens_per_second": step.tokens_per_second},
                        step=step.step)  # fmt: skip
        # The registry hears at most once a second (and at the last step): a step can be
        # shorter than a write, and the job's record need not be that fresh.
        now = time.monotonic()
        if now - reported[0] >= REPORT_EVERY or step.step == step.total:
            reported[0] = now
            cancel = depot.jobs.report(
                job.id,
                step=step.step,
                total=step.total,
                loss=round(step.loss, 5),
                tokens_per_second=round(step.tokens_per_second, 1),
                eta_seconds=round(step.eta_seconds),
                epoch=step.epoch,
                losses=losses[-10_000:],
            )
            if cancel:
                stop.append(True)
        if on_step is not None:
            on_step(step)

    def ready(step: int, total: int, done: list[float]) -> None:
        losses[:] = [round(x, 5) for x in done]  # those of the steps the checkpoint holds
        depot.jobs.report(job.id, step=step, total=total, phase="training", losses=losses)
        phase(f"training: step {step} of {total}" if step else f"training: {total} steps")

    log.info("fine-tuning job %s started: %s from %s", job.id, spec["name"], spec["base"])
    try:
        tracked = _tracking(depot, job)
        with _stop_on_term(stop):
            base_version, base = _base(depot, spec)
            dataset = spec["dataset"]
            data_path = depot.store.verified_path(dataset["digest"])
            phase(f"loading {spec['base']}")
            result = train(base, data_path, dataset["format"], config, workdir,
                           on_step=stepped, on_ready=ready,
                           should_stop=lambda: bool(stop))  # fmt: skip
        phase("converting the adapter to GGUF")
        depot.jobs.report(job.id, phase="converting")
        base_name = spec["base"]
        adapter = _convert(depot, result, base_name, workdir / "adapter.gguf")
        info = read_gguf_info(adapter)
        info = info.__class__(**{**info.to_dict(), "license": base_version.info.license,
                                 "license_source": f"base:{base_name}"})  # fmt: skip
        assert result.peft_dir is not None
        measured = result.to_dict()
        record = {
            "base": {"reference": base_name, "digest": base_version.digest},
            "dataset": dataset,
            "parameters": config.to_dict(),
            "training": measured,
            "losses": [round(x, 5) for x in result.losses],
            "chat_template": "the base's own"
            if not base.chat_template
            else "llama.cpp "
            + ARCHITECTURE_TEMPLATES.get(base_version.info.architecture or "", "chatml"),
        }
        phase("storing, scanning and signing the adapter")
        depot.jobs.report(job.id, phase="storing", train_loss=measured["train_loss"],
                          val_loss=measured["val_loss"])  # fmt: skip
        version = store_result(
            depot,
            kind=KIND,
            name=spec["name"],
            info=info,
            outputs=[
                Output("adapter.gguf", LayerKind.ADAPTER, adapter),
                Output(
                    "peft/adapter_model.safetensors",
                    LayerKind.ADAPTER,
                    result.peft_dir / "adapter_model.safetensors",
                ),
                Output(
                    "peft/adapter_config.json",
                    LayerKind.CONFIG,
                    result.peft_dir / "adapter_config.json",
                ),
            ],
            lineage=[
                LineageLink("adapter", base_name, base_version.digest),
                LineageLink("dataset", dataset["name"], dataset["digest"]),
            ],
            materials=[
                Material("base", f"depot:{base_name}", base_version.digest),
                Material(
                    f"dataset/{dataset['name']}",
                    f"depot:dataset/{dataset['digest']}",
                    dataset["digest"],
                ),
            ],
            record=record,
            invocation=job.id,
            started=started,
            libraries=library_versions(),
            actor=actor,
        )
    except Cancelled as exc:
        log.info("fine-tuning job %s cancelled: %s", job.id, exc)
        depot.jobs.finish(job.id, CANCELLED, error=str(exc))
        if tracked is not None:
            tracked.finish("KILLED")
        raise
    except KeyboardInterrupt:
        log.info("fine-tuning job %s interrupted: resumable", job.id)
        depot.jobs.finish(job.id, INTERRUPTED, error="interrupted (resume with depot jobs resume)")
        raise
    except (DepotError, OSError, RuntimeError, ValueError) as exc:
        log.warning("fine-tuning job %s failed: %s", job.id, exc)
        depot.jobs.finish(job.id, FAILED, error=str(exc))
        if tracked is not None:
            tracked.finish("FAILED")
        raise
    if tracked is not None:
        tracked.log(metrics={k: v for k, v in measured.items() if k.endswith("loss")
                             and isinstance(v, float)}, step=result.steps)  # fmt: skip
        tracked.log(params={"result": str(version.reference), "result_digest": version.digest})
        tracked.finish()
    depot.jobs.finish(job.id, SUCCEEDED, result=str(version.reference))
    log.info("fine-tuning job %s succeeded: %s %s", job.id, version.name, version.digest)
    shutil.rmtree(workdir, ignore_errors=True)
    return version
