"""The documents of a version: its model card (generated from what the depot knows, or as last
edited with the generated parts brought up to date) and its CycloneDX AI-BOM. Both are built
from the same facts: scan summary, signatures, status (the gate's, as the version carries it)
and evaluation results with their intervals and item counts (`modeldepot.scores`)."""

from __future__ import annotations

import json
from typing import Any

from modeldepot.describe import safety
from modeldepot.describe.bom import build_bom, validate_bom
from modeldepot.describe.card import CardFacts, parse_card, refresh_card, render_card
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.evaluations import SAFETY, EvaluationStore
from modeldepot.registry.records import DERIVATION_FILE
from modeldepot.registry.trust import TrustStore
from modeldepot.scan import Finding
from modeldepot.scores import Score, compare
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
        evaluations = []
        for r in sorted(EvaluationStore(self.registry).results(version.digest),
                        key=lambda r: r.task):  # fmt: skip
            metric = r.primary()
            if metric is None:
                continue
            score = Score.of(metric, r.metrics[metric])
            evaluations.append({
                "dataset": r.task, "metric": metric, "value": round(score.value, 4),
                "stderr": None if score.stderr != score.stderr else round(score.stderr, 4),
                "low": round(score.low, 4) if score.known else None,
                "high": round(score.high, 4) if score.known else None,
                "items": score.items, "limit": r.settings.get("limit"), "text": score.text(),
            })  # fmt: skip
        derivation = self.derivation(version)
        store = EvaluationStore(self.registry)
        measured = store.results(version.digest, kind=SAFETY)
        origin = (derivation or {}).get("base") or (derivation or {}).get("source")
        gaps = (safety.comparisons(measured, store.results(origin["digest"], kind=SAFETY),
                                   origin["reference"]) if origin else ())  # fmt: skip
        return CardFacts(summary, signatures, version.status, _status_detail(version),
                         tuple(evaluations), derivation,
                         self.comparisons(version, derivation), safety.rows(measured),
                         gaps)  # fmt: skip

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
        before = {(r.task, r.task_version): r for r in store.results(origin["digest"])}
        rows = []
        for after in store.results(version.digest):
            old = before.get((after.task, after.task_version))
            metric = after.primary()
            if old is None or metric is None:
                continue
            gap = compare(after.items, old.items, metric)
            if gap is None:
                continue
            rows.append({"task": after.task, "metric": metric, "before": round(gap.b, 4),
                         "after": round(gap.a, 4), "difference": round(gap.difference, 4),
                         "low": round(gap.low, 4), "high": round(gap.high, 4),
                         "items": gap.items, "against": origin["reference"]})  # fmt: skip
        return tuple(sorted(rows, key=lambda r: r["task"]))

    def card(self, version: ModelVersion) -> str:
        """The version's card: generated from what is known now, or the last edited one with
        its generated parts (evaluations, status) brought up to date."""
        generated = render_card(version, self.facts(version))
        record = self.trust.card(version.digest)
        if record is not None and record.edited:
            return refresh_card(self.store.read_bytes(record.digest).decode("utf-8"), generated)
        return generated

    def save_card(self, version: ModelVersion, text: str, *, actor: str | None = None) -> None:
        parse_card(text)
        blob = self.store.put_bytes(text.encode("utf-8"))
        self.trust.add_card(version.digest, blob.digest, edited=True, actor=actor or self.actor)

    def bom(self, version: ModelVersion, *, actor: str | None = None) -> dict[str, Any]:
        document = build_bom(version, self.facts(version))
        validate_bom(document)
        self.trust.note(version.digest, "bom", {}, actor=actor or self.actor)
        return document


def _status_detail(version: ModelVersion) -> str:
    if version.reasons:
        return "; ".join(version.reasons)
    if version.exception:
        e = version.exception
        return (f"released by {e['actor']} until {e['until'][:10]} under an exception to the "
                f"policy: {e['reason']}")  # fmt: skip
    return ""
