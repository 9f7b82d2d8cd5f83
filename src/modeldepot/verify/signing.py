"""Signatures in the OpenSSF model-signing format (the `model-signing` package).

A signature is a Sigstore bundle over a manifest of every file's sha256, so a model signed here
verifies with `model_signing verify key ...` anywhere, and the other way round. Keys are ECDSA
P-256 in PEM. Keyless signing through Sigstore (OIDC identity, public transparency log) is
available where the network allows it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modeldepot.errors import DepotError, IntegrityError, NotFound, UsageError
from modeldepot.refs import parse_digest

__all__ = ["SignatureFailure", "Signer", "fingerprint", "generate_key", "sign_folder",
           "signed_digests",
           "verify_folder"]  # fmt: skip

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


class SignatureFailure(IntegrityError):
    """A signature does not verify: the files changed, or the key is not the signer's."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


@dataclass(frozen=True)
class Signer:
    method: str
    """`key` (a PEM private key) or `sigstore` (keyless, needs the network and an identity)."""
    key: Path | None = None


def _hashing() -> Any:
    import model_signing

    # The depot presents a version as a folder of links to its blobs: hash what they point to.
    return model_signing.hashing.Config().set_allow_symlinks(True)


def generate_key(path: Path) -> tuple[Path, Path]:
    """Write an ECDSA P-256 private key to `path` (mode 0600) and its public key beside it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path)
    public = path.with_name(path.name + ".pub")
    for p in (path, public):
        if p.exists():
            raise UsageError(f"{p} exists; refusing to overwrite a key")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    public.write_bytes(public_key_pem(path).encode())
    return path, public


def public_key_pem(private_key: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(Path(private_key).read_bytes(), password=None)
    except FileNotFoundError:
        raise NotFound(f"{private_key}: no such key file") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{private_key}: not an unencrypted PEM private key ({exc})") from None
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def fingerprint(public_pem: str) -> str:
    """sha256 of the DER public key: the `hint` model-signing writes into bundles."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem.encode())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class _Recorded:
    """A hashing configuration that answers with digests already known (those the store
    computed as it stored the files), in exactly the manifest model-signing's own hashing
    would build: the same serialization parameters, one item per file."""

    def __init__(self, digests: Mapping[str, str]) -> None:
        self.digests = digests

    def hash(self, model_path: Path, *, files_to_hash: Any = None) -> Any:
        from model_signing import manifest
        from model_signing._hashing.hashing import Digest

        shape = _hashing().hash(model_path, files_to_hash=[])  # no file read: the parameters
        items = [
            manifest.FileManifestItem(
                path=PurePosixPath(path),
                digest=Digest("sha256", bytes.fromhex(parse_digest(d)[7:])),
            )
            for path, d in sorted(self.digests.items())
        ]
        return manifest.Manifest(Path(model_path).name, items, shape._serialization_type)


def sign_folder(folder: Path, signature: Path, signer: Signer,
                recorded: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """Sign every file under `folder`; returns the signer's identity. With `recorded` (path ->
    digest of every file), sign those digests instead of hashing the files again."""
    import model_signing

    hashing: Any = _hashing() if recorded is None else _Recorded(recorded)
    config = model_signing.signing.Config().set_hashing_config(hashing)
    if signer.method == "key":
        assert signer.key is not None
        identity = fingerprint(public_key_pem(signer.key))
        config = config.use_elliptic_key_signer(private_key=signer.key)
    elif signer.method == "sigstore":
        identity = "sigstore"
        config = config.use_sigstore_signer()
    else:
        raise UsageError(f"unknown signing method {signer.method!r} (key or sigstore)")
    try:
        config.sign(folder, signature)
    except DepotError:
        raise
    except Exception as exc:  # the library raises plain exceptions (network, OIDC, keys)
        raise DepotError(f"signing failed: {exc}") from None
    return identity


# model-signing reports a list of messages, quoted as Python reprs.
_MISMATCH = re.compile(r"Hash mismatch for \\?'([^'\\]+)\\?'")
_MISSING = re.compile(r"(?:missing|extra|not found)[^'\\]*\\?'([^'\\]+)\\?'", re.I)


def verify_folder(
    folder: Path, signature: Path, *, public_key: Path | None = None,
    identity: str | None = None, issuer: str | None = None,
) -> None:  # fmt: skip
    """Re-hash every file and check the signature; raises `SignatureFailure` naming the files
    that changed."""
    import model_signing

    config = model_signing.verifying.Config().set_hashing_config(_hashing())
    if public_key is not None:
        config = config.use_elliptic_key_verifier(public_key=public_key)
    elif identity is not None and issuer is not None:
        config = config.use_sigstore_verifier(identity=identity, oidc_issuer=issuer)
    else:
        raise UsageError("verification needs a public key, or a Sigstore identity and issuer")
    try:
        config.verify(folder, signature)
    except Exception as exc:
        text = str(exc)
        files = sorted(set(_MISMATCH.findall(text)) | set(_MISSING.findall(text)))
        if files:
            raise SignatureFailure(
                f"{', '.join(files)}: content differs from what was signed", files
            ) from None
        raise SignatureFailure(f"signature does not verify: {text[:300]}", []) from None


def signed_digests(signature: Path) -> dict[str, str]:
    """The per-file sha256 digests a model-signing bundle vouches for (`sha256:<hex>` by file
    name); empty when the bundle does not list them that way."""
    import base64
    import json

    try:
        bundle = json.loads(signature.read_text())
        payload = bundle["dsseEnvelope"]["payload"]
        statement = json.loads(base64.b64decode(payload))
        resources = statement["predicate"]["resources"]
        return {
            str(r["name"]): f"sha256:{r['digest']}"
            for r in resources
            if r.get("algorithm", "sha256") == "sha256"
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}
