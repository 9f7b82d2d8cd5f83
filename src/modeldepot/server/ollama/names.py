"""Model names as Ollama clients write them, onto the depot's own (refs.py).

Ollama matches names case-insensitively and always shows the tag (`smollm2` is
`smollm2:latest`); the depot's names are lowercase with a `latest` default, the same shape, so
the mapping is small: the name is lowercased (not its tag), and `registry.ollama.ai/library/`,
the default Ollama host and namespace, is dropped. A name the depot cannot parse reaches
nothing (404, in the wording each route uses)."""

from __future__ import annotations

from modeldepot.errors import InvalidReference
from modeldepot.refs import Reference

__all__ = ["depot_name", "display_name", "hex_digest"]

_DEFAULT_PREFIXES = ("registry.ollama.ai/library/", "registry.ollama.ai/")


def depot_name(name: str) -> str:
    """The depot's name for an Ollama client's `name` (InvalidReference when it is none)."""
    text = name.strip()
    for prefix in _DEFAULT_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    slash, colon = text.rfind("/"), text.rfind(":")
    repository, tag = (text[:colon], text[colon:]) if colon > slash else (text, "")
    if "@" in repository:
        raise InvalidReference(f"{name!r}: Ollama names carry no digest")
    return str(Reference.parse(repository.lower() + tag))


def display_name(reference: Reference) -> str:
    """How Ollama shows a model: `name:tag`, `namespace/name:tag` (always with the tag)."""
    return f"{reference.repository}:{reference.tag or 'latest'}"


def hex_digest(digest: str) -> str:
    """A digest as Ollama writes it in lists (hex, no `sha256:`)."""
    return digest.removeprefix("sha256:")
