"""The documents of a version: its model card (generated from what the depot knows, or as last
edited) and its CycloneDX AI-BOM. Both are built from the same facts: scan summary,
signatures, status and evaluation results."""

from __future__ import annotations

from typing import Any

from modeldepot.describe.bom import build_bom, validate_bom
from modeldepot.describe.card import CardFacts, parse_card, render_card
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.evaluations import EvaluationStore
from modeldepot.registry.trust import TrustStore
from modeldepot.scan import Finding
from modeldepot.store import BlobStore

__all__ = ["Documents"]


class Documents:
    def __init__(self, store: BlobStore, registry: Registry, actor: str) -> None:
        self.store = store
        self.registry = registry
        self.trust = TrustStore(registry)
        self.actor = actor

    def facts(self, version: ModelVersion) -> CardFacts:
        scan = self.trust.latest_scan(version.digest)
        if scan is None:
            summary = "not scanned"
        else:
            findings = [Finding.from_dict(f) for f in scan.findings]
            worst = max((f.severity for f in findings), default=None)
            summary = (f"scanned {scan.scanned_at.date().isoformat()}: {len(findings)} findings"
                       + (f", worst {worst}" if worst is not None else ""))  # fmt: skip
        signatures = tuple(f"{s.method}:{s.identity[:16]}" for s in
                           self.trust.signatures(version.digest))  # fmt: skip
        evaluations = tuple(
            {"dataset": r.task, "metric": metric, "value": round(r.metrics[metric]["value"], 4),
             "stderr": round(r.metrics[metric]["stderr"], 4)}
            for r in EvaluationStore(self.registry).latest(version.digest)
            if (metric := r.primary()) is not None
        )  # fmt: skip
        return CardFacts(summary, signatures, self.trust.status(version.digest).status,
                         evaluations)  # fmt: skip

    def card(self, version: ModelVersion) -> str:
        """The version's card: the last edited one, else generated from what is known now."""
        record = self.trust.card(version.digest)
        if record is not None and record.edited:
            return self.store.read_bytes(record.digest).decode("utf-8")
        return render_card(version, self.facts(version))

    def save_card(self, version: ModelVersion, text: str, *, actor: str | None = None) -> None:
        parse_card(text)
        blob = self.store.put_bytes(text.encode("utf-8"))
        self.trust.add_card(version.digest, blob.digest, edited=True, actor=actor or self.actor)

    def bom(self, version: ModelVersion, *, actor: str | None = None) -> dict[str, Any]:
        document = build_bom(version, self.facts(version))
        validate_bom(document)
        self.registry.audit.append(actor or self.actor, "bom", version.digest, {})
        return document
