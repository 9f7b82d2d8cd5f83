"""The documents of a version: its model card (generated from what the depot knows, or as last
edited) and its CycloneDX AI-BOM. Both are built from the same facts: scan summary,
signatures, status and evaluation results."""

from __future__ import annotations

import json
import math
from typing import Any

from modeldepot.describe.bom import build_bom, validate_bom
from modeldepot.describe.card import CardFacts, parse_card, render_card
from modeldepot.evaluation.stats import paired_bootstrap
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.evaluations import EvaluationStore
from modeldepot.registry.records import DERIVATION_FILE
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
        derivation = self.derivation(version)
        return CardFacts(summary, signatures, self.trust.status(version.digest).status,
                         evaluations, derivation,
                         self.comparisons(version, derivation))  # fmt: skip

    def derivation(self, version: ModelVersion) -> dict[str, Any] | None:
        """How the depot made this version (its `derivation.json`), if it made it."""
        found = next((f for f in version.files if f.path == DERIVATION_FILE), None)
        if found is None:
            return None
        return dict(json.loads(self.store.read_bytes(found.digest)))

    def comparisons(self, version: ModelVersion, derivation: dict[str, Any] | None
                    ) -> tuple[dict[str, Any], ...]:  # fmt: skip
        """This version against the one it was made from, on every task both were evaluated on:
        the difference of the primary metric over the same items, with its paired bootstrap
        95% interval."""
        origin = (derivation or {}).get("base") or (derivation or {}).get("source")
        if not origin:
            return ()
        store = EvaluationStore(self.registry)
        before = {(r.task, r.task_version): r for r in store.latest(origin["digest"])}
        rows = []
        for after in store.latest(version.digest):
            old = before.get((after.task, after.task_version))
            metric = after.primary()
            if old is None or metric is None:
                continue
            pairs = [(old.items[i][metric], s[metric]) for i, s in after.items.items()
                     if metric in s and metric in old.items.get(i, {})]  # fmt: skip
            pairs = [(x, y) for x, y in pairs if not (math.isnan(x) or math.isnan(y))]
            if not pairs:
                continue
            gap = paired_bootstrap([y for _, y in pairs], [x for x, _ in pairs])
            rows.append({"task": after.task, "metric": metric, "before": round(gap.b, 4),
                         "after": round(gap.a, 4), "difference": round(gap.difference, 4),
                         "low": round(gap.low, 4), "high": round(gap.high, 4),
                         "items": gap.items, "against": origin["reference"]})  # fmt: skip
        return tuple(sorted(rows, key=lambda r: r["task"]))

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
