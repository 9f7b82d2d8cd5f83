"""The Ollama API in this process (over ASGI), driven by the official `ollama` client itself
(its `AsyncClient` given the in-process transport) with the fake engine standing in for
llama-server: translation both ways, the gate and the key's scope in Ollama's error shape,
presets applied on the way to the engine, keep-alive and num_ctx reaching the pool, and hostile
input refused with nothing written."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from fastapi import FastAPI

from builders import write_gguf
from fake_engine import llama_server_stand_in
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.server.hosts import in_process_transport
from servers import asgi_depot

GO_TEMPLATE = "{{ if .System }}{{ .System }}{{ end }}"
"""A template in Ollama's own language (Go's): the depot's are Jinja."""
Scenario = Callable[[FastAPI, ollama.AsyncClient, httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "depot", user="admin", parallel=1, keep_alive=600,
                        llama_server=llama_server_stand_in(tmp_path),
                        max_upload=64 * 1024)  # fmt: skip
    with Depot(settings) as depot:
        depot.intake.import_path(write_gguf(tmp_path / "a.gguf"), "mine")
        depot.intake.import_path(write_gguf(tmp_path / "b.gguf", seed=2), "theirs")
    return settings


def _run(settings: Settings, scenario: Scenario, key: str | None = None) -> None:
    async def main() -> None:
        async with asgi_depot(settings) as (app, raw):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            client = ollama.AsyncClient(host="http://depot", headers=headers,
                                        transport=in_process_transport(app))  # fmt: skip
            await scenario(app, client, raw)

    asyncio.run(main())


async def _last(app: FastAPI) -> dict[str, Any]:
    """The last request the (fake) engine received."""
    engine = app.state.depot.pool.engines()[-1]
    async with httpx.AsyncClient() as client:
        return dict((await client.get(f"{engine.base_url}/last")).json())


def test_chat_generate_embed_through_the_client(settings: Settings) -> None:
    async def scenario(app: FastAPI, client: ollama.AsyncClient, _: httpx.AsyncClient) -> None:
        listed = await client.list()
        assert sorted(m.model for m in listed.models) == ["mine:latest", "theirs:latest"]
        whole = await client.chat(model="MINE", messages=[{"role": "user", "content": "hi"}],
                                  options={"num_predict": 7, "temperature": 0.5, "seed": 3,
                                           "top_k": 4, "repeat_penalty": 1.1, "num_gpu": 9,
                                           "stop": ["x"]}, format="json")  # fmt: skip
        assert whole.message.role == "assistant" and whole.message.content.startswith("mine")
        assert whole.done and whole.done_reason == "stop" and whole.model == "MINE"
        assert whole.prompt_eval_count == 3 and whole.eval_count == 2
        sent = await _last(app)
        assert sent["path"] == "/v1/chat/completions" and sent["max_tokens"] == 7
        assert (sent["temperature"], sent["seed"], sent["top_k"], sent["stop"]) == (
            0.5,
            3,
            4,
            ["x"],
        )
        assert sent["repeat_penalty"] == 1.1 and "num_gpu" not in sent
        assert sent["response_format"] == {"type": "json_object"}
        parts = [
            p
            async for p in await client.chat(
                model="mine", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        ]
        assert "".join(p.message.content for p in parts) == "t0 t1 t2 "
        assert [p.done for p in parts] == [False, False, False, True]
        assert parts[-1].eval_count == 3 and parts[-1].done_reason == "stop"
        generated = await client.generate(model="mine", prompt="p", system="s")
        assert generated.response.startswith("mine:latest answer")
        sent = await _last(app)
        assert sent["messages"] == [{"role": "system", "content": "s"},
                                    {"role": "user", "content": "p"}]  # fmt: skip
        raw = await client.generate(model="mine", prompt="p", raw=True)
        assert raw.response.startswith("mine:latest answer") and (await _last(app))["prompt"] == "p"
        embedded = await client.embed(model="mine", input=["a", "bcd"])
        first, second = embedded.embeddings
        assert first == pytest.approx([3 / 26**0.5, 4 / 26**0.5, 1 / 26**0.5])
        assert second == pytest.approx([3 / 34**0.5, 4 / 34**0.5, 3 / 34**0.5])
        assert (await client.embeddings(model="mine", prompt="ab")).embedding == [3.0, 4.0, 2.0]

    _run(settings, scenario)


def test_refusals_are_each_clients_own_error(settings: Settings) -> None:
    with Depot(settings) as depot:
        depot.quarantine.hold(depot.names.show("theirs"), reason="held for the test")
        secret = depot.keys.create("scoped", models="mine*")[1]
        admin = depot.keys.create("boss", admin=True)[1]

    async def keyed(app: FastAPI, client: ollama.AsyncClient, raw: httpx.AsyncClient) -> None:
        for call in (client.chat(model="theirs", messages=[{"role": "user", "content": "x"}]),
                     client.show("theirs")):  # fmt: skip
            with pytest.raises(ollama.ResponseError) as refused:
                await call
            assert refused.value.status_code == 403, refused.value
        with pytest.raises(ollama.ResponseError) as unknown:
            await client.generate(model="nothing", prompt="x")
        assert (
            unknown.value.status_code == 404 and unknown.value.error == "model 'nothing' not found"
        )
        assert [m.model for m in (await client.list()).models] == ["mine:latest"]
        for change in (client.delete("mine"), client.copy("mine", "mine2")):
            with pytest.raises(ollama.ResponseError, match="an admin key may") as refused:
                await change
            assert refused.value.status_code == 403
        bare = await raw.post("/api/chat", json={"model": "mine", "messages": []})
        assert bare.status_code == 401 and isinstance(bare.json()["error"], str)

    _run(settings, keyed, secret)

    async def boss(app: FastAPI, client: ollama.AsyncClient, raw: httpx.AsyncClient) -> None:
        with pytest.raises(ollama.ResponseError) as quarantined:
            await client.chat(model="theirs", messages=[{"role": "user", "content": "x"}])
        assert quarantined.value.status_code == 403
        assert quarantined.value.error.startswith("theirs:latest is quarantined: held by hand")
        with pytest.raises(ollama.ResponseError) as streamed:
            [
                p
                async for p in await client.chat(
                    model="theirs", messages=[{"role": "user", "content": "x"}], stream=True
                )
            ]
        assert streamed.value.status_code == 403

    _run(settings, boss, admin)


def test_a_preset_made_through_the_api_reaches_the_engine(settings: Settings) -> None:
    async def scenario(app: FastAPI, client: ollama.AsyncClient, _: httpx.AsyncClient) -> None:
        made = await client.create(
            model="terse",
            from_="mine",
            system="Be terse.",
            parameters={"temperature": 0.125, "num_predict": 9},
        )
        assert made.status == "success"
        await client.chat(model="terse", messages=[{"role": "user", "content": "q"}],
                          options={"num_predict": 4})  # fmt: skip
        sent = await _last(app)
        assert sent["messages"][0] == {"role": "system", "content": "Be terse."}
        assert sent["temperature"] == 0.125 and sent["max_tokens"] == 4  # the request wins
        shown = await client.show("terse")
        assert "SYSTEM Be terse." in (shown.modelfile or "")
        assert shown.details and shown.details.parent_model == "mine:latest"
        assert shown.parameters and "temperature" in shown.parameters
        # a template-less preset is served by its base's engine: one engine for both
        await client.chat(model="mine", messages=[{"role": "user", "content": "q"}])
        assert len(app.state.depot.pool.engines()) == 1
        copied = await client.copy("terse", "terse:v2")
        assert copied.status == "success"
        assert (await client.delete("terse")).status == "success"
        assert "terse:v2" in [m.model for m in (await client.list()).models]

    _run(settings, scenario)


def test_keep_alive_and_num_ctx_reach_the_pool(settings: Settings) -> None:
    async def scenario(app: FastAPI, client: ollama.AsyncClient, _: httpx.AsyncClient) -> None:
        pool = app.state.depot.pool
        loaded = await client.generate(model="mine", prompt="")
        assert loaded.done_reason == "load" and len(pool.engines()) == 1
        shown = (await client.ps()).models
        assert [m.model for m in shown] == ["mine:latest"]
        assert shown[0].context_length == 256  # the model's own, below DEPOT_CONTEXT
        unloaded = await client.generate(model="mine", prompt="", keep_alive=0)
        assert unloaded.done_reason == "unload" and pool.engines() == []
        await client.chat(model="mine", messages=[{"role": "user", "content": "x"}],
                          keep_alive=0)  # fmt: skip
        assert pool.engines() == []  # unloaded once its request ended
        await client.chat(model="mine", messages=[{"role": "user", "content": "x"}],
                          keep_alive="1h", options={"num_ctx": 128})  # fmt: skip
        (engine,) = pool.engines()
        assert engine.spec.context == 128 and engine.keep_alive == 3600
        assert (await client.ps()).models[0].context_length == 128

    _run(settings, scenario)


async def _endless(limit: int) -> AsyncIterator[bytes]:
    for _ in range(limit):
        yield b"x" * 65536


def test_hostile_input_is_refused_and_nothing_is_written(settings: Settings) -> None:
    html = "<script>alert(1)</script>"

    async def scenario(app: FastAPI, client: ollama.AsyncClient, raw: httpx.AsyncClient) -> None:
        depot = app.state.depot.depot
        before = {d for d, _ in depot.store.digests()}
        for call in (
            client.show(html),
            client.chat(model=html, messages=[{"role": "user", "content": "x"}]),
        ):
            with pytest.raises(ollama.ResponseError) as refused:
                await call
            assert refused.value.status_code == 404
        for call in (client.create(model=html, from_="mine", system="x"),
                     client.copy("mine", html),
                     client.create(model="ok", files={"../../escape.gguf": "sha256:" + "0" * 64}),
                     client.create(model="ok", from_="mine", template=GO_TEMPLATE),
                     client.create(model="ok", from_="mine", parameters={"temperature": "hot"}),
                     client.chat(model="mine", messages=[{"role": "user", "content": "x",
                                                          "images": ["aGk="]}]),
                     client.chat(model="mine", messages=[{"role": "user", "content": "x"}],
                                 keep_alive="300")):  # fmt: skip
            with pytest.raises(ollama.ResponseError) as refused:
                await call
            assert refused.value.status_code == 400, refused.value
            assert "\n" not in refused.value.error
        deep = '{"model": "mine", "messages": ' + "[" * 200 + "]" * 200 + "}"
        reply = await raw.post("/api/chat", content=deep)
        assert reply.status_code == 400 and "deeper" in reply.json()["error"]
        huge = await raw.post("/api/chat", content=_endless(200))
        assert huge.status_code == 413 and "larger than" in huge.json()["error"]
        data = b"weights" * 100
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        wrong = await raw.post(f"/api/blobs/sha256:{'1' * 64}", content=data)
        assert wrong.status_code == 400 and "digest mismatch" in wrong.json()["error"]
        over = await raw.post(f"/api/blobs/{digest}", content=_endless(10))
        assert over.status_code == 413 and "DEPOT_MAX_UPLOAD" in over.json()["error"]
        bad = await raw.post("/api/blobs/sha256:../../x", content=data)
        assert bad.status_code in (400, 404)
        assert (await raw.head(f"/api/blobs/{digest}")).status_code == 404
        assert {d for d, _ in depot.store.digests()} == before
        assert list(settings.layout.tmp.iterdir()) == []
        assert [v.reference.name for v in depot.names.versions()] == ["mine", "theirs"]
        stored = await raw.post(f"/api/blobs/{digest}", content=data)
        assert stored.status_code == 201
        assert (await raw.head(f"/api/blobs/{digest}")).status_code == 200

    _run(settings, scenario)


def test_the_root_answers_clients_and_browsers_apart(settings: Settings) -> None:
    async def scenario(app: FastAPI, client: ollama.AsyncClient, raw: httpx.AsyncClient) -> None:
        plain = await raw.get("/")
        assert plain.status_code == 200 and plain.text == "Ollama is running"
        assert (await raw.head("/")).status_code == 200
        page = await raw.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 200 and "<html" in page.text.lower()
        version = (await raw.get("/api/version")).json()["version"]
        assert all(part.isdigit() for part in version.split("."))
        ps = (await raw.get("/api/ps")).json()
        assert ps == {"models": []}  # Ollama's, not the depot's own list
        unknown = await raw.get("/api/nothing")
        assert unknown.status_code == 404 and isinstance(unknown.json()["error"], str)
        assert (await raw.get("/depot/api/ps")).json() == []

    _run(settings, scenario)


def test_json_lines_are_what_clients_parse(settings: Settings) -> None:
    """Streams are NDJSON (each line one object, the last `done`), lists carry `name` and
    `model`, `/api/show` always has `model_info` (ollama-python requires it)."""

    async def scenario(app: FastAPI, client: ollama.AsyncClient, raw: httpx.AsyncClient) -> None:
        reply = await raw.post(
            "/api/chat", json={"model": "mine", "messages": [{"role": "user", "content": "x"}]}
        )  # stream by default
        assert reply.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in reply.text.splitlines()]
        assert lines[-1]["done"] is True and all("message" in line for line in lines)
        assert all(line["message"]["role"] == "assistant" for line in lines)
        assert lines[-1]["total_duration"] > 0 and lines[-1]["created_at"].endswith("Z")
        tags = (await raw.get("/api/tags")).json()["models"]
        assert all({"name", "model", "digest", "size", "details"} <= set(t) for t in tags)
        shown = (await raw.post("/api/show", json={"model": "mine"})).json()
        assert shown["model_info"]["general.architecture"] == "llama"
        assert shown["details"]["format"] == "gguf"

    _run(settings, scenario)
