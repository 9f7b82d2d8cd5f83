"""The Kubernetes manifests under deploy/kubernetes: every core resource valid against the
Kubernetes API schema (kubernetes-validate, strict, offline), the KServe resources shaped as
KServe reads them, every variable they set one the depot declares, and the commands they run
real depot commands (`depot fetch` itself: tests/server/test_fetch.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldepot.cli import app
from modeldepot.config import ENVIRONMENT

ROOT = Path(__file__).parent.parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KSERVE = "serving.kserve.io/"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


def test_core_resources_are_valid_kubernetes() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = [(name, d) for name, d in _documents() if not d["apiVersion"].startswith(KSERVE)]
    kinds = {d["kind"] for _, d in documents}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "StatefulSet"} <= kinds
    for name, doc in documents:
        try:
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc.message}")
    # an invalid one is caught (the linter is not a formality)
    broken = dict(next(d for _, d in documents if d["kind"] == "Deployment"))
    broken["spec"] = {**broken["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)


def test_kserve_resources() -> None:
    kserve = {d["kind"]: d for _, d in _documents() if d["apiVersion"].startswith(KSERVE)}
    storage = kserve["ClusterStorageContainer"]
    assert storage["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert storage["spec"]["supportedUriFormats"] == [{"prefix": "depot://"}]
    container = storage["spec"]["container"]
    assert container["name"] == "storage-initializer"
    service = kserve["InferenceService"]
    assert service["spec"]["predictor"]["model"]["storageUri"].startswith("depot://")
    # what KServe runs: the command, then the URI and /mnt/models
    command = container["command"]
    assert command[:2] == ["depot", "fetch"]
    assert app.get_command(None, "fetch") is not None  # type: ignore[arg-type]


def test_every_variable_set_is_declared() -> None:
    declared = {v.name for v in ENVIRONMENT}
    used: set[str] = set()
    for _, doc in _documents():
        if doc["kind"] == "ConfigMap":
            used |= set(doc["data"])
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == "depot":
            used |= set(doc["stringData"])
    assert used and used <= declared, used - declared
