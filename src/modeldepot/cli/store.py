"""Commands that manage the store: tag, rm, gc, du, check."""

from __future__ import annotations

import click

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import (
    bytes_progress,
    human_size,
    json_option,
    print_json,
    report,
    stdout,
)
from modeldepot.depot import Depot
from modeldepot.describe import version_view
from modeldepot.refs import Reference, gives_version

__all__: list[str] = []


@app.command()
@click.argument("source")
@click.argument("target")
@json_option
@pass_depot
def tag(depot: Depot, source: str, target: str, as_json: bool) -> None:
    """Point TARGET (NAME:TAG) at the version SOURCE names; the old version stays stored."""
    version = depot.names.tag(source, target)
    report(as_json, version_view(version), f"{version.reference} -> {version.digest}")


@app.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--all-tags", is_flag=True, help="Remove every tag and version of each NAME.")
@json_option
@pass_depot
def rm(depot: Depot, names: tuple[str, ...], all_tags: bool, as_json: bool) -> None:
    """Remove tags (NAME:TAG; NAME alone is NAME:latest) or versions (NAME@sha256:...), or with
    --all-tags every tag of NAME. Files stay until `depot gc`."""
    removed: list[dict[str, object]] = []
    for name in names:
        if all_tags:
            for version in depot.names.remove_model(name):
                removed.append({"removed": str(version.reference), "digest": version.digest,
                                "tags": list(version.tags)})  # fmt: skip
                if not as_json:
                    tags = ", ".join(version.tags) or "untagged"
                    stdout.print(f"removed {version.reference.repository} ({tags}) "
                                 f"{version.digest}", markup=False)  # fmt: skip
            continue
        version = depot.names.remove(name)
        ref = Reference.parse(name)
        others = _other_tags(depot, ref)
        removed.append({"removed": str(ref), "digest": version.digest,
                        "remaining_tags": others})  # fmt: skip
        if as_json:
            continue
        stdout.print(f"removed {ref} ({version.digest})", markup=False)
        if not gives_version(name) and others:
            stdout.print(f"only the tag {ref.tag!r} went: {ref.repository} still has "
                         f"{', '.join(others)} (`depot rm {ref.repository} --all-tags` removes "
                         "every tag)", markup=False)  # fmt: skip
    if as_json:
        print_json(removed)


def _other_tags(depot: Depot, ref: Reference) -> list[str]:
    """The tags the model of `ref` still has."""
    return sorted(
        str(v.reference) for v in depot.names.registry.versions()
        if (v.reference.namespace, v.reference.name) == (ref.namespace, ref.name)
    )  # fmt: skip


@app.command()
@click.option("--untagged", is_flag=True, help="First remove versions no tag points to.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def gc(depot: Depot, untagged: bool, as_json: bool) -> None:
    """Delete blobs no stored version uses and leftovers of interrupted imports."""
    report = depot.housekeeping.gc(prune_untagged=untagged)
    if as_json:
        print_json(vars(report))
        return
    for line in report.repaired:
        stdout.print(f"admitted a version an interrupted import left pending: {line}")
    for ref in report.pruned_versions:
        stdout.print(f"removed untagged {ref}")
    stdout.print(
        f"removed {report.removed_blobs} blobs, freed {human_size(report.freed_bytes)}"
        f" (+{human_size(report.temporary_bytes)} of temporary files)"
    )


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def du(depot: Depot, as_json: bool) -> None:
    """Show disk usage: per version, shared bytes, and what `gc` would free."""
    usage = depot.housekeeping.disk_usage()
    if as_json:
        print_json({**vars(usage), "models": [vars(m) for m in usage.models]})
        return
    for m in usage.models:
        shared = f" ({human_size(m.shared)} shared)" if m.shared else ""
        names = ", ".join(m.references)
        stdout.print(f"{human_size(m.size):>10}  {names}{shared}", markup=False)
    saved = usage.logical_bytes - usage.referenced_bytes
    stdout.print(
        f"{human_size(usage.blob_bytes):>10}  total in {usage.blob_count} blobs"
        f" (deduplication saves {human_size(max(saved, 0))};"
        f" gc would free {human_size(usage.reclaimable_bytes + usage.temporary_bytes)})"
    )


@app.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def check(depot: Depot, names: tuple[str, ...], as_json: bool) -> None:
    """Hash every stored file again and report any that is missing or changed.

    Checks the named models, or every stored version when none is named. Exits 1 on damage.
    """
    versions = (
        [depot.names.show(n) for n in names]
        if names
        else depot.names.versions(include_untagged=True)
    )
    total = sum({f.digest: f.size for v in versions for f in v.files}.values())
    with bytes_progress("checking", total) as advance:
        problems = list(depot.integrity.check(names, progress=advance))
    if as_json:
        print_json([vars(p) for p in problems])
    else:
        for p in problems:
            detail = f" (now {p.actual})" if p.actual else ""
            stdout.print(f"{p.problem}: {p.reference} {p.path} {p.digest}{detail}", markup=False)
        if not problems:
            count = len({v.digest for v in versions})
            stdout.print(f"ok: {count} versions, {human_size(total)} verified")
    if problems:
        raise CommandError(f"{len(problems)} damaged or missing files", 1)
