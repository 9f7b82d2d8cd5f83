"""Which model answers a request: a local model, a remote one, or the targets of an alias in
order; and the rule that a private request never leaves the machine."""

from __future__ import annotations

from dataclasses import dataclass

from modeldepot.errors import InvalidReference, ModelNotFound
from modeldepot.registry import ModelVersion
from modeldepot.registry.gateway import Remote
from modeldepot.runtime.runner import ModelUnavailable, RunnerSpec
from modeldepot.server.errors import APIError
from modeldepot.server.state import ServerState

__all__ = ["Target", "engine_spec", "is_sentence_model", "targets_for"]


def is_sentence_model(version: ModelVersion) -> bool:
    """A sentence-transformers folder: served for embeddings by the sentence engine."""
    return any(
        f.path in ("modules.json", "config_sentence_transformers.json") for f in version.files
    )


@dataclass(frozen=True)
class Target:
    name: str
    version: ModelVersion | None = None
    remote: Remote | None = None


async def targets_for(state: ServerState, model: str, *, private: bool) -> list[Target]:
    """The models to try for `model`, in order (404 when there is none, 403 when the only
    ones are remote and the request is private)."""
    aliases, remotes = await state.directory.gateway()
    alias = aliases.get(model)
    names = list(alias.targets) if alias else [model]
    found: list[Target] = []
    withheld = []
    refused: list[str] = []
    for name in names:
        remote = remotes.get(name)
        if remote is not None:
            if private:
                withheld.append(name)
            else:
                found.append(Target(name, remote=remote))
            continue
        try:
            version = await state.directory.version(name)
        except (ModelNotFound, InvalidReference):
            if alias is None:
                raise APIError.model_not_found(model) from None
            continue  # an alias target that no longer exists: try the next
        reasons = await state.directory.refusals(version)
        if reasons:
            refused.append(f"{version.reference}: {reasons[0]}")
            continue
        found.append(Target(str(version.reference), version=version))
    if not found and withheld:
        raise APIError(
            403,
            f"this request is private and {', '.join(withheld)} is remote: private requests "
            "never leave this machine",
            "permission_error",
            "private_request",
        )
    if not found and refused:
        raise APIError(
            403,
            f"the depot's policy refuses to serve {'; '.join(refused)}",
            "permission_error",
            "model_quarantined",
        )
    if not found:
        raise APIError.model_not_found(model)
    return found


def engine_spec(state: ServerState, version: ModelVersion, kind: str) -> RunnerSpec:
    """What to start to serve `version` for `kind` (generate, embed, score); 400 when the
    local engine cannot serve it."""
    if version.info.format != "gguf" and kind == "embed" and is_sentence_model(version):
        folder = state.depot.materialize(version)
        return RunnerSpec.sentence(version, folder, state.settings)
    weights = [f for f in version.files if f.kind == "weights"]
    if len(weights) != 1:
        raise APIError.bad_request(f"{version.reference} has no single weights file to serve")
    path = state.depot.blobs.path(weights[0].digest)
    try:
        return RunnerSpec.for_version(version, path, state.settings, kind)
    except ModelUnavailable as exc:
        raise APIError.bad_request(str(exc), "model_not_servable") from None
