"""Provenance of what the depot makes: an in-toto v1 statement with a SLSA provenance v1
predicate. Its subjects are the files made (by sha256); its resolved dependencies are the
materials (the base model's manifest, the training data set, the configuration); its
parameters are the command's. It is stored as a file of the new version, so the version's
signature covers it, and the card and AI-BOM point to it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from modeldepot._version import __version__

__all__ = ["Material", "statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"


@dataclass(frozen=True)
class Material:
    name: str
    uri: str
    digest: str
    """`sha256:<hex>`"""


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1] if ":" in digest else digest


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def statement(
    kind: str,
    subjects: Mapping[str, Path],
    materials: Sequence[Material],
    parameters: Mapping[str, Any],
    *,
    invocation: str,
    started: datetime,
    finished: datetime,
    libraries: Mapping[str, str] | None = None,
) -> bytes:
    """The statement for a `kind` (finetune, merge, quantize, convert) run that made
    `subjects` (name -> file) from `materials`."""
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": _hex(file_digest(path))}}
            for name, path in sorted(subjects.items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": f"urn:modeldepot:{kind}:v1",
                "externalParameters": dict(parameters),
                "resolvedDependencies": [
                    {"name": m.name, "uri": m.uri, "digest": {"sha256": _hex(m.digest)}}
                    for m in materials
                ],
            },
            "runDetails": {
                "builder": {
                    "id": "urn:modeldepot:depot",
                    "version": {"modeldepot": __version__, **(libraries or {})},
                },
                "metadata": {
                    "invocationId": invocation,
                    "startedOn": started.isoformat(),
                    "finishedOn": finished.isoformat(),
                },
            },
        },
    }
    return (json.dumps(body, indent=2, sort_keys=False) + "\n").encode()
