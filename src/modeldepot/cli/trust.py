"""Commands that verify and govern: scan, keygen, sign, verify, bom, card, quarantine, policy,
audit."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import click

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.render import (
    bytes_progress,
    json_option,
    path_size,
    print_json,
    report,
    stderr,
    stdout,
    working,
)
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, UsageError
from modeldepot.registry.audit import parse_since, readable
from modeldepot.registry.records import QUARANTINED
from modeldepot.scan import ScanReport, Severity, scan_path
from modeldepot.verify.policy import load_policy
from modeldepot.verify.quarantine import Entry, parse_until
from modeldepot.verify.signing import SignatureFailure, Signer, generate_key

__all__: list[str] = []


def edit_in_editor(text: str, editor: str) -> str:
    """Open `text` in the user's editor and return what they saved."""
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as f:
        f.write(text)
        path = f.name
    try:
        subprocess.run([*shlex.split(editor), path], check=True)
        return Path(path).read_text(encoding="utf-8")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DepotError(f"editor {editor!r} failed: {exc}") from None
    finally:
        os.unlink(path)


_SEVERITY_COLOURS = {"critical": "red", "high": "red", "medium": "yellow", "low": "cyan",
                     "info": "dim"}  # fmt: skip


def _print_report(report: ScanReport, block_at: Severity) -> None:
    for f in sorted(report.findings, key=lambda f: (-f.severity, f.location)):
        colour = _SEVERITY_COLOURS[str(f.severity)]
        mark = "BLOCK" if f.severity >= block_at else "     "
        stdout.print(f"[{colour}]{mark} {f.severity!s:<8}[/{colour}] {f.code}  ", end="")
        stdout.print(f"{f.location}: {f.message}", markup=False)


@app.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--block", "block", help="Lowest severity that blocks (default: the policy's).")
@click.pass_context
def scan(ctx: click.Context, paths: tuple[Path, ...], as_json: bool, block: str | None) -> None:
    """Scan model files or folders without loading them.

    Exit status: 0 clean, 1 when a finding blocks, 2 on error (unreadable path, bad option).
    """
    depot: Depot = ctx.obj
    try:
        block_at = Severity.parse(block) if block else load_policy(depot.settings.home).block_at
        total = sum(path_size(p) or 0 for p in paths)
        with bytes_progress("scanning", total) as advance:
            reports = [scan_path(p, progress=advance) for p in paths]
    except (DepotError, ValueError, OSError) as exc:
        raise CommandError(str(exc), 2) from None
    blocking = [f for r in reports for f in r.blocking(block_at)]
    if as_json:
        print_json({"block_at": str(block_at), "blocking": len(blocking),
                    "reports": [r.to_dict() for r in reports]})  # fmt: skip
    else:
        for report in reports:
            _print_report(report, block_at)
            stdout.print(
                f"{report.target}: {len(report.scanned)} files, "
                f"{len(report.findings)} findings, "
                f"{len(report.blocking(block_at))} blocking",
                markup=False,
            )
    if blocking:  # fmt: skip
        raise CommandError(f"{len(blocking)} blocking findings (at {block_at} or above)", 1)


@app.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--exist-ok", is_flag=True, help="Keep an existing key instead of failing.")
@json_option
@pass_depot
def keygen(depot: Depot, path: Path | None, exist_ok: bool, as_json: bool) -> None:
    """Write a new ECDSA P-256 signing key to PATH (default: the depot's own key,
    DEPOT_HOME/keys/depot) and its public key to PATH.pub."""
    path = path or depot.signatures.default_key
    if exist_ok and path.exists():
        report(as_json, {"private": str(path), "public": f"{path}.pub", "created": False},
               f"keeping the key at {path}")  # fmt: skip
        return
    private, public = generate_key(path)
    report(as_json, {"private": str(private), "public": str(public), "created": True},
           f"private key: {private} (keep it secret)\npublic key:  {public}")  # fmt: skip


@app.command()
@click.argument("name")
@click.option(
    "--key",
    type=click.Path(path_type=Path),
    help="PEM private key (default: the depot's own key from `depot keygen`).",
)
@click.option(
    "--sigstore",
    is_flag=True,
    help="Keyless signing with Sigstore (needs the network and an OIDC identity).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Also write the signature bundle here (for `model_signing verify`).",
)
@json_option
@pass_depot
def sign(depot: Depot, name: str, key: Path | None, sigstore: bool, output: Path | None,
         as_json: bool) -> None:  # fmt: skip
    """Sign a stored version in the OpenSSF model-signing format."""  # fmt: skip
    if key and sigstore:
        raise UsageError("give either --key PATH or --sigstore")
    key = key or depot.signatures.default_key
    if not sigstore and not key.exists():
        raise UsageError(f"no signing key at {key}: create one with `depot keygen`")
    version = depot.names.show(name)
    warning = None
    if not version.admitted:  # a signature vouches for bytes, not for their admission
        warning = (f"{version.reference} is {version.status}: a signature does not release "
                   f"it ({'; '.join(version.reasons)})")  # fmt: skip
        stderr.print(f"warning: {warning}", markup=False, highlight=False)
    signer = Signer("sigstore") if sigstore else Signer("key", key)
    size = sum(f.size for f in version.files)
    with bytes_progress(f"signing {version.reference}", size) as advance:
        record = depot.signatures.sign(version, signer, progress=advance)
    if output:
        output.write_bytes(depot.signatures.bundle(record))
    report(as_json, {"reference": str(version.reference), "digest": version.digest,
                     "method": record.method, "identity": record.identity,
                     "signature": record.digest, "warning": warning},
           f"signed {version.reference} ({version.digest}) by {record.identity[:16]}; "
           f"signature {record.digest}")  # fmt: skip


@app.command()
@click.argument("names", nargs=-1)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Re-check every stored version: signatures, scanners, advisories, policy.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Public key to accept (repeatable; default: the policy's trusted keys).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def verify(depot: Depot, names: tuple[str, ...], every: bool, keys: tuple[Path, ...],
           as_json: bool) -> None:  # fmt: skip
    """Verify signatures by re-hashing the stored files. Exits 1 when one fails."""
    if every == bool(names):
        raise UsageError("name the models to verify, or give --all")
    if every:
        with working("re-hashing, re-scanning and re-checking every stored version"):
            results = depot.signatures.verify_all(depot.names.versions(include_untagged=True))
        failed = [r for r in results if not r.ok]
        if as_json:
            print_json([{
                "reference": str(r.version.reference), "digest": r.version.digest,
                "signatures": r.signatures, "problems": r.problems,
                "status_before": r.status_before, "status": r.status_after,
                "new_findings": [f.to_dict() for f in r.new_findings],
            } for r in results])  # fmt: skip
        else:
            for r in results:
                change = (f" (was {r.status_before})" if r.status_before != r.status_after
                          else "")  # fmt: skip
                stdout.print(f"{r.status_after:<11} {r.version.reference}{change}", markup=False)
                for line in r.signatures:
                    stdout.print(f"    {line}", markup=False)
                for problem in r.problems:
                    stdout.print(f"    problem: {problem}", markup=False)
                for f in r.new_findings:
                    stdout.print(f"    new finding: {f.severity} {f.code} {f.location}",
                                 markup=False)  # fmt: skip
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} versions fail verification", 1)
        return
    checked: list[dict[str, object]] = []
    for name in names:
        version = depot.names.show(name)
        try:
            size = sum(f.size for f in version.files)
            with bytes_progress(f"verifying {version.reference}", size) as advance:
                lines = depot.signatures.verify(version, list(keys), progress=advance)
        except SignatureFailure as exc:
            if as_json:
                print_json([*checked, {"reference": str(version.reference),
                                       "digest": version.digest, "verified": False,
                                       "problem": str(exc), "files": exc.files}])  # fmt: skip
            raise CommandError(f"{version.reference}: {exc}", 1) from None
        checked.append({"reference": str(version.reference), "digest": version.digest,
                        "verified": True, "signatures": lines})  # fmt: skip
        if not as_json:
            for line in lines:
                stdout.print(f"{version.reference}: {line}", markup=False)
    if as_json:
        print_json(checked)


@app.command()
@click.argument("name")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to a file.")
@pass_depot
def bom(depot: Depot, name: str, output: Path | None) -> None:
    """Write a CycloneDX 1.6 AI-BOM of a stored version (validated against the schema)."""
    document = depot.documents.bom(depot.names.show(name))
    text = json.dumps(document, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        stderr.print(f"wrote {output}")
    else:
        stdout.out(text, highlight=False)


@app.command()
@click.argument("name")
@click.option("--edit", is_flag=True, help="Open the card in $EDITOR and keep what is saved.")
@click.option(
    "--from-file",
    type=click.Path(exists=True, path_type=Path),
    help="Replace the card with this file (front matter checked).",
)
@json_option
@pass_depot
def card(depot: Depot, name: str, edit: bool, from_file: Path | None, as_json: bool) -> None:
    """Show a version's model card (Hugging Face format, with EU AI Act fields)."""  # fmt: skip
    version = depot.names.show(name)
    if from_file or edit:
        text = (
            from_file.read_text(encoding="utf-8")
            if from_file
            else edit_in_editor(depot.documents.card(version), depot.settings.editor)
        )
        depot.documents.save_card(version, text)  # fmt: skip
        if as_json:
            print_json({"reference": str(version.reference), "saved": True, "card": text})
        else:
            stderr.print(f"saved the card of {version.reference}")
        return
    text = depot.documents.card(version)
    if as_json:
        print_json({"reference": str(version.reference), "card": text})
    else:
        stdout.out(text, highlight=False)


@app.group()
def quarantine() -> None:
    """Versions that may not be served: refused by the policy, or held; and the exceptions
    to the policy that releases recorded."""


def _entry_json(entry: Entry) -> dict[str, object]:
    return {"digest": entry.digest, "names": list(entry.names)} | entry.verdict.to_dict()


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_depot
def quarantine_list(depot: Depot, as_json: bool) -> None:
    """What may not be served and why (the policy applied now), then what is served under an
    exception to the policy (who granted it, why, until when, for which reasons)."""
    entries = depot.quarantine.entries()
    held = [e for e in entries if not e.verdict.admitted]
    excepted = [e for e in entries if e.verdict.admitted and e.verdict.exception]
    if as_json:
        print_json([_entry_json(e) for e in held + excepted])
        return
    if not held:
        stdout.print("nothing is quarantined")
    for e in held:
        stdout.print(f"{e.verdict.status:<11} {', '.join(e.names)}  {e.digest}", markup=False)
        for reason in e.verdict.reasons:
            stdout.print(f"    {reason}", markup=False)
    for e in excepted:
        x = e.verdict.exception
        assert x is not None
        stdout.print(f"{'excepted':<11} {', '.join(e.names)}  {e.digest}", markup=False)
        ends = f"{x.until:%Y-%m-%d %H:%M}"
        stdout.print(f"    released by {x.actor} on {x.at:%Y-%m-%d} until {ends} UTC: "
                     f"{x.reason}", markup=False)  # fmt: skip
        for reason in e.verdict.waived:
            stdout.print(f"    waives: {reason}", markup=False)


@quarantine.command("release")
@click.argument("name")
@click.option("--reason", required=True, help="Why it is safe to release (recorded).")
@click.option(
    "--until",
    help="When the exception to the policy ends: 12h, 30d, 8w, or an ISO date (default: 30 days).",
)
@json_option
@pass_depot
def quarantine_release(depot: Depot, name: str, reason: str, until: str | None,
                       as_json: bool) -> None:  # fmt: skip
    """Release a quarantined version: its holds are lifted and, when the policy refuses it,
    an exception waiving those reasons is recorded (who, why, until when), which the server,
    `depot verify --all` and every view honour until it expires or a rescan finds something
    new."""
    version = depot.names.show(name)
    ends = parse_until(until, depot.gate.clock()) if until else None
    verdict = depot.quarantine.release(version, reason, until=ends)
    x = verdict.exception
    report(as_json, {"released": str(version.reference), "digest": version.digest,
                     **verdict.to_dict()},
           f"released {version.reference}" + (
               f" under an exception to the policy until {x.until:%Y-%m-%d %H:%M} UTC, "
               f"waiving: {'; '.join(x.covers)}" if x else ""))  # fmt: skip


@quarantine.command("hold")
@click.argument("name")
@click.option("--reason", help="Why it is held (recorded, and shown beside the policy's).")
@json_option
@pass_depot
def quarantine_hold(depot: Depot, name: str, reason: str | None, as_json: bool) -> None:
    """Quarantine a version by hand (an exception in force ends)."""
    version = depot.names.show(name)
    verdict = depot.quarantine.hold(version, reason=reason)
    report(as_json, {"quarantined": str(version.reference), "digest": version.digest,
                     **verdict.to_dict()},
           f"quarantined {version.reference}: {'; '.join(verdict.reasons)}")  # fmt: skip


@quarantine.command("delete")
@click.argument("name")
@json_option
@pass_depot
def quarantine_delete(depot: Depot, name: str, as_json: bool) -> None:
    """Remove every name of a quarantined version; `depot gc` then frees its files."""
    version = depot.names.show(name)
    if version.status != QUARANTINED:
        raise UsageError(f"{version.reference} is not quarantined; use `depot rm`")
    removed = []
    for v in depot.names.versions(include_untagged=True):
        if v.digest == version.digest:
            depot.names.remove(str(v.reference))
            removed.append(str(v.reference))
            if not as_json:
                stdout.print(f"removed {v.reference}", markup=False)
    if as_json:
        print_json({"removed": removed, "digest": version.digest})


@app.command()
@json_option
@pass_depot
def policy(depot: Depot, as_json: bool) -> None:
    """Show the policy in force (DEPOT_HOME/policy.toml, else the built-in defaults)."""
    p = depot.admission.policy()
    if as_json:
        print_json({"source": p.source, "fingerprint": p.fingerprint, "block_at": str(p.block_at),
                    "licences_allowed": list(p.licences_allowed),
                    "licences_denied": list(p.licences_denied),
                    "require_commercial_use": p.require_commercial_use,
                    "formats_allowed": list(p.formats_allowed),
                    "signature_required": p.signature_required,
                    "trusted_keys": [str(k) for k in p.trusted_keys]})  # fmt: skip
        return
    stdout.print(f"source: {p.source}", markup=False)
    rows = [
        ("blocks at", str(p.block_at)),
        ("licences allowed", ", ".join(p.licences_allowed) or "any"),
        ("licences denied", ", ".join(p.licences_denied) or "none"),
        ("commercial use required", "yes" if p.require_commercial_use else "no"),
        ("formats allowed", ", ".join(p.formats_allowed) or "any"),
        ("signature required", "yes" if p.signature_required else "no"),
        ("trusted keys", ", ".join(str(k) for k in p.trusted_keys) or "none"),
    ]
    for key, value in rows:
        stdout.print(f"  {key:<24} {value}", markup=False)


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_since(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: give a span (30m, 1h, 2d, 1w) or an ISO date or "
                         "time, e.g. 2026-11-01") from None  # fmt: skip


def _action(depot: Depot, action: str | None) -> str | None:
    if action is None:
        return None
    try:
        return depot.audit.check_action(action)
    except UsageError as exc:
        raise UsageError(f"--action {exc}") from None


@app.group(invoke_without_command=True)
@click.option("--since", help="Only events in this span (30m, 1h, 2d) or from this ISO date/time.")
@click.option(
    "--action",
    help="Only events of this action or family (import, scan, sign, quarantine, ...).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def audit(ctx: click.Context, since: str | None, action: str | None, as_json: bool) -> None:
    """The audit log: every import, scan, tag, sign, verify, quarantine, policy change, key
    and remote change, hash-chained (served requests are usage: `depot usage`)."""
    if ctx.invoked_subcommand is not None:
        return
    depot: Depot = ctx.obj
    events = depot.audit.events(since=_since(since), action=_action(depot, action))
    if as_json:
        print_json([{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                     "subject": e.subject, "details": e.details} for e in events])  # fmt: skip
        return
    for e in events:
        stdout.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<10} {e.action:<18} {e.subject}",
                     markup=False)  # fmt: skip
        if e.details:
            stdout.print(f"    {readable(e.details)}", markup=False, highlight=False)


@audit.command("verify")
@json_option
@pass_depot
def audit_verify(depot: Depot, as_json: bool) -> None:
    """Recompute the hash chain and check its signed checkpoints; exits 1 when an event was
    edited, deleted or removed from the end, or the chain was rewritten."""
    chain = depot.anchors.verify(depot.audit)
    if as_json:
        print_json({"events": chain.events, "head": chain.head, "intact": chain.intact,
                    "problems": [vars(p) for p in chain.problems]})  # fmt: skip
    else:
        for problem in chain.problems:
            where = f"event {problem.event_id}: " if problem.event_id else ""
            stdout.print(where + problem.message, markup=False)
        stdout.print(f"{chain.events} events, head {chain.head or '-'}", markup=False)
    if not chain.intact:
        raise CommandError(f"audit chain broken at {len(chain.problems)} places", 1)
