"""Ollama's requests as the OpenAI requests the depot answers, and the answers back.

`/api/chat` is `/v1/chat/completions`; `/api/generate` is a one-turn chat (Ollama applies the
model's template to a prompt; `raw` skips it: `/v1/completions`); `/api/embed(dings)` is
`/v1/embeddings`. Options become the engine's fields (`modelfile.engine_fields`), `format`
becomes `response_format`, tools pass as they are (their call arguments as JSON text one way,
objects the other). A stream of server-sent events becomes NDJSON: one line per piece of text,
tool calls whole, and a last line with `done`, `done_reason` and the counts and durations (in
nanoseconds) the engine reported.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from modeldepot.customise.modelfile import engine_fields
from modeldepot.server.errors import APIError
from modeldepot.server.ollama.errors import error_line
from modeldepot.server.ollama.views import timestamp
from modeldepot.server.ollama.wire import ChatRequest, GenerateRequest, Message

__all__ = [
    "Reply",
    "chat_body",
    "embed_vectors",
    "generate_body",
    "ndjson",
    "whole",
]


def _no_images(images: list[str] | None, model: str) -> None:
    if images:
        raise APIError.bad_request(
            f"{model!r} cannot see images: the depot's engines serve text models only"
        )


def _message(message: Message, index: int, model: str) -> dict[str, Any]:
    _no_images(message.images, model)
    out: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": call.id or f"call_{index}_{i}", "type": "function",
             "function": {"name": call.function.name,
                          "arguments": json.dumps(call.function.arguments)}}
            for i, call in enumerate(message.tool_calls)
        ]  # fmt: skip
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or message.tool_name or "call"
        if message.tool_name:
            out["name"] = message.tool_name
    return out


def _common(body: dict[str, Any], request: ChatRequest | GenerateRequest) -> dict[str, Any]:
    body.update(engine_fields(request.options or {}))
    if request.format == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(request.format, dict):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.format},
        }
    body["stream"] = request.stream
    if request.stream:
        body["stream_options"] = {"include_usage": True}
    return body


def chat_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The OpenAI chat request for an Ollama chat (`model`: the depot's name)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(m, i, request.target) for i, m in enumerate(request.messages)],
    }
    if request.tools:
        body["tools"] = request.tools
    return _common(body, request)


def generate_body(request: GenerateRequest, model: str) -> tuple[str, dict[str, Any]]:
    """The OpenAI path and request for an Ollama generate."""
    _no_images(request.images, request.target)
    if request.context:
        raise APIError.bad_request("`context` is not supported: send the conversation to "
                                   "/api/chat instead")  # fmt: skip
    if request.suffix:
        raise APIError.bad_request("`suffix` (fill in the middle) is not supported")
    if request.raw:
        if request.system or request.template:
            raise APIError.bad_request("raw mode does not support template, system, or context")
        return "/v1/completions", _common({"model": model, "prompt": request.prompt}, request)
    if request.template:
        raise APIError.bad_request("a template per request is not supported: make a preset "
                                   "with its own TEMPLATE (depot create, /api/create)")  # fmt: skip
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    return "/v1/chat/completions", _common({"model": model, "messages": messages}, request)


def _arguments(text: Any) -> dict[str, Any]:
    """A tool call's arguments as the object Ollama's clients require."""
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {"arguments": text}
    return value if isinstance(value, dict) else {"value": value}


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        out.append({"id": call.get("id"), "function": {
            "index": i, "name": function.get("name", ""),
            "arguments": _arguments(function.get("arguments"))}})  # fmt: skip
    return out


@dataclass
class Reply:
    """What an Ollama answer says around the text: the name the client sent, whether it is
    a chat (`message`) or a generate (`response`), and when the request arrived."""

    model: str
    chat: bool
    started: float = field(default_factory=time.perf_counter)

    def _piece(self, text: str, thinking: str | None = None,
               calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            if calls:
                message["tool_calls"] = _tool_calls(calls)
            return {"model": self.model, "created_at": timestamp(), "message": message}
        piece: dict[str, Any] = {"model": self.model, "created_at": timestamp(),
                                 "response": text}  # fmt: skip
        if thinking:
            piece["thinking"] = thinking
        return piece

    def final(self, reason: str | None, usage: dict[str, Any], timings: dict[str, Any],
              text: str = "", thinking: str | None = None,
              calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        """The last object: `done`, `done_reason`, counts, and durations in nanoseconds."""
        out = self._piece(text, thinking, calls)
        out["done"] = True
        out["done_reason"] = "length" if reason == "length" else "stop"
        out["total_duration"] = int((time.perf_counter() - self.started) * 1e9)
        prompt = usage.get("prompt_tokens") or timings.get("prompt_n")
        completion = usage.get("completion_tokens") or timings.get("predicted_n")
        metrics = {
            "prompt_eval_count": prompt,
            "prompt_eval_duration": _ns(timings.get("prompt_ms")),
            "eval_count": completion,
            "eval_duration": _ns(timings.get("predicted_ms")),
        }
        out.update({k: int(v) for k, v in metrics.items() if v})
        return out


def _ns(milliseconds: Any) -> int | None:
    if isinstance(milliseconds, int | float) and math.isfinite(milliseconds):
        return int(milliseconds * 1e6)
    return None


def whole(reply: Reply, answer: dict[str, Any]) -> dict[str, Any]:
    """A whole OpenAI answer (not streamed) as Ollama's one object."""
    choice = (answer.get("choices") or [{}])[0]
    if reply.chat:
        message = choice.get("message") or {}
        text = message.get("content") or ""
        thinking = message.get("reasoning_content")
        calls = message.get("tool_calls")
    else:
        text, thinking, calls = choice.get("text") or "", None, None
    if not reply.chat and "message" in choice:  # a generate answered by the chat route
        text = (choice.get("message") or {}).get("content") or ""
    return reply.final(choice.get("finish_reason"), answer.get("usage") or {},
                       answer.get("timings") or {}, text, thinking, calls)  # fmt: skip


async def _events(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events' JSON data, as they arrive (ends at `[DONE]`)."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                try:
                    value = json.loads(data)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    yield value


async def ndjson(reply: Reply, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """An OpenAI event stream as Ollama's NDJSON: a line per piece of text, tool calls whole
    when the engine has finished them, then the `done` line; an error event becomes the last
    line `{"error": ...}`."""
    calls: dict[int, dict[str, Any]] = {}
    reason: str | None = None
    usage: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    try:
        async for event in _events(chunks):
            if "error" in event:
                error = event["error"]
                yield error_line(error.get("message", str(error)) if isinstance(error, dict)
                                 else str(error))  # fmt: skip
                return
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content") or choice.get("text") or ""
                thinking = delta.get("reasoning_content")
                for call in delta.get("tool_calls") or []:
                    index = int(call.get("index", len(calls)))
                    held = calls.setdefault(
                        index, {"id": call.get("id"), "function": {"name": "", "arguments": ""}}
                    )
                    function = call.get("function") or {}
                    held["function"]["name"] += function.get("name") or ""
                    arguments = function.get("arguments")
                    if isinstance(arguments, dict):
                        held["function"]["arguments"] = arguments
                    elif arguments:
                        held["function"]["arguments"] += arguments
                if text or thinking:
                    yield _line({**reply._piece(text, thinking), "done": False})
                reason = choice.get("finish_reason") or reason
    finally:
        await _close(chunks)
    if calls:
        ordered = [calls[i] for i in sorted(calls)]
        yield _line({**reply._piece("", None, ordered), "done": False})
    yield _line(reply.final(reason, usage, timings))


async def _close(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode()


def embed_vectors(answer: dict[str, Any], dimensions: int | None) -> list[list[float]]:
    """The vectors of an OpenAI embeddings answer in input order, cut to `dimensions` and
    L2-normalised (as Ollama's `/api/embed` returns them)."""
    rows = sorted(answer.get("data") or [], key=lambda d: d.get("index", 0))
    vectors = []
    for row in rows:
        vector = [float(x) for x in row.get("embedding") or []]
        if dimensions:
            vector = vector[:dimensions]
        norm = math.sqrt(sum(x * x for x in vector))
        vectors.append([x / norm for x in vector] if norm > 0 else vector)
    return vectors
