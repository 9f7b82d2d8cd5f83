"""Presets: a model served with its own system prompt, template, parameters and opening
messages (`depot create NAME -f Modelfile`, or Ollama's `/api/create`).

A preset is a version of its own whose manifest names the base's files by digest (nothing is
copied) plus small files of its own, recorded with the relation `preset` to the base:

    preset/system.txt        the system prompt, when a request sends none
    preset/template.jinja    the chat template (Jinja, as a GGUF's own)
    preset/params.json       defaults a request can override (Ollama's option names)
    preset/messages.json     messages put before every request's own
    preset/license-N.txt     licence texts

It is scanned and admitted like any import: the template and the system prompt go through the
template scanner (scan/templates.py), and a preset of a refused base is refused with it. The
server applies a preset to every request for it, whichever API the request came through
(`Preset.apply`). A preset made from a preset starts from its base's values: a new system prompt
or template replaces the old, parameters merge (the new win), messages are replaced when given,
licences are added, as Ollama's create does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modeldepot.customise.modelfile import Modelfile, check_option, engine_fields
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.formats.base import ModelSource, SourceFile
from modeldepot.refs import Reference
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.registry.records import PRESET
from modeldepot.store import LayerKind
from modeldepot.verify.policy import UNSIGNED
from modeldepot.verify.signing import Signer

__all__ = ["PRESET_FOLDER", "Preset", "create_preset", "preset_of"]

PRESET_FOLDER = "preset/"
_SYSTEM = "preset/system.txt"
_TEMPLATE = "preset/template.jinja"
_PARAMS = "preset/params.json"
_MESSAGES = "preset/messages.json"
MAX_PRESET_FILE = 1024 * 1024
"""Largest preset file read back (they are written by the depot, a few KiB)."""


@dataclass(frozen=True)
class Preset:
    system: str | None = None
    template: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Ollama's option names and values, checked (`modelfile.OPTIONS`)."""
    messages: tuple[dict[str, str], ...] = ()
    licenses: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self == Preset()

    @property
    def context(self) -> int | None:
        """The context (`num_ctx`) the preset's engine runs with, if it says."""
        value = self.parameters.get("num_ctx")
        return int(value) if isinstance(value, int) else None

    @classmethod
    def of(cls, modelfile: Modelfile) -> Preset:
        return cls(modelfile.system, modelfile.template, dict(modelfile.parameters),
                   modelfile.messages, modelfile.licenses)  # fmt: skip

    def over(self, base: Preset) -> Preset:
        """This preset made from `base` (a preset itself): Ollama's create semantics."""
        return Preset(
            system=self.system if self.system is not None else base.system,
            template=self.template if self.template is not None else base.template,
            parameters={**base.parameters, **self.parameters},
            messages=self.messages or base.messages,
            licenses=(*base.licenses, *self.licenses),
        )

    def files(self) -> list[SourceFile]:
        """The preset's own files (UTF-8 text and JSON)."""
        files = []
        if self.system is not None:
            files.append(SourceFile(_SYSTEM, LayerKind.CONFIG, data=self.system.encode()))
        if self.template is not None:
            files.append(SourceFile(_TEMPLATE, LayerKind.CHAT_TEMPLATE,
                                    data=self.template.encode()))  # fmt: skip
        if self.parameters:
            data = json.dumps(dict(sorted(self.parameters.items())), indent=1).encode()
            files.append(SourceFile(_PARAMS, LayerKind.CONFIG, data=data))
        if self.messages:
            data = json.dumps(list(self.messages), indent=1).encode()
            files.append(SourceFile(_MESSAGES, LayerKind.CONFIG, data=data))
        files += [SourceFile(f"preset/license-{i + 1}.txt", LayerKind.LICENSE, data=t.encode())
                  for i, t in enumerate(self.licenses)]  # fmt: skip
        return files

    def apply(self, body: dict[str, Any], *, chat: bool) -> dict[str, Any]:
        """An OpenAI request body for this preset's model: its parameters as defaults, and for
        a chat its system prompt (unless the request opens with its own) and messages."""
        body = dict(body)
        for name, value in engine_fields(dict(self.parameters)).items():
            if name == "max_tokens" and "max_completion_tokens" in body:
                continue
            body.setdefault(name, value)
        if chat and isinstance(body.get("messages"), list):
            messages = list(body["messages"])
            opening: list[dict[str, Any]] = []
            if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
                opening.append(messages.pop(0))
            elif self.system is not None:
                opening.append({"role": "system", "content": self.system})
            body["messages"] = [*opening, *(dict(m) for m in self.messages), *messages]
        return body


def preset_of(version: ModelVersion, read: Callable[[str], bytes]) -> Preset | None:
    """The preset `version` carries (None for a version that is not one: no file under
    `preset/`); `read` gives a blob's bytes."""
    own = {f.path: f for f in version.files if f.path.startswith(PRESET_FOLDER)}
    if not own:
        return None

    def text(path: str) -> str | None:
        found = own.get(path)
        if found is None or found.size > MAX_PRESET_FILE:
            return None
        return read(found.digest).decode("utf-8", errors="replace")

    raw_params = text(_PARAMS)
    raw_messages = text(_MESSAGES)
    parameters: dict[str, Any] = {}
    for name, value in dict(_json(raw_params) or {}).items():
        try:
            checked = check_option(str(name), value)
        except UsageError:
            continue  # an option a later depot knows: not this one's to apply
        if checked is not None:
            parameters[str(name)] = checked
    messages = tuple(
        {"role": str(m.get("role")), "content": str(m.get("content") or "")}
        for m in list(_json(raw_messages) or [])
        if isinstance(m, dict)
    )
    licenses = tuple(text(path) or "" for path in sorted(own) if path.startswith("preset/license-"))
    return Preset(text(_SYSTEM), text(_TEMPLATE), parameters, messages, licenses)


def _json(text: str | None) -> Any:
    """A preset file's JSON (None when absent or not JSON: a damaged file applies nothing)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _base_files(version: ModelVersion) -> list[SourceFile]:
    """The base's files by digest (not copied), less a preset's own."""
    return [SourceFile(f.path, LayerKind(f.kind), digest=f.digest) for f in version.files
            if not f.path.startswith(PRESET_FOLDER)]  # fmt: skip


def create_preset(depot: Depot, name: str, modelfile: Modelfile, *,
                  actor: str | None = None) -> ModelVersion:  # fmt: skip
    """Store the preset `modelfile` describes as version `name`, admit it (scanned like any
    import) and sign it with the depot's key when there is one."""
    target = Reference.parse(name)
    if target.digest is not None:
        raise UsageError(f"{name!r}: name the new model NAME[:TAG], without a digest")
    preset = Preset.of(modelfile)
    if preset.template is not None:
        _check_jinja(preset.template)
    if modelfile.base_file is not None:  # a file of its own: imported with the preset
        source = depot.formats.read(modelfile.base_file)
        files = [*source.files, *preset.files()]
        version = depot.intake.import_source(ModelSource(source.info, tuple(files)), name,
                                             origin=f"modelfile:{modelfile.base_file.name}",
                                             actor=actor)  # fmt: skip
        return _signed(depot, version, actor)
    assert modelfile.base is not None
    base = depot.names.show(modelfile.base)
    refusals = depot.admission.refusals(base)
    if refusals:
        raise UsageError(f"{base.reference} cannot be used: {refusals[0]}")
    inherited = preset_of(base, depot.store.read_bytes)
    if inherited is not None:
        preset = preset.over(inherited)
    info = base.info
    if preset.template is not None:
        info = dataclasses.replace(info, chat_template=preset.template)
    link = LineageLink(PRESET, str(base.reference), base.digest)
    files = _base_files(base)
    lineage = [link]
    if modelfile.adapter is not None:  # the preset holds the adapter, served on the base
        if base.is_adapter:
            raise UsageError(f"{base.reference} is an adapter: ADAPTER needs a base model")
        adapter = depot.formats.read(modelfile.adapter)
        files = [*adapter.files]
        info = adapter.info
        lineage = [LineageLink("adapter", str(base.reference), base.digest), link]
    elif base.is_adapter:
        lineage.append(next(x for x in base.lineage if x.relation == "adapter"))
    files += preset.files()
    version = depot.intake.import_source(ModelSource(info, tuple(files)), str(target),
                                         lineage=lineage, origin=f"preset:{base.reference}",
                                         actor=actor)  # fmt: skip
    return _signed(depot, version, actor)


def _check_jinja(template: str) -> None:
    """A template must be Jinja (as a GGUF's own); Ollama's Go templates are not run here."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        ImmutableSandboxedEnvironment().parse(template)
    except TemplateSyntaxError as exc:
        raise UsageError(
            f"template error: not a Jinja template ({exc.message}, line "
            f"{exc.lineno}); the depot's templates are Jinja, as a GGUF's own "
            "(Ollama's Go templates are not supported)"
        ) from None


def _signed(depot: Depot, version: ModelVersion, actor: str | None) -> ModelVersion:
    key = depot.signatures.default_key
    if key.is_file() and version.reasons and all(r == UNSIGNED for r in version.reasons):
        depot.signatures.sign(version, Signer("key", key), actor=actor, just_stored=True)
        version = depot.gate.apply([version])[0]
    return version
