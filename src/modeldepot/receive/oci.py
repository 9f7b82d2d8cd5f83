"""Models through OCI registries (the OCI distribution API, in the CNCF ModelPack format the
depot's manifests already have): `depot push oci://HOST/REPO:TAG NAME` and
`depot pull oci://HOST/REPO:TAG`.

A push uploads every blob the registry lacks (each checked by the registry against its digest),
then the manifest's own bytes, so the version keeps its digest there. Its signatures go along
as OCI referrers: an artifact manifest per signature (the model-signing bundle and the public
key as layers, the model's manifest as `subject`), listed in an index under the referrers tag
`sha256-HEX` (the OCI 1.1 tag schema, for registries without the referrers API).

A pull checks the manifest's bytes against the digest the registry names (and the one asked
for), every blob against the manifest, stores it all and records the version only then, and
admits it like any import; signatures found as referrers are stored and verified.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from modeldepot.errors import DepotError, IntegrityError, ModelNotFound, UsageError
from modeldepot.receive.transfer import ChunkReader
from modeldepot.refs import Reference
from modeldepot.store import BlobStore, Manifest, Progress

__all__ = ["SIGNATURE_TYPE", "OCIRef", "oci_ref"]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PUBLIC_KEY = "application/vnd.modeldepot.public-key.v1+pem"
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class OCIRef:
    registry: str
    """`http://host:port` (loopback registries are spoken to over plain HTTP)."""
    repository: str
    reference: str
    """A tag or `sha256:...`."""

    @property
    def url(self) -> str:
        return f"{self.registry}/v2/{self.repository}"


def oci_ref(text: str) -> OCIRef:
    """`oci://HOST[:PORT]/REPO[:TAG|@sha256:...]`."""
    if not text.startswith("oci://"):
        raise UsageError(f"{text!r}: expected oci://HOST[:PORT]/REPOSITORY[:TAG]")
    parts = urlsplit("https://" + text.removeprefix("oci://"))
    path = parts.path.strip("/")
    if not parts.hostname or not path:
        raise UsageError(f"{text!r}: expected oci://HOST[:PORT]/REPOSITORY[:TAG]")
    if "@" in path:
        repository, reference = path.split("@", 1)
    elif ":" in path.rsplit("/", 1)[-1]:
        repository, reference = path.rsplit(":", 1)
    else:
        repository, reference = path, "latest"
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    scheme = "http" if local else "https"
    return OCIRef(f"{scheme}://{parts.netloc}", repository, reference)


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code == 404:
        raise ModelNotFound(f"{what}: not in the registry")
    if response.status_code in (401, 403):
        raise DepotError(f"{what}: the registry refused access ({response.status_code})")
    if response.status_code >= 400:
        raise DepotError(f"{what}: the registry answered {response.status_code}: "
                         f"{response.text[:200]}")  # fmt: skip


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class Registry:
    def __init__(self, ref: OCIRef, client: httpx.Client | None = None) -> None:
        self.ref = ref
        self.http = client or httpx.Client(timeout=httpx.Timeout(60, read=600))

    def close(self) -> None:
        self.http.close()

    # -- blobs ------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self.http.head(f"{self.ref.url}/blobs/{digest}").status_code == 200

    def push_blob(self, digest: str, size: int, chunks: Any) -> None:
        """A monolithic upload: POST for a session, PUT of the bytes with their digest (the
        registry refuses bytes of another digest)."""
        started = self.http.post(f"{self.ref.url}/blobs/uploads/")
        _check(started, f"starting the upload of {digest}")
        location = started.headers["location"]
        if location.startswith("/"):
            location = self.ref.registry + location
        separator = "&" if "?" in location else "?"
        done = self.http.put(f"{location}{separator}digest={digest}", content=chunks,
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(size)})  # fmt: skip
        _check(done, f"uploading {digest}")

    def blob(self, digest: str) -> Any:
        return self.http.stream("GET", f"{self.ref.url}/blobs/{digest}")

    # -- manifests --------------------------------------------------------------------------

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        done = self.http.put(f"{self.ref.url}/manifests/{reference}", content=data,
                             headers={"Content-Type": media_type})  # fmt: skip
        _check(done, f"storing the manifest {reference}")
        digest = _sha(data)
        answered = done.headers.get("docker-content-digest")
        if answered and answered != digest:
            raise IntegrityError(f"the registry stored the manifest as {answered}, not {digest}")
        return digest

    def get_manifest(self, reference: str, accept: str = MANIFEST) -> tuple[bytes, str]:
        got = self.http.get(f"{self.ref.url}/manifests/{reference}",
                            headers={"Accept": f"{accept}, {INDEX}"})  # fmt: skip
        _check(got, f"{self.ref.repository}:{reference}")
        digest = _sha(got.content)
        named = got.headers.get("docker-content-digest")
        if named and named != digest:
            raise IntegrityError(f"{self.ref.repository}:{reference}: the manifest hashes to "
                                 f"{digest}, the registry says {named}")  # fmt: skip
        if reference.startswith("sha256:") and reference != digest:
            raise IntegrityError(f"{self.ref.repository}@{reference}: the registry sent a "
                                 f"manifest that hashes to {digest}")  # fmt: skip
        return got.content, digest


def push(store: BlobStore, manifest_digest: str, signatures: list[tuple[bytes, str | None]],
         ref: OCIRef, progress: Progress | None = None) -> str:  # fmt: skip
    """Push a stored version (by its manifest digest) and its signatures (bundle, public key)
    to `ref`; returns the manifest digest the registry holds it under."""
    raw = store.read_bytes(manifest_digest)
    manifest = Manifest.from_bytes(raw)
    registry = Registry(ref)
    try:
        for descriptor in (manifest.config, *manifest.layers):
            if registry.has_blob(descriptor.digest):
                if progress:
                    progress(descriptor.size)
                continue
            registry.push_blob(descriptor.digest, descriptor.size,
                               _read(store, descriptor.digest, progress))  # fmt: skip
        pushed = registry.put_manifest(ref.reference, raw, MANIFEST)
        if pushed != manifest_digest:
            raise IntegrityError(f"pushed {pushed}, not the version {manifest_digest}")
        referrers = [_push_signature(registry, bundle, key, manifest_digest, len(raw))
                     for bundle, key in signatures]  # fmt: skip
        if referrers:
            index = json.dumps({"schemaVersion": 2, "mediaType": INDEX,
                                "manifests": referrers}).encode()  # fmt: skip
            registry.put_manifest(manifest_digest.replace(":", "-"), index, INDEX)
        return pushed
    except httpx.HTTPError as exc:
        raise DepotError(f"{ref.registry}: cannot reach the registry ({exc})") from None
    finally:
        registry.close()


def _read(store: BlobStore, digest: str, progress: Progress | None) -> Any:
    with store.open(digest) as f:
        while piece := f.read(CHUNK):
            if progress:
                progress(len(piece))
            yield piece


def _push_signature(registry: Registry, bundle: bytes, public_key: str | None,
                    subject: str, subject_size: int) -> dict[str, Any]:  # fmt: skip
    layers = []
    for data, media_type in ((bundle, SIGNATURE_TYPE),
                             ((public_key or "").encode(), PUBLIC_KEY)):  # fmt: skip
        if not data:
            continue
        digest = _sha(data)
        if not registry.has_blob(digest):
            registry.push_blob(digest, len(data), data)
        layers.append({"mediaType": media_type, "digest": digest, "size": len(data)})
    empty = b"{}"
    if not registry.has_blob(_sha(empty)):
        registry.push_blob(_sha(empty), len(empty), empty)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": SIGNATURE_TYPE,
        "config": {"mediaType": EMPTY, "digest": _sha(empty), "size": len(empty)},
        "layers": layers,
        "subject": {"mediaType": MANIFEST, "digest": subject, "size": subject_size},
    }).encode()  # fmt: skip
    digest = registry.put_manifest(_sha(body), body, MANIFEST)
    return {"mediaType": MANIFEST, "digest": digest, "size": len(body),
            "artifactType": SIGNATURE_TYPE}  # fmt: skip


@dataclass(frozen=True)
class Pulled:
    digest: str
    manifest: Manifest
    signatures: list[tuple[bytes, str | None]]


def pull(store: BlobStore, ref: OCIRef, progress: Progress | None = None) -> Pulled:
    """Fetch a model's manifest and blobs (each checked) into `store`, and its signatures."""
    registry = Registry(ref)
    try:
        raw, digest = registry.get_manifest(ref.reference)
        manifest = Manifest.from_bytes(raw)
        for descriptor in (manifest.config, *manifest.layers):
            if store.has(descriptor.digest):
                if progress:
                    progress(descriptor.size)
                continue
            with registry.blob(descriptor.digest) as response:
                _check(response, f"blob {descriptor.digest}")
                store.put_stream([ChunkReader(response.iter_bytes(CHUNK))],
                                 expected=descriptor.digest, progress=progress)  # fmt: skip
        stored = store.put_bytes(raw)
        assert stored.digest == digest
        return Pulled(digest, manifest, _signatures(registry, digest))
    except httpx.HTTPError as exc:
        raise DepotError(f"{ref.registry}: cannot reach the registry ({exc})") from None
    finally:
        registry.close()


def _signatures(registry: Registry, subject: str) -> list[tuple[bytes, str | None]]:
    try:
        raw, _ = registry.get_manifest(subject.replace(":", "-"), INDEX)
    except ModelNotFound:
        return []
    found = []
    for entry in json.loads(raw).get("manifests", []):
        if entry.get("artifactType") != SIGNATURE_TYPE:
            continue
        body, _ = registry.get_manifest(entry["digest"])
        artifact = json.loads(body)
        if (artifact.get("subject") or {}).get("digest") != subject:
            continue
        parts: dict[str, bytes] = {}
        for layer in artifact.get("layers", []):
            data = registry.http.get(f"{registry.ref.url}/blobs/{layer['digest']}").content
            if _sha(data) != layer["digest"]:
                raise IntegrityError(f"signature blob {layer['digest']} does not match")
            parts[layer["mediaType"]] = data
        if SIGNATURE_TYPE in parts:
            key = parts.get(PUBLIC_KEY)
            found.append((parts[SIGNATURE_TYPE], key.decode() if key else None))
    return found


def target_name(ref: OCIRef) -> str:
    """The depot name a pulled model gets by default: the repository's last part, the tag."""
    tag = ref.reference if not ref.reference.startswith("sha256:") else "latest"
    return str(Reference.parse(f"{ref.repository.rsplit('/', 1)[-1]}:{tag}"))
