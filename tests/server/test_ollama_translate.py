"""The translation both ways, on answers an engine gives: tool calls streamed in pieces come out
whole with their arguments as objects (ollama-python refuses a JSON string), an error event
ends the stream as Ollama's `{"error": ...}` line, `keep_alive` reads as Ollama reads it."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import ollama
import pytest

from modeldepot.server.ollama.translate import Reply, ndjson, whole
from modeldepot.server.ollama.wire import keep_alive_seconds


def _sse(*events: dict[str, Any]) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        for event in events:
            data = f"data: {json.dumps(event)}\n\n".encode()
            yield data[:7]  # an event may arrive in pieces
            yield data[7:]
        yield b"data: [DONE]\n\n"

    return chunks()


def _lines(reply: Reply, chunks: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [json.loads(line) async for line in ndjson(reply, chunks)]

    return asyncio.run(run())


def _delta(**delta: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def test_streamed_tool_calls_come_out_whole_with_object_arguments() -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": '{"ci'}}
    more = {"index": 0, "function": {"arguments": 'ty": "Paris"}'}}
    lines = _lines(Reply("m", chat=True), _sse(
        _delta(role="assistant"), _delta(content="Let me look."), _delta(tool_calls=[call]),
        _delta(tool_calls=[more]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 12},
         "timings": {"prompt_ms": 1.5, "predicted_ms": 20.0}},
    ))  # fmt: skip
    assert [line["done"] for line in lines] == [False, False, True]
    assert lines[0]["message"] == {"role": "assistant", "content": "Let me look."}
    calls = lines[1]["message"]["tool_calls"]
    assert calls == [{"id": "call_1", "function": {"index": 0, "name": "get_weather",
                                                   "arguments": {"city": "Paris"}}}]  # fmt: skip
    last = lines[-1]
    assert last["done_reason"] == "stop" and last["eval_count"] == 12
    assert (last["prompt_eval_duration"], last["eval_duration"]) == (1_500_000, 20_000_000)
    for line in lines:  # what ollama-python reads them into
        ollama.ChatResponse.model_validate(line)


def test_a_whole_answer_with_tool_calls() -> None:
    answer = {"choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function",
             "function": {"name": "f", "arguments": '{"a": [1, 2]}'}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}  # fmt: skip
    out = whole(Reply("m", chat=True), answer)
    parsed = ollama.ChatResponse.model_validate(out)
    assert parsed.message.tool_calls and parsed.message.tool_calls[0].function.arguments == {
        "a": [1, 2]}  # fmt: skip
    assert out["message"]["content"] == "" and out["done_reason"] == "stop"


def test_an_error_mid_stream_is_the_last_line() -> None:
    lines = _lines(Reply("m", chat=False), _sse(
        {"choices": [{"index": 0, "text": "half", "finish_reason": None}]},
        {"error": {"message": "m: the engine failed mid-stream", "type": "server_error"}},
    ))  # fmt: skip
    assert lines == [{**lines[0], "response": "half", "done": False},
                     {"error": "m: the engine failed mid-stream"}]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), (0, 0.0), (0.0, 0.0), ("0", 0.0), (300, 300.0), ("5m", 300.0),
     ("1h30m", 5400.0), ("300ms", 0.3), (-1, math.inf), ("-1m", math.inf)],
)  # fmt: skip
def test_keep_alive_reads_as_ollama_reads_it(value: Any, seconds: float | None) -> None:
    assert keep_alive_seconds(value) == seconds


@pytest.mark.parametrize("value", ["300", "soon", "5 m", True, [1]])
def test_keep_alive_that_ollama_refuses_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        keep_alive_seconds(value)
