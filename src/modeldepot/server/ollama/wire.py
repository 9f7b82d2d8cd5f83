"""Ollama's request bodies as pydantic models, parsed once where a request arrives: the field
names and types of Ollama's `api/types.go`, unknown fields ignored (clients send newer ones),
`null` option values skipped, and `keep_alive`, `format` and `options` checked here so that a
bad value is one 400 naming it."""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modeldepot.customise.modelfile import check_option
from modeldepot.errors import UsageError
from modeldepot.server.errors import APIError

__all__ = [
    "ChatRequest",
    "CopyRequest",
    "CreateRequest",
    "DeleteRequest",
    "EmbedRequest",
    "EmbeddingsRequest",
    "GenerateRequest",
    "Message",
    "NamedRequest",
    "PullRequest",
    "ShowRequest",
    "keep_alive_seconds",
    "parse",
]

_T = TypeVar("_T", bound=BaseModel)
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}  # fmt: skip
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
MAX_NAME = 350
"""Longest model name taken (Ollama's own bound on a name's host part)."""


def keep_alive_seconds(value: Any) -> float | None:
    """Ollama's `keep_alive`: a number of seconds, or a Go duration (`5m`, `1h30m`, `0`);
    negative means forever (inf), absent None (the server's default)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"Unsupported type: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        text = text.lstrip("+-")
        if text == "0":
            seconds = 0.0
        else:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"time: invalid duration {value!r}")
            seconds = sign * sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"Unsupported type: {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        return math.inf
    return seconds


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class NamedRequest(_Body):
    """A request naming one model (`model`, or `name` as older clients send it)."""

    model: str = Field("", max_length=MAX_NAME)
    name: str = Field("", max_length=MAX_NAME)

    @property
    def target(self) -> str:
        return self.model or self.name


class _Options(NamedRequest):
    options: dict[str, Any] | None = None
    keep_alive: float | None = None

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, value: Any) -> float | None:
        return keep_alive_seconds(value)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        checked = {}
        for name, option in value.items():
            if option is None:
                continue
            try:
                found = check_option(name, option)
            except UsageError as exc:
                if str(exc).startswith("unknown parameter"):
                    continue  # Ollama logs and ignores options it does not know
                raise ValueError(str(exc)) from None
            if found is not None:
                checked[name] = found
        return checked


class ToolFunction(_Body):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(_Body):
    id: str | None = None
    function: ToolFunction


class Message(_Body):
    role: str
    content: str | None = ""
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    thinking: str | None = None

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        return value.lower()


class _Generating(_Options):
    stream: bool = True
    format: str | dict[str, Any] | None = None
    think: bool | str | None = None

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, str) and value not in ("", "json"):
            raise ValueError(f'invalid format: "{value}"; expected "json" or a valid JSON '
                             "Schema object")  # fmt: skip
        return value or None


class ChatRequest(_Generating):
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


class GenerateRequest(_Generating):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None


class EmbedRequest(_Options):
    input: str | list[str] = Field(default_factory=list)
    truncate: bool = True
    dimensions: int | None = Field(None, ge=1)


class EmbeddingsRequest(_Options):
    prompt: str = ""


class ShowRequest(NamedRequest):
    verbose: bool = False


class PullRequest(NamedRequest):
    insecure: bool = False
    stream: bool = True


class CopyRequest(_Body):
    source: str = Field(max_length=MAX_NAME)
    destination: str = Field(max_length=MAX_NAME)


class DeleteRequest(NamedRequest):
    pass


class CreateRequest(NamedRequest):
    from_: str | None = Field(None, alias="from", max_length=MAX_NAME)
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    system: str | None = None
    license: str | list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[Message] | None = None
    quantize: str | None = None
    stream: bool = True

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            checked = {k: check_option(k, v) for k, v in value.items() if v is not None}
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return {k: v for k, v in checked.items() if v is not None}


def parse(model: type[_T], body: dict[str, Any]) -> _T:
    """`body` as `model`, or 400 naming the first field that is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise APIError.bad_request(f"{where}: {message}" if where else message) from None
