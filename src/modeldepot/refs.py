"""Model names and digests, parsed and validated in this one place.

Grammar (the same shape as container images and Ollama models):

    reference := [namespace "/"] name [":" tag] ["@" digest]
    namespace := component          (default "library", hidden when shown)
    name      := component
    component := [a-z0-9]+ ([._-] [a-z0-9]+)*      at most 64 characters
    tag       := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}   (default "latest")
    digest    := "sha256:" 64 lowercase hex digits

Examples: `smollm2`, `smollm2:135m-q4`, `acme/support-bot:v3`, `smollm2@sha256:ab12...`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modeldepot.errors import InvalidReference

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TAG",
    "Reference",
    "gives_version",
    "is_digest",
    "parse_digest",
]

DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_COMPONENT = 64


def gives_version(text: str) -> bool:
    """Whether the name `text`, as typed, says which version (a tag, a digest), rather than
    leaving its tag to default to `latest`."""
    return "@" in text or ":" in text.rsplit("/", 1)[-1]


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def parse_digest(text: str) -> str:
    """Return `sha256:<hex>` for a digest written with or without its algorithm prefix."""
    candidate = text if text.startswith("sha256:") else f"sha256:{text}"
    if not is_digest(candidate):
        raise InvalidReference(f"{text!r} is not a sha256 digest (expected sha256:<64 hex digits>)")
    return candidate


def _component(text: str, what: str, whole: str) -> str:
    if not text:
        raise InvalidReference(f"{whole!r}: the {what} is empty")
    if len(text) > _MAX_COMPONENT:
        raise InvalidReference(f"{whole!r}: the {what} is longer than {_MAX_COMPONENT} characters")
    if _COMPONENT.fullmatch(text) is None:
        hint = " (names are lowercase)" if text.lower() != text else ""
        raise InvalidReference(
            f"{whole!r}: the {what} {text!r} may hold only a-z, 0-9 and single . _ - "
            f"between them{hint}"
        )
    return text


@dataclass(frozen=True, order=True)
class Reference:
    """A parsed model name; `tag` is None only when a digest pins the version."""

    namespace: str
    name: str
    tag: str | None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        whole = text
        text = text.strip()
        if not text:
            raise InvalidReference("a model name is required, e.g. smollm2 or smollm2:135m-q4")
        digest: str | None = None
        if "@" in text:
            text, _, raw_digest = text.partition("@")
            digest = parse_digest(raw_digest)
        tag: str | None = None
        slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1 :]
            if _TAG.fullmatch(tag) is None:
                raise InvalidReference(
                    f"{whole!r}: the tag {tag!r} may hold only letters, digits, _ . - "
                    "(at most 128, not starting with . or -)"
                )
        parts = text.split("/")
        if len(parts) > 2:
            raise InvalidReference(f"{whole!r}: expected [namespace/]name[:tag][@sha256:...]")
        namespace = _component(parts[0], "namespace", whole) if len(parts) == 2 else None
        name = _component(parts[-1], "name", whole)
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(namespace or DEFAULT_NAMESPACE, name, tag, digest)

    @property
    def repository(self) -> str:
        """`namespace/name` as shown to users: the default namespace is left out."""
        if self.namespace == DEFAULT_NAMESPACE:
            return self.name
        return f"{self.namespace}/{self.name}"

    def with_tag(self, tag: str) -> Reference:
        return Reference.parse(f"{self.namespace}/{self.name}:{tag}")

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text
