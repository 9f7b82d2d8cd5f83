"""Tool calling for models whose chat template knows no tools.

llama.cpp parses tool calls in the formats of the templates that define them; a template
without tools (SmolLM2's, Gemma's) makes it ignore `tools` silently. For those models the
depot does what llama.cpp's former generic handler did: it describes the tools in a system
message, constrains the answer with a JSON schema (`{"tool_calls": [...]}` or
`{"response": "..."}`), and turns the JSON back into OpenAI `tool_calls`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["answer_chunks", "decode_answer", "encode_request"]

_INSTRUCTIONS = (
    "You can call the following tools. Each is given as a JSON schema of its arguments.\n\n"
    "{tools}\n\n"
    "Reply with a JSON object only. To call tools: "
    '{{"tool_calls": [{{"name": "<tool name>", "arguments": {{...}}}}]}}. '
    'To answer without a tool: {{"response": "<your answer>"}}.'
)


def _call_schema(tools: list[dict[str, Any]], parallel: bool) -> dict[str, Any]:
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool["function"]["name"]},
                "arguments": tool["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for tool in tools
    ]
    items: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "minItems": 1}
    if not parallel:
        items["maxItems"] = 1
    return {"type": "object", "properties": {"tool_calls": items}, "required": ["tool_calls"]}


def _history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier tool calls and results, written as plain turns the template can render."""
    out = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message["tool_calls"]
            ]
            out.append({"role": "assistant", "content": json.dumps({"tool_calls": calls})})
        elif role == "tool":
            out.append({"role": "user", "content": f"Tool result: {message.get('content', '')}"})
        else:
            out.append(message)
    return out


def encode_request(body: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a chat request with `tools` into a schema-constrained plain chat request."""
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    plain = {k: v for k, v in body.items() if k not in {"tools", "tool_choice", "stream"}}
    plain.pop("parallel_tool_calls", None)
    plain["messages"] = _history(list(body.get("messages") or []))
    if not tools or choice == "none":
        return plain
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        tools = [t for t in tools if t["function"]["name"] == wanted]
    schema = _call_schema(tools, bool(body.get("parallel_tool_calls", True)))
    if choice == "auto":
        answer = {"type": "object", "properties": {"response": {"type": "string"}},
                  "required": ["response"]}  # fmt: skip
        schema = {"anyOf": [schema, answer]}
    described = json.dumps([t["function"] for t in tools], indent=1)
    system = {"role": "system", "content": _INSTRUCTIONS.format(tools=described)}
    plain["messages"] = [system, *plain["messages"]]
    plain["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema},
    }
    return plain


def decode_answer(response: dict[str, Any]) -> dict[str, Any]:
    """Turn the engine's JSON answer back into OpenAI `tool_calls` or plain content."""
    for choice in response.get("choices", []):
        message = choice.get("message") or {}
        try:
            parsed = json.loads(message.get("content") or "")
        except json.JSONDecodeError:
            continue  # cut short (max_tokens): leave the text as it is
        if isinstance(parsed, dict) and parsed.get("tool_calls"):
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{secrets.token_hex(12)}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for c in parsed["tool_calls"]
            ]
            choice["finish_reason"] = "tool_calls"
        elif isinstance(parsed, dict) and "response" in parsed:
            message["content"] = parsed["response"]
    return response


def answer_chunks(response: dict[str, Any]) -> Iterator[bytes]:
    """A decoded answer as the server-sent events a streaming client expects."""
    base = {"id": response.get("id", f"chatcmpl-{secrets.token_hex(8)}"),
            "object": "chat.completion.chunk", "created": response.get("created", int(time.time())),
            "model": response.get("model")}  # fmt: skip
    for choice in response.get("choices", []):
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": i, **call} for i, call in enumerate(message["tool_calls"])
            ]
        for payload in (
            {**base, "choices": [{"index": choice.get("index", 0), "delta": delta,
                                  "finish_reason": None}]},
            {**base, "choices": [{"index": choice.get("index", 0), "delta": {},
                                  "finish_reason": choice.get("finish_reason")}]},
        ):  # fmt: skip
            yield f"data: {json.dumps(payload)}\n\n".encode()
    if response.get("usage"):
        usage = {**base, "choices": [], "usage": response["usage"]}
        yield f"data: {json.dumps(usage)}\n\n".encode()
    yield b"data: [DONE]\n\n"
