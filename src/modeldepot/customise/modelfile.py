"""Modelfiles, the way Ollama writes presets: read in this one place, for `depot create -f` and
for `/api/create` (whose fields are a Modelfile already parsed by the client).

    FROM smollm2                    the base: a model of this depot, or a file beside the
                                    Modelfile (`FROM ./model.gguf`)
    PARAMETER temperature 0.2       a default the request can override (`OPTIONS` below)
    SYSTEM You are terse.           the system prompt, when a request sends none
    TEMPLATE \"\"\"{% ... %}\"\"\"  the chat template: Jinja, as in a GGUF's own (not Go's)
    ADAPTER ./lora.gguf             a LoRA adapter of the base, applied to it
    LICENSE \"\"\"...\"\"\"         the preset's licence text (may repeat)
    MESSAGE user Hi                 conversation put before every request's messages

Grammar as Ollama's parser reads it (parser/parser.go): instructions are case-insensitive, `#`
starts a comment only at the start of a line, a value is the rest of the line or a `"..."` /
`\"\"\"...\"\"\"` block taken verbatim (it may span lines). Paths come from outside: each is checked
by `paths.check_relpath` against the Modelfile's folder (a leading `./` allowed), so `FROM
../../etc/passwd` or an absolute path is refused with one line before anything is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeldepot.errors import UnsafePath, UsageError
from modeldepot.paths import check_relpath

__all__ = [
    "IGNORED_OPTIONS",
    "MAX_MODELFILE",
    "OPTIONS",
    "Modelfile",
    "check_option",
    "engine_fields",
    "parse_modelfile",
    "read_modelfile",
]

MAX_MODELFILE = 1024 * 1024
"""Largest Modelfile read, in bytes."""

OPTIONS: dict[str, tuple[type, str | None]] = {
    "num_ctx": (int, None),
    "num_predict": (int, "max_tokens"),
    "temperature": (float, "temperature"),
    "top_k": (int, "top_k"),
    "top_p": (float, "top_p"),
    "min_p": (float, "min_p"),
    "typical_p": (float, "typical_p"),
    "seed": (int, "seed"),
    "stop": (list, "stop"),
    "repeat_penalty": (float, "repeat_penalty"),
    "repeat_last_n": (int, "repeat_last_n"),
    "presence_penalty": (float, "presence_penalty"),
    "frequency_penalty": (float, "frequency_penalty"),
    "num_keep": (int, "n_keep"),
    "mirostat": (int, "mirostat"),
    "mirostat_tau": (float, "mirostat_tau"),
    "mirostat_eta": (float, "mirostat_eta"),
}
"""Ollama's options the engine honours: name -> (type, the engine's request field). `num_ctx`
is the context the engine is started with (a request asking another one gets an engine of its
own, as Ollama reloads the model)."""

IGNORED_OPTIONS = frozenset({
    "num_batch", "num_gpu", "main_gpu", "use_mmap", "use_mlock", "num_thread", "numa",
    "low_vram", "f16_kv", "logits_all", "vocab_only", "embedding_only", "tfs_z",
    "penalize_newline", "draft_num_predict",
})  # fmt: skip
"""Options clients send that concern how Ollama loads a model (the depot sets those itself)
or that llama.cpp no longer has: accepted and ignored."""

_COMMANDS = ("from", "parameter", "template", "system", "adapter", "license", "message")
_UNSUPPORTED = ("requires", "renderer", "parser", "draft")
_ROLES = ("system", "user", "assistant")


def check_option(name: str, value: Any) -> Any:
    """An option's value in its type (UsageError naming it otherwise); None for an option
    the depot ignores. Text (from a Modelfile) is converted; JSON values must match."""
    if name in IGNORED_OPTIONS:
        return None
    if name not in OPTIONS:
        raise UsageError(f"unknown parameter {name!r}")
    kind = OPTIONS[name][0]
    try:
        if kind is list:
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(s, str) for s in items):
                raise ValueError
            return list(items)
        if isinstance(value, str):
            converted: Any = kind(value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        elif kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            converted = int(value)
        else:
            converted = float(value)
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ValueError
        return converted
    except (ValueError, OverflowError):
        what = {int: "an integer", float: "a number", list: "text"}[kind]
        raise UsageError(f"parameter {name!r} must be {what}, not {value!r}") from None


def engine_fields(options: dict[str, Any]) -> dict[str, Any]:
    """Checked options as the engine's request fields (`num_predict` -1 or -2: no limit)."""
    fields: dict[str, Any] = {}
    for name, value in options.items():
        checked = check_option(name, value)
        target = OPTIONS.get(name, (None, None))[1]
        if checked is None or target is None:
            continue
        if name == "num_predict" and checked < 0:
            continue
        fields[target] = checked
    return fields


@dataclass(frozen=True)
class Modelfile:
    """A parsed Modelfile. `base` names a model of the depot, or `base_file` is a file."""

    base: str | None = None
    base_file: Path | None = None
    adapter: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    licenses: tuple[str, ...] = ()
    messages: tuple[dict[str, str], ...] = ()


def read_modelfile(path: Path) -> Modelfile:
    """Read and parse the Modelfile at `path` (files it names are relative to its folder)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MODELFILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the Modelfile {path}: {exc.strerror}") from None
    if len(data) > MAX_MODELFILE:
        raise UsageError(f"the Modelfile {path} is larger than {MAX_MODELFILE} bytes")
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"the Modelfile {path} is not UTF-8 (or UTF-16) text") from None
    return parse_modelfile(text, path.parent)


def _commands(text: str) -> list[tuple[int, str, str]]:
    """(line, instruction, value) of each instruction, quotes taken off."""
    found: list[tuple[int, str, str]] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = f"{more} {rest}".strip()
        command = word.lower()
        if not word.isascii() or not word.isalpha() or command not in (*_COMMANDS, *_UNSUPPORTED):
            raise UsageError(f"Modelfile line {number}: command must be one of "
                             f"{', '.join(c.upper() for c in _COMMANDS)}")  # fmt: skip
        if command in _UNSUPPORTED:
            raise UsageError(f"Modelfile line {number}: {word.upper()} is not supported by "
                             "the depot")  # fmt: skip
        prefix = ""
        rest = rest.strip()
        if command in ("parameter", "message"):
            prefix, _, rest = rest.replace("\t", " ").partition(" ")
            rest = rest.strip()
            if not prefix:
                raise UsageError(f"Modelfile line {number}: {word.upper()} needs a name and "
                                 "a value")  # fmt: skip
        for quote in ('"""', '"'):
            if rest.startswith(quote):
                body = rest[len(quote) :]
                while quote not in body:
                    if i >= len(lines):
                        raise UsageError(f"Modelfile line {number}: the {quote} quote is "
                                         "never closed")  # fmt: skip
                    body += "\n" + lines[i]
                    i += 1
                value, _, after = body.partition(quote)
                if after.strip():
                    raise UsageError(f"Modelfile line {number}: text after the closing "
                                     f"{quote}")  # fmt: skip
                rest = value
                break
        found.append((number, command, f"{prefix}\0{rest}" if prefix else rest))
    return found


def _local_file(value: str, folder: Path, what: str) -> Path:
    """A file the Modelfile names, checked: relative to its folder, inside it."""
    relative = value.removeprefix("./")
    check_relpath(relative, f"{what} path")
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UnsafePath(f"{what} path {value!r} is refused: it leads out of the Modelfile's "
                         "folder")  # fmt: skip
    if not target.is_file():
        raise UsageError(f"{what} {value!r}: no such file beside the Modelfile")
    return target


def _looks_like_path(value: str, folder: Path) -> bool:
    return (value.startswith(("/", "~", "./", "../", "\\")) or "\\" in value
            or ".." in value.split("/") or value.endswith((".gguf", ".bin", ".safetensors"))
            or (folder / value).exists())  # fmt: skip


def parse_modelfile(text: str, folder: Path) -> Modelfile:
    """Parse a Modelfile whose files are relative to `folder` (UsageError / UnsafePath with
    one line saying what is wrong)."""
    if len(text) > MAX_MODELFILE:
        raise UsageError(f"the Modelfile is larger than {MAX_MODELFILE} bytes")
    base: str | None = None
    base_file: Path | None = None
    adapter: Path | None = None
    parameters: dict[str, Any] = {}
    template: str | None = None
    system: str | None = None
    licenses: list[str] = []
    messages: list[dict[str, str]] = []
    for number, command, value in _commands(text):
        if command == "from":
            if base is not None or base_file is not None:
                raise UsageError(f"Modelfile line {number}: one FROM only (projectors and "
                                 "drafts are not supported)")  # fmt: skip
            if _looks_like_path(value, folder):
                base_file = _local_file(value, folder, "FROM")
            else:
                base = value
        elif command == "adapter":
            if adapter is not None:
                raise UsageError(f"Modelfile line {number}: only one adapter is supported")
            adapter = _local_file(value, folder, "ADAPTER")
        elif command == "parameter":
            name, _, raw = value.partition("\0")
            try:
                checked = check_option(name, raw)
            except UsageError as exc:
                raise UsageError(f"Modelfile line {number}: {exc}") from None
            if name == "stop":
                parameters.setdefault("stop", []).extend(checked)
            elif checked is not None:
                parameters[name] = checked
        elif command == "template":
            template = value
        elif command == "system":
            system = value
        elif command == "license":
            licenses.append(value)
        elif command == "message":
            role, _, content = value.partition("\0")
            if role not in _ROLES:
                raise UsageError(f"Modelfile line {number}: message role must be one of "
                                 f"{', '.join(_ROLES)}")  # fmt: skip
            messages.append({"role": role, "content": content})
    if base is None and base_file is None:
        raise UsageError("the Modelfile has no FROM line")
    return Modelfile(base, base_file, adapter, parameters, template, system, tuple(licenses),
                     tuple(messages))  # fmt: skip
