"""Models through OCI registries (the OCI distribution API, in the CNCF ModelPack format the
depot's manifests already have): `depot push oci://HOST/REPO:TAG NAME` and
`depot pull oci://HOST/REPO:TAG`.

A push uploads every blob the registry lacks (each checked by the registry against its digest),
then the manifest's own bytes, so the version keeps its digest there. Its signatures go along
as OCI referrers: an artifact manifest per signature (the model-signing bundle and the public
key as layers, the model's manifest as `subject`), listed in an index under the referrers tag
`sha256-HEX` (the OCI 1.1 tag schema, for registries without the referrers API).

A pull checks the manifest's bytes against the digest the registry names (and the one asked
for) and its contents (digests, sizes, safe file paths) before fetching anything, every blob
against the manifest (at most its declared size), stores it all and records the version only
then, and admits it like any import; signatures found as referrers are stored and verified.
Every answer is bounded and timed (`receive/remote.py`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from modeldepot.errors import DepotError, FormatError, IntegrityError, ModelNotFound, UsageError
from modeldepot.formats.base import ModelInfo
from modeldepot.receive.remote import Answer, Limits, Remote, check_config_size, read_config
from modeldepot.refs import Reference, is_digest
from modeldepot.store import BlobStore, Descriptor, Manifest, Progress

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

    def __str__(self) -> str:
        host = self.registry.split("://", 1)[1]
        at = "@" if self.reference.startswith("sha256:") else ":"
        return f"oci://{host}/{self.repository}{at}{self.reference}"


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


def _check(answer: Answer, what: str) -> None:
    if answer.status == 404:
        raise ModelNotFound(f"{what}: not in the registry")
    if answer.status in (401, 403):
        raise DepotError(f"{what}: the registry refused access ({answer.status})")
    if answer.status >= 400:
        raise DepotError(f"{what}: the registry answered {answer.status}: {answer.text}")


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class Registry:
    """The OCI distribution API of one repository, every answer bounded (`Remote`)."""

    def __init__(self, ref: OCIRef, limits: Limits | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self.ref = ref
        self.remote = Remote("the registry", limits, transport=transport)

    def close(self) -> None:
        self.remote.close()

    # -- blobs ------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        answer = self.remote.request("HEAD", f"{self.ref.url}/blobs/{digest}", digest)
        return answer.status == 200

    def push_blob(self, digest: str, size: int, chunks: Any) -> None:
        """A monolithic upload: POST for a session, PUT of the bytes with their digest (the
        registry refuses bytes of another digest)."""
        what = f"uploading {digest}"
        started = self.remote.request("POST", f"{self.ref.url}/blobs/uploads/", what)
        _check(started, f"starting the upload of {digest}")
        location = started.headers.get("location")
        if not location:
            raise DepotError(f"{what}: the registry named no upload location")
        if location.startswith("/"):
            location = self.ref.registry + location
        separator = "&" if "?" in location else "?"
        done = self.remote.request("PUT", f"{location}{separator}digest={digest}", what,
                                   content=chunks,
                                   headers={"Content-Type": "application/octet-stream",
                                            "Content-Length": str(size)})  # fmt: skip
        _check(done, what)

    def blob(self, descriptor: Descriptor, store: BlobStore, progress: Progress | None) -> None:
        """Stream a blob into `store`, at most its declared size, checked against its digest."""
        self.remote.blob(f"{self.ref.url}/blobs/{descriptor.digest}",
                         f"{self.ref}: blob {descriptor.digest}", descriptor, store, _check,
                         progress)  # fmt: skip

    def small_blob(self, digest: str) -> bytes:
        """A small blob's bytes (a signature, a key: at most `MAX_JSON`), checked."""
        answer = self.remote.get(f"{self.ref.url}/blobs/{digest}", f"blob {digest}")
        _check(answer, f"blob {digest}")
        if _sha(answer.body) != digest:
            raise IntegrityError(f"blob {digest}: the registry sent bytes that hash to "
                                 f"{_sha(answer.body)}")  # fmt: skip
        return answer.body

    # -- manifests --------------------------------------------------------------------------

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        what = f"storing the manifest {reference}"
        done = self.remote.request("PUT", f"{self.ref.url}/manifests/{reference}", what,
                                   content=data, headers={"Content-Type": media_type})  # fmt: skip
        _check(done, what)
        digest = _sha(data)
        answered = done.headers.get("docker-content-digest")
        if answered and answered != digest:
            raise IntegrityError(f"the registry stored the manifest as {answered}, not {digest}")
        return digest

    def get_manifest(self, reference: str, accept: str = MANIFEST) -> tuple[bytes, str]:
        what = f"{self.ref.repository}:{reference}"
        got = self.remote.get(f"{self.ref.url}/manifests/{reference}", what,
                              headers={"Accept": f"{accept}, {INDEX}"})  # fmt: skip
        _check(got, what)
        digest = _sha(got.body)
        named = got.headers.get("docker-content-digest")
        if named and named != digest:
            raise IntegrityError(f"{self.ref.repository}:{reference}: the manifest hashes to "
                                 f"{digest}, the registry says {named}")  # fmt: skip
        if reference.startswith("sha256:") and reference != digest:
            raise IntegrityError(f"{self.ref.repository}@{reference}: the registry sent a "
                                 f"manifest that hashes to {digest}")  # fmt: skip
        return got.body, digest


def push(store: BlobStore, manifest_digest: str, signatures: list[tuple[bytes, str | None]],
         ref: OCIRef, progress: Progress | None = None,
         limits: Limits | None = None) -> str:  # fmt: skip
    """Push a stored version (by its manifest digest) and its signatures (bundle, public key)
    to `ref`; returns the manifest digest the registry holds it under."""
    raw = store.read_bytes(manifest_digest)
    manifest = Manifest.from_bytes(raw)
    registry = Registry(ref, limits)
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
    info: ModelInfo
    signatures: list[tuple[bytes, str | None]]


def pull(store: BlobStore, ref: OCIRef, progress: Progress | None = None,
         limits: Limits | None = None,
         transport: httpx.BaseTransport | None = None) -> Pulled:  # fmt: skip
    """Fetch a model's manifest (checked, paths included, before anything is fetched) and
    blobs (each checked, at most its declared size) into `store`, and its signatures; the
    manifest is stored last."""
    what = str(ref)
    registry = Registry(ref, limits, transport)
    try:
        raw, digest = registry.get_manifest(ref.reference)
        try:
            manifest = Manifest.from_bytes(raw)
            check_config_size(manifest, what)
        except FormatError as exc:
            raise type(exc)(f"{what}: {exc}; nothing was stored") from None
        for descriptor in (manifest.config, *manifest.layers):
            if store.has(descriptor.digest):
                if store.size(descriptor.digest) != descriptor.size:
                    raise IntegrityError(f"{what}: the manifest declares {descriptor.digest} as "
                                         f"{descriptor.size} bytes; it is not")  # fmt: skip
                if progress:
                    progress(descriptor.size)
                continue
            registry.blob(descriptor, store, progress)
        info = read_config(store, manifest, what)
        signatures = _signatures(registry, digest)
        stored = store.put_bytes(raw)
        assert stored.digest == digest
        return Pulled(digest, manifest, info, signatures)
    finally:
        registry.close()


def _signatures(registry: Registry, subject: str) -> list[tuple[bytes, str | None]]:
    try:
        raw, _ = registry.get_manifest(subject.replace(":", "-"), INDEX)
    except ModelNotFound:
        return []
    found = []
    for entry in _entries(raw, "manifests"):
        if entry.get("artifactType") != SIGNATURE_TYPE or not isinstance(entry.get("digest"), str):
            continue
        body, _ = registry.get_manifest(entry["digest"])
        artifact = _object(body)
        if (artifact.get("subject") or {}).get("digest") != subject:
            continue
        parts: dict[str, bytes] = {}
        for layer in _entries(body, "layers"):
            if not is_digest(str(layer.get("digest"))):
                raise FormatError(f"signature of {subject}: a layer names no digest")
            parts[str(layer.get("mediaType"))] = registry.small_blob(layer["digest"])
        if SIGNATURE_TYPE in parts:
            key = parts.get(PUBLIC_KEY)
            found.append((parts[SIGNATURE_TYPE], key.decode(errors="replace") if key else None))
    return found


def _object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        raise FormatError("the registry sent a manifest that is not JSON") from None
    if not isinstance(data, dict):
        raise FormatError("the registry sent a manifest that is not a JSON object")
    return data


def _entries(raw: bytes, key: str) -> list[dict[str, Any]]:
    """The objects listed under `key` of a JSON object (an index's manifests, layers)."""
    value = _object(raw).get(key, [])
    if not isinstance(value, list):
        raise FormatError(f"the registry sent a manifest whose {key} is not a list")
    return [entry for entry in value if isinstance(entry, dict)]


def target_name(ref: OCIRef) -> str:
    """The depot name a pulled model gets by default: the repository's last part, the tag."""
    tag = ref.reference if not ref.reference.startswith("sha256:") else "latest"
    return str(Reference.parse(f"{ref.repository.rsplit('/', 1)[-1]}:{tag}"))
