"""CycloneDX 1.6 AI-BOM of a stored version.

The model is a `machine-learning-model` component with its modelCard (parameters,
architecture, datasets where known, quantitative analysis from evaluations, considerations
from its licence terms); every file is a component with its sha256; lineage becomes the
model's pedigree; signatures become properties and external references. cyclonedx-python-lib
has no modelCard model yet, so the document is written as JSON and checked with the library's
strict JSON-schema validator.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from modeldepot._version import __version__
from modeldepot.describe import safety
from modeldepot.describe.card import CardFacts
from modeldepot.errors import DepotError
from modeldepot.licences import licence_alternatives, licence_terms
from modeldepot.registry.records import PROVENANCE_FILE, ModelVersion

__all__ = ["build_bom", "validate_bom"]


def _licence(name: str | None) -> list[dict[str, Any]]:
    """A licence as CycloneDX writes it: an SPDX id, an SPDX expression, or a name."""
    if not name:
        return []
    from cyclonedx.spdx import is_supported_id

    if is_supported_id(name):
        return [{"license": {"id": name}}]
    if licence_alternatives(name) != [[name]]:  # an expression (`Apache-2.0 OR MIT`)
        return [{"expression": name}]
    return [{"license": {"name": name}}]


def _metric(e: dict[str, Any]) -> dict[str, Any]:
    """A score with its 95% interval, and the items it was measured on in its slice."""
    items = f" ({e['items']} items)" if e.get("items") else ""
    out: dict[str, Any] = {"type": e["metric"], "value": str(e["value"]),
                           "slice": f"{e['dataset']}{items}"}  # fmt: skip
    low, high = e.get("low"), e.get("high")
    if isinstance(low, float) and isinstance(high, float) and math.isfinite(low + high):
        out["confidenceInterval"] = {"lowerBound": f"{low:.4f}", "upperBound": f"{high:.4f}"}
    return out


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def build_bom(version: ModelVersion, facts: CardFacts) -> dict[str, Any]:
    info = version.info
    model_ref = f"model:{version.reference.repository}@{version.digest}"
    file_refs = [f"file:{f.path}@{f.digest}" for f in version.files]
    terms = licence_terms(info.license)
    task = "feature-extraction" if (info.details or {}).get("pooling") else "text-generation"
    datasets = [link.target for link in version.lineage if link.relation == "dataset"]
    bases = [link for link in version.lineage if link.relation != "dataset"]
    properties = [
        {"name": "modeldepot:format", "value": info.format},
        {"name": "modeldepot:status", "value": facts.status},
        {"name": "modeldepot:scan", "value": facts.scan_summary},
        *({"name": "modeldepot:signature", "value": s} for s in facts.signatures),
        *({"name": "modeldepot:provenance", "value": f"{f.path}@{f.digest}"}
          for f in version.files if f.path == PROVENANCE_FILE),
        *([{"name": "modeldepot:derivation", "value": str(facts.derivation.get("kind"))}]
          if facts.derivation else []),
        *({"name": f"modeldepot:{k}", "value": str(v)} for k, v in {
            "parameters": info.parameters, "quantization": info.quantization,
            "context_length": info.context_length, "source": version.source,
        }.items() if v is not None),
    ]  # fmt: skip
    model_card: dict[str, Any] = {
        "bom-ref": f"{model_ref}#card",
        "modelParameters": {
            "task": task,
            "architectureFamily": info.architecture or "unknown",
            "modelArchitecture": f"{info.architecture or 'unknown'} ({info.format}"
            + (f", {info.quantization}" if info.quantization else "") + ")",
            "datasets": [{"type": "dataset", "name": d} for d in datasets],
            "inputs": [{"format": "text"}],
            "outputs": [{"format": "vector" if task == "feature-extraction" else "text"}],
        },
        "considerations": {
            "useCases": [task],
            "ethicalConsiderations": [{"name": o} for o in terms.obligations()],
        },
    }  # fmt: skip
    measured = safety.considerations(facts.safety)
    considerations = model_card["considerations"]
    considerations["ethicalConsiderations"] += measured.pop("ethicalConsiderations", [])
    considerations |= measured
    metrics = [*facts.evaluations,
               *({"dataset": r["task"], **r} for r in facts.safety)]  # fmt: skip
    if metrics:
        model_card["quantitativeAnalysis"] = {"performanceMetrics": [_metric(e) for e in metrics]}
    model: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": version.reference.repository,
        "version": version.reference.tag or version.digest,
        "description": f"{info.name or version.reference.repository} ({info.format})",
        "hashes": [{"alg": "SHA-256", "content": _hex(version.digest)}],
        "licenses": _licence(info.license),
        "properties": properties,
        "modelCard": model_card,
    }
    if bases:
        model["pedigree"] = {
            "ancestors": [
                {
                    "type": "machine-learning-model",
                    "bom-ref": f"ancestor:{link.target}",
                    "name": link.target,
                    **({"hashes": [{"alg": "SHA-256", "content": _hex(link.target_digest)}]}
                       if link.target_digest else {}),
                    "properties": [{"name": "modeldepot:relation", "value": link.relation}],
                }
                for link in bases
            ]
        }  # fmt: skip
    files = [
        {
            "type": "file",
            "bom-ref": ref,
            "name": f.path,
            "hashes": [{"alg": "SHA-256", "content": _hex(f.digest)}],
            "properties": [
                {"name": "modeldepot:kind", "value": f.kind},
                {"name": "modeldepot:size", "value": str(f.size)},
                {"name": "modeldepot:media_type", "value": f.media_type},
            ],
        }
        for f, ref in zip(version.files, file_refs, strict=True)
    ]
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {"type": "application", "name": "modeldepot", "version": __version__}
                ]
            },
            "component": {
                "type": "machine-learning-model",
                "bom-ref": f"{model_ref}#subject",
                "name": version.reference.repository,
            },
        },
        "components": [model, *files],
        "dependencies": [
            {"ref": model_ref, "dependsOn": file_refs},
            *({"ref": ref} for ref in file_refs),
        ],
    }


def validate_bom(document: dict[str, Any]) -> None:
    """Check against the CycloneDX 1.6 JSON schema; raises `DepotError` with the first error."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        raise DepotError(f"AI-BOM does not validate against CycloneDX 1.6: {error}")
