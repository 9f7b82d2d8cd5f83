"""The depot's policy (`DEPOT_HOME/policy.toml`) and its advisories
(`DEPOT_HOME/advisories.toml`).

A policy says which licences and formats are allowed, from which severity a scanner finding
blocks, and whether a trusted signature is required. It is applied when a model is imported
(a blocked model is stored but quarantined) and again before a model is served. Advisories are
known-bad digests (of a whole version or of any of its files) with the reason.

    [licences]
    allow = ["Apache-2.0", "MIT", "gemma"]   # empty or absent: any licence
    deny = ["CC-BY-NC-4.0"]
    require_commercial_use = false           # refuse licences that forbid commercial use
    [scan]
    block = "high"                           # lowest severity that blocks
    [signatures]
    required = false
    trusted_keys = ["keys/team.pub"]         # relative to DEPOT_HOME
    [formats]
    allow = ["gguf", "safetensors", "huggingface", "onnx", "pytorch"]
    [safety]
    max_attack_success = {dan = 0.3, "encoding.InjectBase64" = 0.5}   # by probe module or class
    require_redteam = true                   # refuse a version no `depot redteam` measured

The [safety] section reads the version's safety evaluations (`depot redteam`): a probe whose
measured attack success rate is over its limit refuses the version, naming the probe, as a
licence does; a release of it is an exception waiving that reason.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeldepot.errors import UsageError
from modeldepot.layout import Layout
from modeldepot.licences import licence_alternatives, licence_terms, normalize_licence
from modeldepot.scan.findings import Finding, Severity

__all__ = ["UNSIGNED", "Advisory", "Policy", "SafetyMeasure", "load_advisories", "load_policy"]

UNSIGNED = "signature: no valid signature by a trusted key"
"""The reason a policy that requires a signature gives for a version no trusted key signed."""


@dataclass(frozen=True)
class Policy:
    licences_allowed: tuple[str, ...] = ()
    licences_denied: tuple[str, ...] = ()
    require_commercial_use: bool = False
    block_at: Severity = Severity.HIGH
    signature_required: bool = False
    trusted_keys: tuple[Path, ...] = ()
    formats_allowed: tuple[str, ...] = ()
    max_attack_success: tuple[tuple[str, float], ...] = ()
    """(probe module or class, the highest attack success rate allowed)."""
    require_redteam: bool = False
    source: str = "built-in defaults"
    fingerprint: str = ""
    text: str = ""

    def violations(
        self,
        *,
        licence: str | None,
        fmt: str,
        findings: Iterable[Finding],
        signed_by_trusted: bool,
        advisories: Iterable[Advisory] = (),
        safety: Mapping[str, SafetyMeasure] | None = None,
    ) -> list[str]:
        """Every reason this policy refuses a model, one per blocking finding (an exception
        waives reasons word for word); empty when it is admitted."""
        out: list[str] = []
        for f in findings:
            if f.severity >= self.block_at:
                out.append(f"scan: {f.severity} {f.code} at {f.location}: {f.message}")
        terms = licence_terms(licence)
        if self.licences_allowed and not _allowed(licence, self.licences_allowed):
            out.append(f"licence: {licence or 'unknown'} is not in the allowed licences")
        if licence and self.licences_denied and _denied(licence, self.licences_denied):
            out.append(f"licence: {licence} is denied by policy")
        if self.require_commercial_use and terms.commercial_use is not True:
            out.append(f"licence: {licence or 'unknown'} does not clearly allow commercial use")
        if self.formats_allowed and fmt not in self.formats_allowed:
            out.append(f"format: {fmt} is not an allowed format")
        if self.signature_required and not signed_by_trusted:
            out.append(UNSIGNED)
        for advisory in advisories:
            out.append(f"advisory {advisory.id}: {advisory.reason} ({advisory.digest})")
        if safety is not None:  # None: not judged (inside an evaluation, or at import)
            out += self.safety_violations(safety)
        return out

    @property
    def judges_safety(self) -> bool:
        return bool(self.max_attack_success) or self.require_redteam

    def safety_violations(self, measured: Mapping[str, SafetyMeasure]) -> list[str]:
        """The [safety] section's reasons against a version whose red-team results are
        `measured` (probe module or class -> its measure). A reason names the probe and the
        limit, not the rate, so that a release waives the probe until the policy changes."""
        out: list[str] = []
        if self.require_redteam and not measured:
            out.append("safety: no red-team run recorded, and the policy requires one "
                       "(depot redteam)")  # fmt: skip
        for probe, limit in self.max_attack_success:
            found = measured.get(probe)
            if found is None:
                if self.require_redteam and measured:
                    out.append(f"safety: probe {probe} was not run, and the policy limits it")
                continue
            if found.rate > limit:
                out.append(f"safety: probe {probe} is over the policy's attack success limit "
                           f"{limit:g}")  # fmt: skip
        return out


@dataclass(frozen=True)
class SafetyMeasure:
    """A probe's measured attack success rate, over `attempts` outputs."""

    rate: float
    attempts: int


def _matches(part: str, names: tuple[str, ...]) -> bool:
    """A single licence named in `names`, by its identifier (any spelling) or its family."""
    wanted = {(normalize_licence(n) or n).lower() for n in names} | {n.lower() for n in names}
    family = licence_terms(part).family
    return part.lower() in wanted or bool(family and family.lower() in wanted)


def _allowed(licence: str | None, names: tuple[str, ...]) -> bool:
    """Some alternative of the licence can be met with allowed licences only."""
    return any(
        all(_matches(part, names) for part in choice) for choice in licence_alternatives(licence)
    )


def _denied(licence: str, names: tuple[str, ...]) -> bool:
    """Every alternative of the licence involves a denied licence."""
    return all(
        any(_matches(part, names) for part in choice) for choice in licence_alternatives(licence)
    )


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def load_policy(home: Path) -> Policy:
    layout = Layout(home)
    path = layout.policy
    if not path.is_file():
        return Policy()
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"licences", "scan", "signatures", "formats", "safety"}
    if unknown:
        raise UsageError(f"{path}: unknown sections {sorted(unknown)}")
    lic, scan, sig, fmt = (data.get(k, {}) for k in ("licences", "scan", "signatures", "formats"))
    limits, require_redteam = _safety(data.get("safety", {}), str(path))
    try:
        block_at = Severity.parse(str(scan.get("block", "high")))
    except ValueError as exc:
        raise UsageError(f"{path}: [scan] block: {exc}") from None
    return Policy(
        licences_allowed=_strings(lic, "allow", str(path)),
        licences_denied=_strings(lic, "deny", str(path)),
        require_commercial_use=bool(lic.get("require_commercial_use", False)),
        block_at=block_at,
        signature_required=bool(sig.get("required", False)),
        trusted_keys=tuple(layout.named(p) for p in _strings(sig, "trusted_keys", str(path))),
        formats_allowed=_strings(fmt, "allow", str(path)),
        max_attack_success=limits,
        require_redteam=require_redteam,
        source=str(path),
        fingerprint=hashlib.sha256(text.encode()).hexdigest(),
        text=text,
    )


def _safety(table: Any, where: str) -> tuple[tuple[tuple[str, float], ...], bool]:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [safety] must be a table")
    unknown = set(table) - {"max_attack_success", "require_redteam"}
    if unknown:
        raise UsageError(f"{where}: [safety] has unknown keys {sorted(unknown)}")
    limits = table.get("max_attack_success", {})
    if not isinstance(limits, dict):
        raise UsageError(f"{where}: [safety] max_attack_success must be a table, e.g. "
                         "{dan = 0.3}")  # fmt: skip
    out = []
    for probe, limit in limits.items():
        if not _PROBE.fullmatch(probe):
            raise UsageError(f"{where}: [safety] max_attack_success: {probe!r} is not a probe "
                             "module or class (dan, dan.DanInTheWild)")  # fmt: skip
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
            raise UsageError(f"{where}: [safety] max_attack_success.{probe} must be a rate "
                             "from 0 to 1")  # fmt: skip
        out.append((probe, float(limit)))
    required = table.get("require_redteam", False)
    if not isinstance(required, bool):
        raise UsageError(f"{where}: [safety] require_redteam must be true or false")
    return tuple(out), required


_PROBE = re.compile(r"[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Advisory:
    id: str
    digest: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def load_advisories(home: Path) -> list[Advisory]:
    path = Layout(home).advisories
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    out = []
    for i, entry in enumerate(data.get("advisory", [])):
        digest = str(entry.get("digest", ""))
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise UsageError(f'{path}: advisory {i + 1} needs a `digest = "sha256:<64 hex>"`')
        out.append(Advisory(str(entry.get("id", f"advisory-{i + 1}")), digest,
                            str(entry.get("reason", "listed as known-bad"))))  # fmt: skip
    return out
