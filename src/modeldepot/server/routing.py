"""Which model answers a request, as the depot's one resolver says (an alias's targets in
order, a remote model, a local version), turned into HTTP errors: 404 when the name reaches
nothing, 403 when what it reaches is remote and the request private, refused by the policy,
or outside the key's scope; and what engine to start for a local version.

A key's scope is checked on what answers, never on the name asked for: an alias reaches only
those of its targets (local versions, remote models, fallbacks) the key may use."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.errors import InvalidReference, ModelNotFound
from modeldepot.registry import ModelVersion
from modeldepot.registry.gateway import Alias
from modeldepot.registry.keys import ApiKey
from modeldepot.registry.resolver import Target
from modeldepot.runtime import Capability, EngineSpec, ModelUnavailable
from modeldepot.server.errors import APIError
from modeldepot.server.state import ServerState

__all__ = ["MIN_CONTEXT", "Serving", "Target", "alias_allowed", "engine_spec", "targets_for"]

MIN_CONTEXT = 64
"""The smallest context an engine is started with, whatever a request asks."""


@dataclasses.dataclass(frozen=True)
class Serving:
    """How a request wants its local engine run (Ollama's `keep_alive` and `num_ctx`; the
    OpenAI API asks neither)."""

    keep_alive: float | None = None
    """Seconds the engine stays loaded once idle (0: unload after this request)."""
    context: int | None = None
    """Tokens per sequence."""


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


def engine_spec(state: ServerState, version: ModelVersion, capability: Capability,
                context: int | None = None) -> EngineSpec:  # fmt: skip
    """What to start to serve `capability` of `version`; 400 when no engine can. `context`:
    the tokens per sequence a request asks for (Ollama's `num_ctx`; else a preset's own, else
    the server's).

    A base model's generating engine holds every admitted adapter of that base, so the base
    and its adapters share one copy of the weights; an adapter is served by its base's
    engine, selected per request (`EngineSpec.selection`). A preset without a template of its
    own is served by its base's engine too; one with a template gets an engine of its own."""
    preset = state.directory.preset(version)
    template: Path | None = None
    if preset is not None:
        context = context or preset.context
        if preset.template is not None:
            template = state.files.file(next(f.digest for f in version.files
                                             if f.path == "preset/template.jinja"))  # fmt: skip
        else:
            version = state.directory.preset_base(version) or version
    settings = state.settings
    if context is not None and context != settings.context:
        settings = dataclasses.replace(settings, context=max(MIN_CONTEXT, context))
    spec = _engine_spec(state, version, capability, settings)
    if template is not None and capability in (Capability.CHAT, Capability.TOOLS):
        spec = dataclasses.replace(spec, chat_template_file=template, chat_template=None)
    return spec


def _engine_spec(state: ServerState, version: ModelVersion, capability: Capability,
                 settings: Settings) -> EngineSpec:  # fmt: skip
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
        return state.engines.spec(version, capability, state.files, settings, adapters)
    except ModelUnavailable as exc:
        raise APIError.bad_request(str(exc), "model_not_servable") from None
