"""Which model answers a request, as the depot's one resolver says (an alias's targets in
order, a remote model, a local version), turned into HTTP errors: 404 when the name reaches
nothing, 403 when what it reaches is remote and the request private, refused by the policy,
or outside the key's scope; and what engine to start for a local version.

A key's scope is checked on what answers, never on the name asked for: an alias reaches only
those of its targets (local versions, remote models, fallbacks) the key may use."""

from __future__ import annotations

from modeldepot.errors import InvalidReference, ModelNotFound
from modeldepot.registry import ModelVersion
from modeldepot.registry.gateway import Alias
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.resolver import Target
from modeldepot.runtime import Capability, EngineSpec, ModelUnavailable
from modeldepot.server.errors import APIError
from modeldepot.server.state import ServerState

__all__ = ["Target", "alias_allowed", "engine_spec", "targets_for"]


def alias_allowed(key: ApiKey, alias: Alias) -> bool:
    """Whether `key` may use some target of `alias` (so that it is listed to it)."""
    return any(key.allows(target) for target in alias.targets)


async def targets_for(state: ServerState, model: str, *, private: bool,
                      key: ApiKey) -> list[Target]:  # fmt: skip
    """The models to try for `model`, in order: those `key` may use."""
    try:
        found = await state.directory.resolve(model, private=private)
    except (ModelNotFound, InvalidReference):
        raise APIError.model_not_found(model) from None
    if found.targets:
        allowed = [t for t in found.targets if key.allows(t.name)]
        if not allowed:
            names = ", ".join(t.name for t in found.targets)
            raise APIError(403, f"the API key {key.name!r} may not use {names}",
                           "permission_error", "model_not_allowed")  # fmt: skip
        return allowed
    if found.withheld:
        raise APIError(
            403,
            f"this request is private and {', '.join(found.withheld)} is remote: private "
            "requests never leave this machine",
            "permission_error",
            "private_request",
        )
    if found.refused:
        raise APIError(
            403,
            "; ".join(found.refused),
            "permission_error",
            "model_quarantined",
        )
    raise APIError.model_not_found(model)


def engine_spec(state: ServerState, version: ModelVersion, capability: Capability) -> EngineSpec:
    """What to start to serve `capability` of `version`; 400 when no engine can.

    A base model's generating engine holds every admitted adapter of that base, so the base
    and its adapters share one copy of the weights; an adapter is served by its base's
    engine, selected per request (`EngineSpec.selection`)."""
    try:
        if version.is_adapter:
            base = state.directory.base_of(version)
            if base is None:
                raise ModelUnavailable(
                    f"{version.reference} is an adapter whose base model is gone or refused"
                )
            version = base
        adapters: tuple[ModelVersion, ...] = ()
        if capability in (Capability.CHAT, Capability.COMPLETION, Capability.TOOLS) and (
            Capability.ADAPTERS in state.directory.capabilities(version)
        ):
            adapters = tuple(state.directory.adapters_of(version))
        return state.engines.spec(version, capability, state.files, state.settings, adapters)
    except ModelUnavailable as exc:
        raise APIError.bad_request(str(exc), "model_not_servable") from None
