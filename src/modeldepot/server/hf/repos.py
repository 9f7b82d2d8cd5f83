"""Which depot version a Hugging Face repo id and revision name, and whether this caller may
have it: the Hub's identities over the depot's one resolver and gate.

    repo id    a depot name without a tag: `smollm2` (the default namespace) or
               `acme/tiny-llama`
    revision   `main`: the `latest` tag (for a model without one, its newest tagged
               version); a tag (`135m-instruct-q4_1`); a commit; or `sha256:<64 hex>`
    commit     the first 40 hex digits of the version's manifest digest: stable for as long
               as the version exists, new for every new manifest, the same on every depot
               holding the same manifest, and accepted back wherever a revision is

A key's scope is checked on what answers: the version's tags (or its repository). A name the
key may not use is refused as `GatedRepo` whether or not the depot holds it, so a key learns
nothing about models outside its scope (the Hub answers a private repository the same way for
any repository, with `RepoNotFound`; the depot says why instead, and the client raises
`GatedRepoError`, the error it raises for "you may not have this"). A version the gate refuses
(pending, quarantined, refused by the policy) is `GatedRepo` too, with the gate's reasons.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from modeldepot.errors import InvalidReference, ModelNotFound
from modeldepot.refs import DEFAULT_TAG, Reference, is_digest
from modeldepot.registry import ModelVersion
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.names import Names
from modeldepot.server.hf.errors import GATED, REPO, REVISION, HubError
from modeldepot.server.state import ServerState

__all__ = ["MAIN", "Mirror", "Revision", "allowed", "commit_of", "find", "mains", "repo_id",
           "revision"]  # fmt: skip

MAIN = "main"
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO = re.compile(r"[^/:@]+(?:/[^/:@]+)?")

Mirror = Callable[[str, "Revision"], Awaitable[None]]
"""Fetches a repository (the repo id as the client wrote it) the depot lacks through an
on-demand mirror (raises HubError)."""


def commit_of(digest: str) -> str:
    """The Hugging Face commit id of the version with this manifest digest."""
    return digest.removeprefix("sha256:")[:40]


def repo_id(text: str) -> str:
    """The depot repository a repo id names (`acme/tiny`; `Acme/Tiny` too: the Hub's ids are
    not case-sensitive, the depot's names are lowercase), or RepoNotFound."""
    try:
        if _REPO.fullmatch(text) is None:
            raise InvalidReference(f"{text!r}: expected [namespace/]name")
        return Reference.parse(text.lower()).repository
    except InvalidReference as exc:
        raise HubError(404, REPO, f"{text!r} is not a model name of this depot ({exc})") from None


@dataclass(frozen=True)
class Revision:
    repository: str
    text: str
    """As the client sent it."""
    tag: str | None = None
    """`latest` for `main`."""
    commit: str | None = None
    digest: str | None = None

    @property
    def main(self) -> bool:
        return self.text == MAIN

    @property
    def name(self) -> str:
        """The depot name it stands for (a commit has none of its own)."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


def revision(repository: str, text: str) -> Revision:
    if text == MAIN:
        return Revision(repository, text, tag=DEFAULT_TAG)
    if _COMMIT.fullmatch(text):
        return Revision(repository, text, commit=text)
    if is_digest(text):
        return Revision(repository, text, digest=text)
    try:
        tag = Reference.parse(f"{repository}:{text}").tag
    except InvalidReference:
        raise HubError(404, REVISION, f"{repository} has no revision {text!r}") from None
    return Revision(repository, text, tag=tag)


def mains(versions: Iterable[ModelVersion]) -> dict[str, ModelVersion]:
    """The version `main` names in each repository among `versions` (one per tag): its
    `latest`, or for a model without one, its newest tagged version."""
    tagged: dict[str, list[ModelVersion]] = defaultdict(list)
    for v in versions:
        tagged[v.reference.repository].append(v)
    return {repository: next((v for v in found if v.reference.tag == DEFAULT_TAG), None)
            or max(found, key=lambda v: (v.created_at, v.digest))
            for repository, found in tagged.items()}  # fmt: skip


def _newest_tagged(names: Names, repository: str) -> ModelVersion:
    found = mains(v for v in names.versions() if v.reference.repository == repository)
    if repository not in found:
        raise ModelNotFound(f"no model named {repository}")
    return found[repository]


async def _lookup(state: ServerState, rev: Revision) -> ModelVersion:
    names = state.depot.names
    if rev.commit is not None:
        return await asyncio.to_thread(names.by_prefix, rev.repository, rev.commit)
    try:
        return await state.directory.version(rev.name)
    except ModelNotFound:
        if not rev.main:
            raise
        return await asyncio.to_thread(_newest_tagged, names, rev.repository)


def allowed(key: ApiKey, repository: str, version: ModelVersion | None,
            tag: str | None = None) -> bool:  # fmt: skip
    """Whether `key` may use `version` of `repository` (any of its tags), or when none is
    stored, the name `repository[:tag]` asked for."""
    if key.allows(repository):
        return True
    if version is not None:
        return any(key.allows(f"{repository}:{t}") for t in version.tags)
    return tag is not None and key.allows(f"{repository}:{tag}")


def _out_of_scope(key: ApiKey, repository: str) -> HubError:
    return HubError(403, GATED, f"the API key {key.name!r} may not use {repository}")


async def find(state: ServerState, key: ApiKey, repo: str, rev_text: str,
               mirror: Mirror | None = None) -> ModelVersion:  # fmt: skip
    """The version `repo` at `rev_text` names, if this caller may have it now; HubError
    otherwise. `mirror`: fetches a repository the depot lacks (on demand), then it is looked
    up again."""
    repository = repo_id(repo)
    rev = revision(repository, rev_text)
    try:
        version = await _lookup(state, rev)
    except (ModelNotFound, InvalidReference):
        if not allowed(key, repository, None, rev.tag):
            raise _out_of_scope(key, repository) from None
        stored = await asyncio.to_thread(state.depot.registry.digests,
                                         Reference.parse(repository))  # fmt: skip
        if stored:
            raise HubError(404, REVISION, f"{repository} has no revision {rev.text!r}") from None
        if mirror is None or rev.commit is not None:
            raise HubError(404, REPO, f"{repository} is not in this depot") from None
        await mirror(repo, rev)  # as the client wrote it: the upstream's own spelling
        return await find(state, key, repo, rev_text)
    if not allowed(key, repository, version):
        raise _out_of_scope(key, repository)
    refusals = await state.directory.refusals(version)
    if refusals:
        raise HubError(403, GATED, f"{version.reference} is refused by the depot: "
                                   f"{'; '.join(refusals)}", commit_of(version.digest))  # fmt: skip
    return version
