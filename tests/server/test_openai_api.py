"""The official OpenAI SDK against `depot serve` running the real SmolLM2."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest

pytestmark = pytest.mark.slow

CHAT = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="local", max_retries=0)


def test_models_lists_the_stored_tags(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"smollm2:latest", "smollm2:135m-instruct-q4_1"} <= ids


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=CHAT, max_tokens=24, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in {"stop", "length"}
    assert reply.model == "smollm2:latest"
    assert reply.usage is not None
    assert 0 < reply.usage.completion_tokens <= 24 and reply.usage.prompt_tokens > 5


def test_stream_matches_the_whole_answer(client: openai.OpenAI) -> None:
    params = {"model": "smollm2", "messages": CHAT, "max_tokens": 24, "temperature": 0}
    whole = client.chat.completions.create(**params).choices[0].message.content
    chunks = list(client.chat.completions.create(**params, stream=True))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 3
    assert "".join(pieces) == whole


def test_stop_sequences(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        max_tokens=40,
        temperature=0,
        stop=["5"],
    )
    assert "5" not in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model="smollm2", messages=CHAT, max_tokens=20, temperature=1.2, seed=seed
        )
        return reply.choices[0].message.content or ""

    assert sample(7) == sample(7)
    assert len({sample(s) for s in (1, 2, 3)}) > 1


def test_json_schema_output_matches_the_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Invent a person; give name and age."}],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)


def test_json_object_mode(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Give a JSON object with a key colour."}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_tool_call(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice="required",
        max_tokens=60,
        temperature=0,
    )
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(calls[0].function.arguments)  # type: ignore[union-attr]


def test_logprobs(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=CHAT, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and len(content) == reply.usage.completion_tokens  # type: ignore[union-attr]
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        assert token.top_logprobs[0].logprob >= token.top_logprobs[-1].logprob


def test_text_completion_n_and_ignore_eos(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="smollm2:135m-instruct-q4_1",
        prompt="The capital of France is",
        max_tokens=12,
        temperature=0.8,
        n=2,
        extra_body={"ignore_eos": True},
    )
    assert len(reply.choices) == 2
    assert reply.usage is not None and reply.usage.completion_tokens == 24


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=CHAT)
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"messages": []}', "`model` is required"),
        (b'{"model": "smollm2", "messages": []}', "`messages` must be a non-empty list"),
        (b'{"model": "smollm2", "messages": [1]}', "`messages[0]`"),
    ],
)
def test_malformed_requests_are_400(server: str, body: bytes, message: str) -> None:
    response = httpx.post(f"{server}/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_engine_errors_keep_openai_shape(client: openai.OpenAI) -> None:
    """A request only the engine can judge: its error comes back with its status and shape."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=CHAT, top_logprobs=2)
    assert "logprobs" in caught.value.body["message"]  # type: ignore[index]


def test_killed_engine_fails_one_stream_and_recovers(client: openai.OpenAI, server: str) -> None:
    stream = client.chat.completions.create(
        model="smollm2", messages=CHAT, max_tokens=400, stream=True,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    first = next(iter(stream))
    assert first.choices
    loaded = httpx.get(f"{server}/health").json()["loaded"]
    pid = next(
        m["pid"] for m in loaded if m["name"] == "smollm2:latest" and m["kind"] == "generate"
    )
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    reply = client.chat.completions.create(model="smollm2", messages=CHAT, max_tokens=8)
    assert reply.choices[0].message.content
    assert Path(f"/proc/{pid}").exists() is False


def test_embeddings_from_the_gguf_model(client: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "The cat sat on the mat.", "Quarterly tax filing rules."]
    reply = client.embeddings.create(model="smollm2", input=texts)
    vectors = [d.embedding for d in sorted(reply.data, key=lambda d: d.index)]
    assert len(vectors) == 3 and {len(v) for v in vectors} == {576}

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)

    assert cosine(vectors[0], vectors[1]) > 0.999
    assert cosine(vectors[0], vectors[2]) < cosine(vectors[0], vectors[1])
    assert reply.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="smollm2", input=[])
