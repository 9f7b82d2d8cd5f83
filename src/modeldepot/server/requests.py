"""What a request to the OpenAI API must be before any engine sees it: a bounded JSON body
(413 past `MAX_BODY`) read as `modeldepot.jsonl` reads all JSON from outside (UTF-8, nested at
most `MAX_DEPTH` levels, no NaN or Infinity), and the fields OpenAI checks in OpenAI's ranges
(400 with the field named in `param`). Anything else a model might choke on (a long prompt, an
odd sampler value) stays the engine's to judge. Forms (the web UI's, a batch file's upload) are
read within a bound too, and only after authentication: the routes read their bodies
themselves, never through FastAPI's parameters."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from modeldepot import jsonl
from modeldepot.server.errors import APIError

__all__ = [
    "MAX_BODY",
    "MAX_CHOICES",
    "MAX_DEPTH",
    "MAX_STOP",
    "check_chat",
    "check_common",
    "check_fits",
    "choice_count",
    "prompt_bound",
    "read_form",
    "read_json",
    "read_object",
]

MAX_BODY = 8 * 1024 * 1024
"""Largest request body, in bytes."""
MAX_DEPTH = jsonl.MAX_DEPTH
"""Deepest nesting of JSON arrays and objects."""
MAX_CHOICES = 16
"""Largest `n`: each choice is a request the engine decodes."""
MAX_STOP = 16
"""Most stop sequences (OpenAI takes 4; code tasks use more)."""
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _bad(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, "invalid_request_error", "invalid_value" if param else None,
                    param)  # fmt: skip


def _too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than {limit} bytes",
                    "invalid_request_error", "request_too_large")  # fmt: skip


async def _bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request's body as it arrives, refused (413) past `limit` bytes: declared or sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


async def read_object(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object, read within `limit` bytes (413 past it; 400 when it is not
    a JSON object as `jsonl.loads` takes it)."""
    data = b"".join([chunk async for chunk in _bounded(request, limit)])
    try:
        body = jsonl.loads(data, max_depth=MAX_DEPTH)
    except ValueError as exc:
        raise _bad(f"the request body is {exc}") from None
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    return body


async def read_form(request: Request, limit: int, *, files: int = 0) -> FormData:
    """The request's form (URL-encoded, or multipart with at most `files` files), read within
    `limit` bytes (413 past it; 400 when malformed). The caller closes it."""
    kind, _ = parse_options_header(request.headers.get("content-type"))
    stream = _bounded(request, limit)
    try:
        if kind == b"multipart/form-data":
            parser: FormParser | MultiPartParser = MultiPartParser(
                request.headers, stream, max_files=files, max_fields=32)  # fmt: skip
        elif kind == b"application/x-www-form-urlencoded":
            parser = FormParser(request.headers, stream, max_fields=32)
        else:
            raise _bad("the body must be a form (multipart/form-data or "
                       "application/x-www-form-urlencoded)")  # fmt: skip
        return await parser.parse()
    except MultiPartException as exc:
        raise _bad(f"the form is malformed: {exc.message}") from None


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object naming a model, read within `MAX_BODY` (413 past it)."""
    body = await read_object(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("`model` is required: a model name from GET /v1/models", "model")
    return body


def _number(body: dict[str, Any], name: str, low: float, high: float, *, integer: bool) -> None:
    value = body.get(name)
    if value is None:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise _bad(f"`{name}` must be {'an integer' if integer else 'a number'}", name)
    if not low <= value <= high:
        raise _bad(f"`{name}` must be between {low:g} and {high:g}; got {value}", name)


def check_common(body: dict[str, Any]) -> None:
    """The sampling fields of chat and text completions, in OpenAI's ranges."""
    _number(body, "n", 1, MAX_CHOICES, integer=True)
    _number(body, "max_tokens", 0, 1 << 31, integer=True)
    _number(body, "max_completion_tokens", 0, 1 << 31, integer=True)
    _number(body, "temperature", 0, 2, integer=False)
    _number(body, "top_p", 0, 1, integer=False)
    _number(body, "presence_penalty", -2, 2, integer=False)
    _number(body, "frequency_penalty", -2, 2, integer=False)
    _number(body, "top_logprobs", 0, 20, integer=True)
    _number(body, "seed", -(1 << 63), (1 << 64) - 1, integer=True)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("`stream` must be true or false", "stream")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (
            isinstance(stop, list)
            and len(stop) <= MAX_STOP
            and all(isinstance(s, str) for s in stop)
        )
    ):
        raise _bad(f"`stop` must be a string or a list of at most {MAX_STOP} strings", "stop")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        _number(body, "logprobs", 0, 20, integer=True)


def _content(content: Any, where: str) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"`{where}.content` must be a string or a list of content parts", where)
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(f"`{where}.content[{j}]` must be an object with a `type`", where)
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise _bad(f"`{where}.content[{j}].text` must be a string", where)
        else:
            raise _bad(f"`{where}.content[{j}]` is {part['type']!r}: the models served here "
                       "take text only", where)  # fmt: skip


def _tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise _bad(f"`{where}.tool_calls` must be a list", where)
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise _bad(f"`{where}.tool_calls[{j}]` must be {{type: function, function: "
                       "{name: string, arguments: string}}", where)  # fmt: skip
        try:
            json.loads(function["arguments"])
        except ValueError:
            raise _bad(f"`{where}.tool_calls[{j}].function.arguments` is not JSON", where) from None


def _tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("`tools` must be a list", "tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
            or not isinstance(function.get("parameters", {}), dict)
        ):
            raise _bad(f"`tools[{i}]` must be {{type: function, function: {{name: string, "
                       "parameters: object}}}", "tools")  # fmt: skip
    choice = body.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return
    named = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(named, dict) or not isinstance(named.get("name"), str):
        raise _bad("`tool_choice` must be none, auto, required or {type: function, function: "
                   "{name}}", "tool_choice")  # fmt: skip


CHARS_PER_TOKEN = 32
"""More characters than any tokenizer packs into one token of text: a prompt longer than this
many characters per token of context cannot fit, whatever the model."""


def prompt_characters(body: dict[str, Any]) -> int:
    """Characters of text a request asks the model to read."""
    total = 0
    for field in ("prompt", "input"):
        value = body.get(field)
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, list):
            total += sum(len(v) for v in value if isinstance(v, str))
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return total


TEMPLATE_TOKENS = 32
"""Tokens a chat template may add to a conversation (its framing, a default system prompt)."""
MESSAGE_TOKENS = 8
"""Tokens a chat template may add around each message (role markers), or a tokenizer around
each prompt (its begin and end tokens)."""


def _text_tokens(value: Any) -> int:
    """At most how many tokens `value` (a text, token ids, or a list of them) takes: a token
    holds at least one byte of text."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return 1
    if isinstance(value, list):
        return sum(_text_tokens(v) for v in value)
    return len(json.dumps(value).encode())


def prompt_bound(body: dict[str, Any]) -> int:
    """A bound on the tokens a request's prompt takes, known before any engine sees it (what a
    key's daily quota reserves for it, settled later with the engine's count)."""
    total = 0
    for field in ("prompt", "input"):
        value = body.get(field)
        if value is not None:
            total += _text_tokens(value) + MESSAGE_TOKENS * max(1, _prompts(value))
    messages = body.get("messages")
    if isinstance(messages, list):
        total += TEMPLATE_TOKENS + MESSAGE_TOKENS * len(messages)
        for message in messages:
            if isinstance(message, dict):
                total += sum(_text_tokens(message.get(f)) for f in ("content", "name"))
                if message.get("tool_calls") is not None:
                    total += _text_tokens(json.dumps(message["tool_calls"]))
    if body.get("tools") is not None:
        total += _text_tokens(json.dumps(body["tools"]))
    return total


def _prompts(value: Any) -> int:
    """How many prompts a completion's `prompt` holds (a list of texts or of token lists)."""
    if isinstance(value, list) and value and all(isinstance(v, str | list) for v in value):
        return len(value)
    return 1


def choice_count(body: dict[str, Any]) -> int:
    """How many answers a chat or completion request asks for: `n` for each prompt."""
    n = body.get("n")
    return (n if isinstance(n, int) and n > 1 else 1) * _prompts(body.get("prompt"))


def check_fits(body: dict[str, Any], context: int, name: str) -> None:
    """400 for a prompt that cannot fit `context` tokens (no engine time spent on it)."""
    characters = prompt_characters(body)
    if characters > context * CHARS_PER_TOKEN:
        field = "messages" if "messages" in body else "prompt"
        raise _bad(f"the prompt ({characters:,} characters) cannot fit {name}'s context of "
                   f"{context:,} tokens", field)  # fmt: skip


def check_chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` must be a non-empty list", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad(f"`{where}` must be an object with a `role`", "messages")
        if message["role"] not in ROLES:
            raise _bad(f"`{where}.role` is {message['role']!r}; one of {', '.join(ROLES)}",
                       "messages")  # fmt: skip
        _content(message.get("content"), where)
        if message.get("tool_calls") is not None:
            _tool_calls(message["tool_calls"], where)
    _tools(body)
    check_common(body)
