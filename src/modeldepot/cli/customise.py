"""`depot data check FILE`, `depot finetune BASE --data FILE --name NAME`, `depot jobs`
(list, show, cancel, resume), `depot merge / quantize / convert`, and `depot create NAME -f
Modelfile` (a preset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import json_option, print_json, stderr, stdout
from modeldepot.customise import check_data
from modeldepot.depot import Depot
from modeldepot.registry import ModelVersion
from modeldepot.registry.jobs import Job

__all__: list[str] = []


@app.group()
def data() -> None:
    """Fine-tuning data: OpenAI chat format, prompt/completion, or text (JSONL)."""


@data.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def check(path: Path, as_json: bool) -> None:
    """Check every record of a JSONL training file; exit 1 naming each bad one by line."""
    report = check_data(path)
    if as_json:
        print_json(report.to_dict())
    else:
        for error in report.errors:
            stderr.print(f"  {error}", markup=False, soft_wrap=True)
        if report.ok:
            roles = ", ".join(f"{n} {r}" for r, n in sorted(report.roles.items()))
            summary = (
                f"{path}: {report.examples} {report.format} examples, "
                f"{report.trained_messages} trained on, {report.characters:,} characters"
            )
            stdout.print(summary + (f" ({roles})" if roles else ""), markup=False)
    if not report.ok:
        count = len(report.errors)
        raise CommandError(f"{path}: {count} problem{'s' if count != 1 else ''}", 1)


@data.command("list")
@json_option
@pass_depot
def data_list(depot: Depot, as_json: bool) -> None:
    """The training data sets stored (each by digest, kept while recorded)."""
    found = depot.datasets.list()
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    table = Table(box=None)
    for column in ("DIGEST", "NAME", "FORMAT", "EXAMPLES", "SIZE", "LICENCE", "STORED"):
        table.add_column(column)
    for d in found:
        table.add_row(d.digest[:19], d.name, d.format, str(d.examples), f"{d.size:,}",
                      d.licence or "-", d.created_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    stdout.print(table)


def _eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _run_job(depot: Depot, job: Job, as_json: bool) -> ModelVersion:
    from modeldepot.customise import finetune

    quiet = as_json

    def step(s: finetune.Step) -> None:
        if not quiet:
            left = s.eta_seconds
            stderr.print(f"  step {s.step}/{s.total}  epoch {s.epoch}  loss {s.loss:.4f}  "
                         f"{s.tokens_per_second:,.0f} tokens/s  ETA {_eta(left)}",
                         markup=False, highlight=False)  # fmt: skip

    def phase(text: str) -> None:
        if not quiet:
            stderr.print(f"{job.id}: {text}", markup=False, highlight=False)

    return finetune.run(depot, job, on_step=step, on_phase=phase)


def _finished(depot: Depot, version: ModelVersion, job: Job, as_json: bool,
              rows: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    done = depot.jobs.get(job.id)
    if as_json:
        print_json({"job": done.to_dict(), "version": {"reference": str(version.reference),
                    "digest": version.digest, "status": version.status},
                    "comparisons": rows or []})  # fmt: skip
        return
    for r in rows or []:
        stdout.print(f"  {r['task']} {r['metric']}: {r['before']} -> {r['after']} "
                     f"({r['difference']:+}, 95% interval [{r['low']:+}, {r['high']:+}], "
                     f"{r['items']} items)", markup=False, highlight=False)  # fmt: skip
    progress = done.progress
    val = progress.get("val_loss")
    stdout.print(
        f"{version.reference} ({version.digest[:19]}, {version.status}): adapter of "
        f"{done.spec['base']}; train loss {progress.get('train_loss', float('nan')):.4f}"
        + (f", held-out loss {val:.4f}" if val is not None else ""),
        markup=False, highlight=False,
    )  # fmt: skip


@app.command()
@click.argument("base")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL: OpenAI chat format, prompt/completion, or text.",
)
@click.option("--name", required=True, help="NAME[:TAG] of the adapter to store.")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True)
@click.option(
    "--max-steps",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many optimiser steps.",
)
@click.option("--rank", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--alpha", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True), default=2e-3, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--max-length",
    type=click.IntRange(16),
    default=512,
    show_default=True,
    help="Tokens per example (longer ones are cut).",
)
@click.option("--val-split", type=click.FloatRange(0, 0.5), default=0.1, show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option(
    "--threads", type=click.IntRange(0), default=0, help="CPU threads (default: one per core)."
)
@click.option("--licence", "licence", default=None, help="The data set's licence (SPDX).")
@click.option("--eval", "tasks", multiple=True, metavar="TASK",
              help="Evaluate base and adapter on TASK (repeatable); the difference, with its "
              "paired bootstrap interval, goes into the adapter's card.")  # fmt: skip
@click.option(
    "--eval-limit", type=click.IntRange(1), default=None, help="Items per evaluation task."
)
@click.option("--redteam", "probes", multiple=True, metavar="PROBE",
              help="Red-team base and adapter with this garak probe (module or class, "
              "repeatable), with the same seed: the attack success rates before and after, "
              "with their paired interval, go into the adapter's card.")  # fmt: skip
@click.option(
    "--mlflow",
    "mlflow",
    default=None,
    metavar="URI",
    help="Log the run to this MLflow tracking server.",
)
@json_option
@pass_depot
def finetune(depot: Depot, base: str, data_path: Path, name: str, epochs: int,
             max_steps: int | None, rank: int, alpha: int, lr: float, batch_size: int,
             max_length: int, val_split: float, seed: int, device: str, threads: int,
             licence: str | None, tasks: tuple[str, ...], eval_limit: int | None,
             probes: tuple[str, ...], mlflow: str | None, as_json: bool) -> None:  # fmt: skip
    """Train a LoRA adapter of BASE on your data and store it as NAME (relation `adapter`).

    The loss counts only assistant (or completion) tokens, formatted with the base's own chat
    template. Runs as a job: `depot jobs` lists it, `depot jobs cancel` stops it, and `depot
    jobs resume` continues one that was killed from its last checkpoint.
    """
    from modeldepot.customise import finetune as ft

    config = ft.TrainingConfig(epochs=epochs, max_steps=max_steps, rank=rank, alpha=alpha,
                               lr=lr, batch_size=batch_size, max_length=max_length,
                               val_split=val_split, seed=seed, device=device,
                               threads=threads)  # fmt: skip
    chosen = _tasks(tasks)
    if probes:  # unknown probes are refused before any training
        from modeldepot.evaluation import garak

        garak.select(garak.catalogue(depot.settings.garak_program), probes)
    job = ft.prepare(depot, ft.FineTune(base, data_path, name, config, licence, mlflow))
    if not as_json:
        stderr.print(f"{job.id}: fine-tuning {job.spec['base']} on {data_path} "
                     f"({job.spec['dataset']['examples']} examples) into {job.target}",
                     markup=False, highlight=False)  # fmt: skip
    version = _run_job(depot, job, as_json)
    rows = _before_after(depot, job, version, chosen, eval_limit, probes, as_json)
    _finished(depot, version, job, as_json, rows)


def _tasks(names: tuple[str, ...]) -> list[Any]:
    """The evaluation tasks asked for, checked before any training."""
    if not names:
        return []
    from modeldepot.evaluation.tasks import resolve

    return resolve(list(names), None)


def _before_after(depot: Depot, job: Job, version: ModelVersion, tasks: list[Any],
                  limit: int | None, probes: tuple[str, ...],
                  as_json: bool) -> list[dict[str, Any]]:  # fmt: skip
    """Run the tasks and the red-team probes on the base and on the adapter (through the
    depot's own API, in this process) and return the differences the adapter's card now
    shows: capability, then safety."""
    if not tasks and not probes:
        return []
    import dataclasses

    from modeldepot.customise.finetune import log_comparisons
    from modeldepot.evaluation.runs import RunOptions, evaluate
    from modeldepot.server.inprocess import in_process

    pair = [job.spec["base"], str(version.reference)]
    measuring = dataclasses.replace(depot.settings, measuring=True)
    if tasks:
        if not as_json:
            stderr.print(f"{job.id}: evaluating {pair[0]} and {pair[1]} on "
                         f"{', '.join(t.name for t in tasks)}", markup=False)  # fmt: skip
        evaluate(depot, pair, tasks, RunOptions(limit=limit),
                 connect=lambda: in_process(measuring))  # fmt: skip
    if probes:
        from modeldepot.cli.redteam import listening
        from modeldepot.evaluation.redteam import RedteamOptions, redteam

        if not as_json:
            stderr.print(f"{job.id}: red-teaming {pair[0]} and {pair[1]} with "
                         f"{', '.join(probes)}", markup=False)  # fmt: skip
        options = RedteamOptions(probes=probes, max_prompts=limit or 32,
                                 parallel=depot.settings.parallel)  # fmt: skip
        with listening(depot.settings) as (url, key):
            for name in pair:
                redteam(depot, name, options, base_url=url, api_key=key)
    facts = depot.documents.facts(version)
    rows = [*facts.comparisons, *facts.safety_comparisons]
    log_comparisons(depot, job, rows)
    return rows


@app.group(invoke_without_command=True)
@json_option
@click.pass_context
def jobs(ctx: click.Context, as_json: bool) -> None:
    """Fine-tuning jobs: status and progress (`depot jobs` lists them)."""
    if ctx.invoked_subcommand is not None:
        return
    depot = ctx.find_object(Depot)
    assert depot is not None
    found = depot.jobs.list()
    if as_json:
        print_json([j.to_dict() for j in found])
        return
    if not found:
        stdout.print("no jobs")
        return
    table = Table(box=None)
    for column in ("JOB", "KIND", "STATUS", "TARGET", "STEP", "LOSS", "UPDATED", "RESULT"):
        table.add_column(column)
    for j in found:
        p = j.progress
        step = f"{p.get('step', 0)}/{p.get('total', '?')}" if "total" in p else "-"
        loss = f"{p['loss']:.4f}" if isinstance(p.get("loss"), float) else "-"
        status = j.status + (" (cancelling)" if j.cancel_requested and j.status == "running"
                             else "")  # fmt: skip
        table.add_row(
            j.id,
            j.kind,
            status,
            j.target,
            step,
            loss,
            j.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            j.result or j.error or "",
        )
    stdout.print(table)


@jobs.command("show")
@click.argument("job_id")
@pass_depot
def jobs_show(depot: Depot, job_id: str) -> None:
    """One job in full, as JSON (its specification, progress and loss curve)."""
    print_json(depot.jobs.get(job_id).to_dict())


@jobs.command("cancel")
@click.argument("job_id")
@json_option
@pass_depot
def jobs_cancel(depot: Depot, job_id: str, as_json: bool) -> None:
    """Stop a job: a running one stops after its next step (its checkpoint kept)."""
    job = depot.jobs.cancel(job_id)
    if as_json:
        print_json(job.to_dict())
    elif job.status == "running":
        stdout.print(f"{job_id}: asked to stop after its current step")
    else:
        stdout.print(f"{job_id}: {job.status}")


@jobs.command("resume")
@click.argument("job_id")
@json_option
@pass_depot
def jobs_resume(depot: Depot, job_id: str, as_json: bool) -> None:
    """Continue an interrupted job from its last checkpoint."""
    job = depot.jobs.claim(job_id)
    step = job.progress.get("step", 0)
    if not as_json:
        stderr.print(f"{job.id}: resuming {job.target} after step {step}", markup=False)
    version = _run_job(depot, job, as_json)
    _finished(depot, version, job, as_json)


def _made(version: ModelVersion, as_json: bool, what: str) -> None:
    if as_json:
        print_json(version.to_dict() | {"status": version.status})
        return
    stdout.print(f"{version.reference} ({version.digest[:19]}, {version.status}): {what}",
                 markup=False, highlight=False)  # fmt: skip


@app.command()
@click.argument("adapter")
@click.option("--name", default=None, help="NAME[:TAG] of the merged model "
              "(default: ADAPTER-merged:TAG).")  # fmt: skip
@click.option("--scale", type=float, default=1.0, show_default=True)
@json_option
@pass_depot
def merge(depot: Depot, adapter: str, name: str | None, scale: float, as_json: bool) -> None:
    """Fold an adapter into its base: one GGUF (llama.cpp's export-lora), relation `merge`."""
    from modeldepot.customise import transforms

    version = transforms.merge(depot, adapter, name=name, scale=scale)
    _made(version, as_json, f"{adapter} merged into its base ({version.info.quantization})")


@app.command()
@click.argument("source")
@click.option("--type", "kind", required=True, help="Q8_0, Q4_K_M, Q4_0, ... "
              "(llama-quantize's types).")  # fmt: skip
@click.option("--name", default=None, help="NAME[:TAG] of the result (default: SOURCE:TYPE).")
@json_option
@pass_depot
def quantize(depot: Depot, source: str, kind: str, name: str | None, as_json: bool) -> None:
    """Quantise a GGUF version (llama-quantize), relation `quantized`, with the perplexity of
    source and result on a text the project ships written into the card."""
    from modeldepot.customise import transforms
    from modeldepot.customise.results import derivation

    version = transforms.quantize(depot, source, kind, name=name)
    ppl = (derivation(depot, str(version.reference)) or {}).get("perplexity", {})
    before, after = ppl.get("source", {}).get("value"), ppl.get("result", {}).get("value")
    _made(version, as_json, f"{source} as {kind.upper()}; perplexity {before:.3f} -> {after:.3f}")


@app.command()
@click.argument("source")
@click.option("--to", "to", default="gguf", show_default=True, type=click.Choice(["gguf", "hf"]),
              help="gguf: a Hugging Face folder to GGUF; hf: a GGUF model to a Hugging Face "
              "folder.")  # fmt: skip
@click.option(
    "--type",
    "outtype",
    default=None,
    type=click.Choice(["f16", "bf16", "f32", "q8_0", "auto"]),
    help="The result's numbers: f16 for GGUF, f32 (the dequantised values) for hf by default.",
)
@click.option(
    "--name",
    default=None,
    help="NAME[:TAG] of the result (default: SOURCE:TAG-gguf or SOURCE:TAG-hf).",
)
@json_option
@pass_depot
def convert(depot: Depot, source: str, to: str, outtype: str | None, name: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Convert a Hugging Face folder version (safetensors) to GGUF (convert_hf_to_gguf.py), so
    llama-server can serve it; or, with --to hf, a GGUF version to a Hugging Face folder
    (dequantised by transformers), so vLLM can serve it. Relation `converted`."""
    from modeldepot.customise import transforms

    version = transforms.convert(depot, source, to=to, outtype=outtype, name=name)
    what = "a Hugging Face folder" if to == "hf" else "GGUF"
    _made(version, as_json, f"{source} converted to {what} ({version.info.quantization})")


@app.command()
@click.argument("name")
@click.option("-f", "--file", "modelfile", required=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="The Modelfile (FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, "
              "MESSAGE).")  # fmt: skip
@json_option
@pass_depot
def create(depot: Depot, name: str, modelfile: Path, as_json: bool) -> None:
    """Make NAME[:TAG] a preset, the Ollama way: its base's files (not copied) served with the
    Modelfile's system prompt, template, parameters and messages; relation `preset`. Scanned
    and admitted like any import."""
    from modeldepot.customise.modelfile import read_modelfile
    from modeldepot.customise.presets import create_preset

    version = create_preset(depot, name, read_modelfile(modelfile))
    _made(version, as_json, f"a preset made from {modelfile}")
    if version.status != "ok":
        for reason in version.reasons:
            stderr.print(f"  {reason}", markup=False)
        raise CommandError(f"{version.reference} is {version.status}: stored, never served", 1)
