"""Models through an OCI registry: Debian's docker-registry (the CNCF distribution registry)
started on loopback. Push a signed model, pull it into another depot with every digest
checked and the signature verified; a tampered blob or manifest in the registry is refused
with nothing recorded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from servers import DEPOT

pytestmark = pytest.mark.slow


def _cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_push_and_pull_with_signature(registry: tuple[str, Path], tmp_path: Path) -> None:
    host, _ = registry
    here, there = tmp_path / "here", tmp_path / "there"
    _cli(here, "pull", "smollm2")
    _cli(here, "keygen")
    _cli(here, "sign", "smollm2")
    pushed = json.loads(_cli(here, "push", f"oci://{host}/models/smollm2:v1", "smollm2",
                             "--json").stdout)  # fmt: skip
    digest = json.loads(_cli(here, "show", "smollm2", "--json").stdout)["digest"]
    assert pushed["digest"] == digest and pushed["signatures"] == 1
    # the registry holds it as an OCI image manifest in the ModelPack format, same digest
    got = httpx.get(
        f"http://{host}/v2/models/smollm2/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert got.headers["docker-content-digest"] == digest
    assert got.json()["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    # the signature, as a referrer of the model (the OCI 1.1 referrers tag schema)
    index = httpx.get(
        f"http://{host}/v2/models/smollm2/manifests/{digest.replace(':', '-')}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    ).json()
    assert index["manifests"][0]["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"

    pulled = _cli(there, "pull", f"oci://{host}/models/smollm2:v1", "--json")
    version = json.loads(pulled.stdout)
    assert version["digest"] == digest and version["status"] == "ok"
    assert version["reference"] == "smollm2:v1"
    assert "verified" in pulled.stderr
    verified = _cli(there, "verify", "smollm2:v1")
    assert "verified" in verified.stdout + verified.stderr
    answer = _cli(there, "run", "smollm2:v1", "Say hi.")
    assert answer.stdout.strip()


def test_tampered_registry_is_refused(registry: tuple[str, Path], tmp_path: Path) -> None:
    host, data = registry
    here = tmp_path / "here"
    _cli(here, "pull", "smollm2")
    _cli(here, "push", f"oci://{host}/tamper/smollm2:v1", "smollm2")
    shown = json.loads(_cli(here, "show", "smollm2", "--json").stdout)
    chat = next(f for f in shown["files"] if f["path"] == "chat_template.jinja")
    hexdigest = chat["digest"].removeprefix("sha256:")
    blob = data / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    blob.chmod(0o644)
    blob.write_bytes(b"{{ 'tampered' }}")  # the registry now serves other bytes
    there = tmp_path / "there"
    done = _cli(there, "pull", f"oci://{host}/tamper/smollm2:v1", check=False)
    assert done.returncode != 0 and "digest" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2
    assert json.loads(_cli(there, "list", "--json").stdout) == []
    missing = _cli(there, "pull", f"oci://{host}/nothing/here:v1", check=False)
    assert missing.returncode == 1 and "not in the registry" in missing.stderr
