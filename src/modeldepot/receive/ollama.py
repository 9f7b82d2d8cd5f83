"""Fetching a model from an Ollama registry (registry.ollama.ai, or any registry serving
Ollama's manifests over the OCI distribution API), the way `ollama pull` asks it:

    GET {registry}/v2/{namespace}/{model}/manifests/{tag}    Docker's manifest v2 media type
    GET {registry}/v2/{namespace}/{model}/blobs/{digest}     each layer (redirects followed)

The manifest's bytes must hash to the digest the registry names, and it is checked (layer
count, digests, media types, one model layer) before any layer is fetched; every layer must be
exactly its declared size and hash to its digest. Layers become files of a depot version:

    application/vnd.ollama.image.model       {model}.gguf              the weights
    application/vnd.ollama.image.projector   {model}-projector.gguf    a vision projector
    application/vnd.ollama.image.license     LICENSE, LICENSE-2, ...
    ...image.template / .system / .params / .messages
                                             ollama/template, ollama/system,
                                             ollama/params.json, ollama/messages.json

with the config as `ollama/config.json` and the manifest's own bytes as
`ollama/manifest.json` (so the digest Ollama shows for it can be shown again). An adapter, a
tensor-per-layer model or a layer of any other type is refused: the depot does not guess.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from modeldepot.errors import DepotError, FormatError, IntegrityError, ModelNotFound, UsageError
from modeldepot.receive.remote import Answer, Limits, Remote
from modeldepot.refs import is_digest
from modeldepot.store import Progress

__all__ = ["MANIFEST_TYPE", "OllamaName", "OllamaPull", "fetch", "ollama_name"]

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_LAYER = "application/vnd.ollama.image."
_MAX_LAYERS = 64
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_SINGLE = {"template": "ollama/template", "system": "ollama/system",
           "params": "ollama/params.json", "messages": "ollama/messages.json",
           "prompt": "ollama/template"}  # fmt: skip
_WHO = "the Ollama registry"


@dataclass(frozen=True)
class OllamaName:
    namespace: str
    model: str
    tag: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.model}:{self.tag}"


def ollama_name(text: str) -> OllamaName:
    """`[namespace/]model[:tag]` as Ollama writes it (`library` and `latest` by default)."""
    name, _, tag = text.partition(":") if ":" in text.rsplit("/", 1)[-1] else (text, "", "")
    parts = name.split("/")
    namespace, model = (parts[0], parts[1]) if len(parts) == 2 else ("library", parts[0])
    tag = tag or "latest"
    if (len(parts) > 2 or _NAMESPACE.fullmatch(namespace) is None
            or _PART.fullmatch(model) is None or _PART.fullmatch(tag) is None):  # fmt: skip
        raise UsageError(f"{text!r} is not an Ollama model name ([namespace/]model[:tag])")
    return OllamaName(namespace, model, tag)


@dataclass(frozen=True)
class OllamaPull:
    """What was fetched: the manifest's digest and the (path, sha256 hex) of each file."""

    registry: str
    name: OllamaName
    digest: str
    files: tuple[tuple[str, str], ...]
    weights: str
    """The path of the model layer's GGUF."""


def _check(answer: Answer, what: str) -> None:
    if answer.status == 404:
        raise ModelNotFound(f"{what}: not in the Ollama registry")
    if answer.status in (401, 403):
        raise DepotError(f"{what}: the Ollama registry refused access ({answer.status})")
    if answer.status != 200:
        raise DepotError(f"{what}: the Ollama registry answered {answer.status}: {answer.text}")


def _layers(raw: bytes, what: str) -> list[dict[str, Any]]:
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise FormatError(f"{what}: the manifest is not JSON") from None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    config = manifest.get("config") if isinstance(manifest, dict) else None
    if not isinstance(layers, list) or not isinstance(config, dict) or not layers:
        raise FormatError(f"{what}: not an Ollama manifest (no config and layers)")
    if len(layers) > _MAX_LAYERS:
        raise FormatError(f"{what}: more than {_MAX_LAYERS} layers; refused")
    for layer in [config, *layers]:
        size = layer.get("size") if isinstance(layer, dict) else None
        if (not isinstance(layer, dict) or not is_digest(str(layer.get("digest")))
                or not isinstance(size, int) or size < 0):  # fmt: skip
            raise FormatError(f"{what}: a layer of the manifest names no digest and size")
    return [{**config, "mediaType": f"{_LAYER}config"}, *layers]


def _paths(layers: list[dict[str, Any]], name: OllamaName, what: str) -> list[str]:
    """The file each layer becomes (see the module's table)."""
    paths: list[str] = []
    licences = 0
    for layer in layers:
        kind = str(layer.get("mediaType", "")).removeprefix(_LAYER)
        if kind == "model":
            path = f"{name.model}.gguf"
        elif kind == "projector":
            path = f"{name.model}-projector.gguf"
        elif kind == "config":
            path = "ollama/config.json"
        elif kind == "license":
            licences += 1
            path = "LICENSE" if licences == 1 else f"LICENSE-{licences}"
        elif kind in _SINGLE:
            path = _SINGLE[kind]
        else:
            raise FormatError(f"{what}: a layer of type {str(layer.get('mediaType'))[:100]!r} "
                              "is not one the depot takes from Ollama (weights, projector, "
                              "template, system, params, messages, license)")  # fmt: skip
        if path in paths:
            raise FormatError(f"{what}: the manifest holds more than one {kind} layer")
        paths.append(path)
    if f"{name.model}.gguf" not in paths:
        raise FormatError(f"{what}: the manifest holds no model layer")
    return paths


def fetch(
    registry: str,
    name: OllamaName,
    dest: Path,
    *,
    token: str | None = None,
    limits: Limits | None = None,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
) -> OllamaPull:
    """Fetch `name` from the registry at `registry` into the empty folder `dest`, every
    layer checked against its digest and size."""
    base = f"{registry.rstrip('/')}/v2/{name.namespace}/{name.model}"
    what = str(name)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with Remote(_WHO, limits, headers=headers, transport=transport) as remote:
        got = remote.get(f"{base}/manifests/{name.tag}", what,
                         headers={"Accept": f"{MANIFEST_TYPE}, {_OCI_MANIFEST}"})  # fmt: skip
        _check(got, what)
        digest = f"sha256:{hashlib.sha256(got.body).hexdigest()}"
        named = got.headers.get("docker-content-digest")
        if named and named != digest:
            raise IntegrityError(f"{what}: the manifest hashes to {digest}, the registry "
                                 f"says {named}; nothing was stored")  # fmt: skip
        layers = _layers(got.body, what)
        paths = _paths(layers, name, what)
        files = []
        for layer, path in zip(layers, paths, strict=True):
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            hashes = remote.download(f"{base}/blobs/{layer['digest']}", f"{what}: {path}",
                                     target, layer["size"], _check,
                                     declared_by="the manifest", progress=progress)  # fmt: skip
            if f"sha256:{hashes.sha256}" != layer["digest"]:
                target.unlink()
                raise IntegrityError(f"{what}: {path} hashes to sha256:{hashes.sha256}, not "
                                     f"{layer['digest']}; nothing was stored")  # fmt: skip
            files.append((path, hashes.sha256))
        (dest / "ollama" / "manifest.json").write_bytes(got.body)
        files.append(("ollama/manifest.json", digest.removeprefix("sha256:")))
    return OllamaPull(registry, name, digest, tuple(files), f"{name.model}.gguf")
