"""Local names: a version by name, tag or digest; listing, search; moving and removing tags.
Each change is recorded with its actor. Versions come back with the status the depot's gate
gives them now (`judge`, passed in by the depot), so every view shows the same answer."""

from __future__ import annotations

import re
from collections.abc import Callable

from modeldepot.errors import ModelNotFound, UsageError
from modeldepot.refs import Reference, gives_version
from modeldepot.registry.records import ModelVersion
from modeldepot.registry.versions import Registry

__all__ = ["Names"]


Judge = Callable[[list[ModelVersion]], list[ModelVersion]]


class Names:
    def __init__(self, registry: Registry, actor: str, judge: Judge | None = None) -> None:
        self.registry = registry
        self.actor = actor
        self.judge: Judge = judge or (lambda versions: versions)

    def show(self, name: str) -> ModelVersion:
        """The version `name` (NAME[:TAG] or NAME@sha256:...) names; ModelNotFound if none."""
        return self.judge([self.registry.resolve(Reference.parse(name))])[0]

    def by_prefix(self, repository: str, prefix: str) -> ModelVersion:
        """The version of `repository` whose manifest digest starts with `sha256:PREFIX` (a
        Hugging Face commit id is its first 40 hex digits); ModelNotFound when no version,
        or more than one, does."""
        ref = Reference.parse(repository)
        if re.fullmatch(r"[0-9a-f]{8,64}", prefix) is None:
            raise ModelNotFound(f"{prefix!r} is not a version of {ref.repository}")
        found = [d for d in self.registry.digests(ref) if d.startswith(f"sha256:{prefix}")]
        if len(set(found)) != 1:
            raise ModelNotFound(f"{ref.repository} has no version {prefix}")
        return self.show(f"{ref.repository}@{found[0]}")

    def versions(self, *, include_untagged: bool = False) -> list[ModelVersion]:
        return self.judge(self.registry.versions(include_untagged=include_untagged))

    def search(self, query: str) -> list[ModelVersion]:
        terms = query.split()
        if not terms:
            raise UsageError("give at least one search term, e.g. `depot search llama q4`")
        return self.judge(self.registry.search(terms))

    def tag(self, source: str, target: str, *, actor: str | None = None) -> ModelVersion:
        dst = Reference.parse(target)
        if dst.digest is not None:
            raise UsageError(f"{target!r}: a tag cannot name a digest; use NAME:TAG")
        tagged = self.registry.tag(Reference.parse(source), dst, actor=actor or self.actor)
        return self.judge([tagged])[0]

    def remove(self, name: str, *, actor: str | None = None) -> ModelVersion:
        """Remove the tag `name` names (`latest` when it names none), or the version its
        digest names."""
        return self.registry.remove(Reference.parse(name), actor=actor or self.actor)

    def remove_model(self, name: str, *, actor: str | None = None) -> list[ModelVersion]:
        """Remove every tag and version of the model `name` (given without a tag)."""
        if gives_version(name):
            raise UsageError(f"{name!r}: give the model's name alone to remove all its tags")
        ref = Reference.parse(name)
        model = (ref.namespace, ref.name)
        found = {v.digest: v for v in self.registry.versions(include_untagged=True)
                 if (v.reference.namespace, v.reference.name) == model}  # fmt: skip
        if not found:
            raise ModelNotFound(f"no model named {ref.repository}")
        for digest in found:
            pinned = Reference(ref.namespace, ref.name, None, digest)
            self.registry.remove(pinned, actor=actor or self.actor)
        return list(found.values())
