"""`depot pull ollama://...` through an Ollama registry: a model pushed to Debian's
docker-registry in Ollama's own format (Docker's manifest v2, `application/vnd.ollama.image.*`
layers) comes back as a GGUF version with its template, parameters, licence and the original
manifest, every layer checked; a manifest with a layer the depot does not take, or a layer of
other bytes, stores nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from builders import write_gguf
from hostile import Hostile, body, hostile_server, sha
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import FormatError, IntegrityError
from modeldepot.receive.ollama import MANIFEST_TYPE
from modeldepot.registry.mirrors import Mirror
from servers import DEPOT

pytestmark = pytest.mark.slow
_LAYER = "application/vnd.ollama.image."


def _ollama_model(weights: bytes) -> tuple[dict[str, bytes], bytes]:
    """The blobs (by digest) and the manifest of a model as `ollama push` would store it."""
    config = json.dumps({"model_format": "gguf", "model_family": "llama",
                         "model_families": ["llama"], "model_type": "1K",
                         "file_type": "F32"}).encode()  # fmt: skip
    layers = [("model", weights), ("template", b"{{ .System }} {{ .Prompt }}"),
              ("license", b"Apache License\nVersion 2.0, January 2004\n"),
              ("params", b'{"stop": ["<|im_end|>"], "temperature": 0.6}')]  # fmt: skip
    blobs = {sha(data): data for _, data in [("config", config), *layers]}
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": f"{_LAYER}{kind}", "digest": sha(data), "size": len(data)}
                   for kind, data in layers],
    }).encode()  # fmt: skip
    return blobs, manifest


def _push(host: str, repository: str, tag: str, blobs: dict[str, bytes], manifest: bytes) -> None:
    base = f"http://{host}/v2/{repository}"
    for digest, data in blobs.items():
        started = httpx.post(f"{base}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        location = location if location.startswith("http") else f"http://{host}{location}"
        done = httpx.put(f"{location}&digest={digest}" if "?" in location
                         else f"{location}?digest={digest}", content=data,
                         headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert done.status_code == 201, done.text
    put = httpx.put(f"{base}/manifests/{tag}", content=manifest,
                    headers={"Content-Type": MANIFEST_TYPE})  # fmt: skip
    assert put.status_code == 201, put.text


def _depot(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_pull_through_an_ollama_registry(registry: tuple[str, Path], tmp_path: Path) -> None:
    host, _ = registry
    weights = write_gguf(tmp_path / "tiny.gguf").read_bytes()
    blobs, manifest = _ollama_model(weights)
    _push(host, "library/tiny", "v1", blobs, manifest)
    home = tmp_path / "depot"
    _depot(home, "mirror", "add", "ollama", "--ollama", f"http://{host}")
    pulled = json.loads(_depot(home, "pull", "ollama://tiny:v1", "--json").stdout)
    assert pulled["status"] == "ok" and pulled["reference"] == "tiny:v1"
    assert pulled["format"] == "gguf" and pulled["architecture"] == "llama"
    files = {f["path"]: f for f in pulled["files"]}
    assert set(files) == {"tiny.gguf", "chat_template.jinja", "LICENSE", "ollama/template",
                          "ollama/params.json", "ollama/config.json",
                          "ollama/manifest.json"}  # fmt: skip
    assert files["tiny.gguf"]["digest"] == sha(weights) and files["tiny.gguf"]["kind"] == "weights"
    assert files["LICENSE"]["kind"] == "license"
    # the manifest Ollama knows the model by, byte for byte (its digest is what Ollama shows)
    assert files["ollama/manifest.json"]["digest"] == sha(manifest)
    with Depot(Settings(home=home)) as depot:
        stored = depot.store.read_bytes(files["ollama/manifest.json"]["digest"])
        pull = next(e for e in depot.audit.events() if e.action == "pull")
    assert hashlib.sha256(stored).hexdigest() == sha(manifest)[7:]
    assert pull.details["digest"] == sha(manifest) and pull.details["mirror"] == "ollama"
    missing = _depot(home, "pull", "ollama://acme/nothing", check=False)
    assert missing.returncode == 1 and "not in the Ollama registry" in missing.stderr


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    yield from hostile_server()


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [("adapter-layer", FormatError, "not one the depot takes"),
     ("other-bytes", IntegrityError, "hashes to"),
     ("lying-digest", IntegrityError, "the registry says")],
)  # fmt: skip
def test_a_hostile_ollama_registry_stores_nothing(
    case: str, error: type[Exception], words: str, hostile: Hostile, tmp_path: Path
) -> None:
    weights = write_gguf(tmp_path / "tiny.gguf").read_bytes()
    blobs, manifest = _ollama_model(weights)
    headers = {}
    if case == "adapter-layer":
        parsed = json.loads(manifest)
        parsed["layers"].append({"mediaType": f"{_LAYER}adapter", "digest": sha(b"x"), "size": 1})
        manifest = json.dumps(parsed).encode()
    elif case == "other-bytes":
        blobs[sha(weights)] = weights[:-4] + b"evil"
    elif case == "lying-digest":
        headers["docker-content-digest"] = sha(b"another manifest")
    hostile.routes["/v2/library/tiny/manifests/latest"] = body(manifest, headers)
    for digest, data in blobs.items():
        hostile.routes[f"/v2/library/tiny/blobs/{digest}"] = body(data)
    with Depot(Settings(home=tmp_path / "depot", user="t")) as depot:
        depot.mirrors.add(Mirror("ollama", "ollama", hostile.url))
        with pytest.raises(error, match=words):
            depot.mirroring.pull("ollama://tiny")
        assert depot.names.versions(include_untagged=True) == []
    assert not list((tmp_path / "depot").glob("mirror-*"))
