"""Who gets in, checked on the server in this process (over ASGI) with the fake engine standing
in for llama-server: every route knows its caller before it reads a byte of the body; a depot
without keys answers only requests that name it (no DNS rebinding); metrics need a key; batch
uploads are bounded and their JSON checked; a key's scope holds through aliases; a batch's
lines stop when its key is revoked, each failure logged."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from builders import write_gguf
from fake_engine import llama_server_stand_in
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.server.batches import FORM_SLACK, MAX_BYTES
from modeldepot.server.ollama.errors import OllamaRoute
from servers import asgi_depot, start_server

MIB = 1024 * 1024
CHAT = [{"role": "user", "content": "hi"}]
PUBLIC = {"/health", "/signin"}
"""Routes anyone may call (the sign-in page must be reachable to sign in; `/` answers
`Ollama is running` to anyone but a browser, who gets the sign-in page like every page)."""


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """Two tiny models, an alias over both, keys with scopes; the fake engine serves them."""
    settings = Settings(home=tmp_path / "depot", user="admin", parallel=1, keep_alive=600,
                        llama_server=llama_server_stand_in(tmp_path))  # fmt: skip
    with Depot(settings) as depot:
        depot.intake.import_path(write_gguf(tmp_path / "a.gguf"), "mine")
        depot.intake.import_path(write_gguf(tmp_path / "b.gguf", seed=2), "theirs")
        depot.gateway.set_alias("otherchat", ["mine", "theirs"])
        secrets = {
            "all": depot.keys.create("all")[1],
            "other": depot.keys.create("other", models="other*")[1],
            "theirs": depot.keys.create("theirs-only", models="theirs*")[1],
            "admin": depot.keys.create("admin", admin=True)[1],
        }
    return settings, secrets


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _openai_error(reply: httpx.Response, status: int) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"} and error["message"]
    return error  # type: ignore[no-any-return]


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, those of included routers too (FastAPI keeps them by router)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_route_knows_its_caller_first(keyed: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = keyed

    async def scenario() -> None:
        async with asgi_depot(settings) as (app, client):
            checked = 0
            for route in _api_routes(app.routes):
                if route.path in PUBLIC:
                    continue
                path = re.sub(r"\{[^}]+\}", "x", route.path)
                ollama = isinstance(route, OllamaRoute) and route.path != "/"  # a browser: UI
                for method in sorted(route.methods - {"HEAD"}) or ["HEAD"]:
                    reply = await client.request(method, path, content=b"{}",
                                                 headers={"Accept": "text/html"})  # fmt: skip
                    checked += 1
                    if ollama:  # Ollama's API: its clients' error shape
                        assert reply.status_code == 401, (method, path)
                        if method != "HEAD":
                            assert "API key" in reply.json()["error"], (method, path)
                    elif path.startswith(("/v1/", "/depot/api/", "/api/", "/metrics",
                                          "/openapi")):  # fmt: skip
                        error = _openai_error(reply, 401)
                        assert error["code"] == "missing_api_key", (method, path)
                    elif path.startswith("/hf/"):  # the Hub's: a missing repo to its clients
                        assert reply.status_code == 401, (method, path)
                        assert reply.headers["x-error-code"] == "RepoNotFound", (method, path)
                    elif path.startswith("/ui/"):
                        assert reply.status_code == 401, (method, path)
                    elif path.startswith("/xet/xorbs/"):  # a URL's grant, like a signature
                        assert reply.status_code == 403, (method, path)
                    elif path.startswith("/xet/"):  # a Xet token is asked for
                        assert reply.status_code == 401, (method, path)
                    else:  # a page: to the sign-in page
                        assert reply.status_code == 303, (method, path, reply.status_code)
                        assert reply.headers["location"].startswith("/signin"), (method, path)
            assert checked > 30

    asyncio.run(scenario())


def test_metrics_need_a_key_once_keys_exist(keyed: tuple[Settings, dict[str, str]]) -> None:
    settings, secrets = keyed

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            _openai_error(await client.get("/metrics"), 401)
            _openai_error(await client.get("/metrics", headers=_auth("md-wrong")), 401)
            scoped = await client.get("/metrics", headers=_auth(secrets["other"]))  # any key
            assert scoped.status_code == 200 and "depot_loaded_models" in scoped.text

    asyncio.run(scenario())


async def _huge_multipart(sent: list[int], mib: int) -> AsyncIterator[bytes]:
    yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
           b"Content-Type: application/jsonl\r\n\r\n")  # fmt: skip
    for _ in range(mib):
        sent[0] += 1
        yield b"\0" * MIB
    yield b'\r\n--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--\r\n'


def test_an_upload_without_a_valid_key_is_refused_unread(
    keyed: tuple[Settings, dict[str, str]],
) -> None:
    settings, _ = keyed
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            for headers in ({}, _auth("md-wrong")):
                sent = [0]
                reply = await client.post("/v1/files", content=_huge_multipart(sent, 64),
                                          headers={**multipart, **headers})  # fmt: skip
                _openai_error(reply, 401)
                assert sent[0] <= 1, f"{sent[0]} MiB read before the key was checked"

    asyncio.run(scenario())


def test_an_upload_past_the_cap_is_refused_as_it_arrives(
    keyed: tuple[Settings, dict[str, str]],
) -> None:
    settings, secrets = keyed
    headers = {"Content-Type": "multipart/form-data; boundary=b", **_auth(secrets["all"])}
    cap = MAX_BYTES + FORM_SLACK

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            sent = [0]  # said up front: refused before a byte is read
            declared = {**headers, "Content-Length": str(2**30)}
            reply = await client.post("/v1/files", content=_huge_multipart(sent, 1024),
                                      headers=declared)  # fmt: skip
            assert _openai_error(reply, 413)["code"] == "request_too_large"
            assert sent[0] == 0
            sent = [0]  # not said: refused once past the cap
            reply = await client.post("/v1/files", content=_huge_multipart(sent, 1024),
                                      headers=headers)  # fmt: skip
            _openai_error(reply, 413)
            assert sent[0] <= cap // MIB + 1

    asyncio.run(scenario())


def _batch_file(*lines: object) -> dict[str, tuple[str, bytes]]:
    data = b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)
    return {"file": ("batch.jsonl", data)}


def _line(custom_id: str, model: str = "mine", **extra: object) -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": CHAT, **extra}}  # fmt: skip


DEEP = b"[" * 100_000 + b"]" * 100_000
HOSTILE_BATCHES: list[tuple[str, bytes]] = [
    ("deep nesting", b'{"endpoint": "/v1/chat/completions", "input_file_id": ' + DEEP + b"}"),
    ("not an object", b"[]"),
    ("not JSON", b"{endpoint"),
    ("NaN", b'{"endpoint": "/v1/chat/completions", "input_file_id": NaN}'),
    ("metadata not an object", b'{"endpoint": "/v1/chat/completions", "input_file_id": "f", '
                               b'"metadata": [1, 2]}'),
]  # fmt: skip
HOSTILE_FILES: list[tuple[str, bytes]] = [
    ("deep line", b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
                  b'"body": {"model": "mine", "messages": ' + DEEP + b"}}"),
    ("line not an object", b"[1, 2]"),
    ("NaN in a line", b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
                      b'"body": {"model": "mine", "temperature": NaN}}'),
    ("not UTF-8", b"\xff\xfe{}"),
]  # fmt: skip


def test_hostile_batch_json_is_400_in_openai_shape(
    keyed: tuple[Settings, dict[str, str]],
) -> None:
    settings, secrets = keyed
    headers = _auth(secrets["all"])

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            for name, body in HOSTILE_BATCHES:
                reply = await client.post("/v1/batches", content=body, headers=headers)
                assert reply.status_code == 400, (name, reply.text)
                _openai_error(reply, 400)
            for name, line in HOSTILE_FILES:
                reply = await client.post("/v1/files", files=_batch_file(line),
                                          data={"purpose": "batch"}, headers=headers)  # fmt: skip
                assert reply.status_code == 400, (name, reply.text)
                assert _openai_error(reply, 400)["param"] == "file"

    asyncio.run(scenario())


def test_a_depot_without_keys_answers_only_to_its_own_names(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    with Depot(Settings(home=home, user="t")) as depot:
        depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
        weights = next(f.digest for f in depot.names.show("m").files if f.kind == "weights")
    settings = Settings(home=home, user="t")

    async def scenario() -> None:
        async with asgi_depot(settings, bind=("127.0.0.1", 8000), trusted=False,
                              base_url="http://127.0.0.1:8000") as (_, client):  # fmt: skip
            for host in ("attacker.example:8000", "attacker.example", "localhost:9999",
                         "127.0.0.1.attacker.example:8000", "", "[::1]:8000@evil"):  # fmt: skip
                for method, path in (("GET", "/v1/models"), ("GET", f"/depot/api/blobs/{weights}"),
                                     ("GET", "/governance/quarantine"),
                                     ("POST", "/governance/quarantine/release"),
                                     ("GET", "/metrics")):  # fmt: skip
                    reply = await client.request(method, path, headers={"Host": host})
                    error = _openai_error(reply, 421)
                    assert error["code"] == "host_not_allowed", (host, path)
            for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST.:8000", "[::1]:8000"):
                assert (await client.get("/v1/models", headers={"Host": host})).status_code == 200
            # a page of another origin may not change anything, even by a loopback name
            for origin in ("http://attacker.example", "null", "http://localhost:9999"):
                reply = await client.post("/depot/api/stop", json={"model": "m"},
                                          headers={"Origin": origin})  # fmt: skip
                assert _openai_error(reply, 403)["code"] == "origin_not_allowed", origin
            same = await client.post("/depot/api/stop", json={"model": "m"},
                                     headers={"Origin": "http://127.0.0.1:8000"})  # fmt: skip
            assert same.status_code == 200
        extra = Settings(home=home, user="t", allowed_hosts="depot.example, other.example:81")
        async with asgi_depot(extra, bind=("127.0.0.1", 8000), trusted=False) as (_, client):
            for host, status in (("depot.example", 200), ("depot.example:8000", 200),
                                 ("other.example:81", 200), ("other.example:8000", 421),
                                 ("attacker.example:8000", 421)):  # fmt: skip
                reply = await client.get("/v1/models", headers={"Host": host})
                assert reply.status_code == status, host
        anyone = Settings(home=home, user="t", allowed_hosts="*")
        async with asgi_depot(anyone, bind=("127.0.0.1", 8000), trusted=False) as (_, client):
            reply = await client.get("/v1/models", headers={"Host": "attacker.example"})
            assert reply.status_code == 200
        async with asgi_depot(settings) as (_, client):  # in-process: nothing to rebind
            assert (await client.get("/v1/models")).status_code == 200

    asyncio.run(scenario())
    proc, url = start_server(home)  # and on a real socket
    try:
        port = url.rsplit(":", 1)[1]
        _openai_error(httpx.get(f"{url}/v1/models", headers={"Host": f"attacker.example:{port}"}),
                      421)  # fmt: skip
        assert httpx.get(f"{url}/v1/models", headers={"Host": f"localhost:{port}"}).is_success
    finally:
        proc.terminate()
        proc.wait(30)


def test_scope_holds_on_what_answers_through_an_alias(
    keyed: tuple[Settings, dict[str, str]],
) -> None:
    settings, secrets = keyed

    async def ask(client: httpx.AsyncClient, secret: str, model: str) -> httpx.Response:
        return await client.post("/v1/chat/completions", headers=_auth(secret),
                                 json={"model": model, "messages": CHAT})  # fmt: skip

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            # `other*` names the alias, but neither model it reaches
            refused = await ask(client, secrets["other"], "otherchat")
            assert _openai_error(refused, 403)["code"] == "model_not_allowed"
            listed = await client.get("/v1/models", headers=_auth(secrets["other"]))
            assert listed.json()["data"] == []
            # a key for one target is answered by that one, though it is not the first
            theirs = await ask(client, secrets["theirs"], "otherchat")
            assert theirs.status_code == 200
            assert theirs.headers["x-depot-upstream"] == "theirs:latest"
            first = await ask(client, secrets["all"], "otherchat")
            assert first.headers["x-depot-upstream"] == "mine:latest"
            # a batch is refused whole when a line reaches only models out of scope
            upload = await client.post("/v1/files", files=_batch_file(_line("a", "otherchat")),
                                       data={"purpose": "batch"},
                                       headers=_auth(secrets["other"]))  # fmt: skip
            batch = await client.post("/v1/batches", headers=_auth(secrets["other"]),
                                      json={"input_file_id": upload.json()["id"],
                                            "endpoint": "/v1/chat/completions"})  # fmt: skip
            assert _openai_error(batch, 403)["code"] == "model_not_allowed"
            # text completions and embeddings are routed the same way
            for path, field in (("/v1/completions", "prompt"), ("/v1/embeddings", "input")):
                reply = await client.post(path, headers=_auth(secrets["other"]),
                                          json={"model": "otherchat", field: "hi"})  # fmt: skip
                assert _openai_error(reply, 403)["code"] == "model_not_allowed", path
            # and so is the web UI's playground, as the signed-in key
            signin = await client.get("/signin")
            token = re.search(r'name="csrf" value="([^"]+)"', signin.text)
            assert token is not None
            await client.post("/signin", data={"key": secrets["other"], "csrf": token.group(1),
                                               "next": "/"})  # fmt: skip
            page = await client.get("/playground")
            csrf = re.search(r'data-csrf="([^"]+)"', page.text)
            assert csrf is not None
            chat = await client.post("/ui/chat", headers={"X-CSRF-Token": csrf.group(1)},
                                     json={"model": "otherchat", "messages": CHAT})  # fmt: skip
            assert _openai_error(chat, 403)["code"] == "model_not_allowed"

    asyncio.run(scenario())


def test_a_batch_stops_when_its_key_is_revoked_and_logs_each_failure(
    keyed: tuple[Settings, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    settings, secrets = keyed
    caplog.set_level(logging.WARNING, logger="modeldepot.server")
    lines = [_line(f"q{i}", fake_delay=1.5) for i in range(4)]

    async def scenario() -> None:
        async with asgi_depot(settings) as (_, client):
            upload = await client.post("/v1/files", files=_batch_file(*lines),
                                       data={"purpose": "batch"},
                                       headers=_auth(secrets["all"]))  # fmt: skip
            created = await client.post("/v1/batches", headers=_auth(secrets["all"]),
                                        json={"input_file_id": upload.json()["id"],
                                              "endpoint": "/v1/chat/completions"})  # fmt: skip
            where = f"/v1/batches/{created.json()['id']}"
            admin = _auth(secrets["admin"])
            while (await client.get(where, headers=admin)).json()["request_counts"][
                    "completed"] < 1:  # fmt: skip
                await asyncio.sleep(0.1)
            with Depot(settings) as depot:
                depot.keys.revoke("all")
            batch = (await client.get(where, headers=admin)).json()
            while batch["status"] == "in_progress":
                await asyncio.sleep(0.1)
                batch = (await client.get(where, headers=admin)).json()
            assert batch["status"] == "completed" and batch["request_counts"]["failed"] >= 2
            errors = await client.get(f"/v1/files/{batch['error_file_id']}/content",
                                      headers=admin)  # fmt: skip
            failed = {r["custom_id"]: r["error"] for r in map(json.loads, errors.text.splitlines())}
            for later in ("q2", "q3"):  # sent after the revocation: refused
                assert failed[later]["code"] == "invalid_api_key"

    asyncio.run(scenario())
    logged = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert any("'q3' failed" in m and "revoked" in m for m in logged), logged


def test_the_request_line_is_built_only_when_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With INFO off for the access log, a request costs no line: its scope is not even read."""
    from modeldepot.server.access import RequestLog

    class Scope(dict[str, Any]):
        def __init__(self, **items: Any) -> None:
            super().__init__(**items)
            self.read: list[str] = []

        def get(self, key: str, default: Any = None) -> Any:
            self.read.append(key)
            return super().get(key, default)

    scope = Scope(type="http", method="GET", path="/v1/models", client=("127.0.0.1", 1))
    caplog.set_level(logging.WARNING, logger="modeldepot.server.access")
    RequestLog._line(scope, 200, 0.01)
    assert scope.read == [] and caplog.records == []
    caplog.set_level(logging.INFO, logger="modeldepot.server.access")
    RequestLog._line(scope, 200, 0.01)
    assert scope.read and '"GET /v1/models" 200' in caplog.text
