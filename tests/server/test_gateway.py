"""The gateway against real servers on loopback: a second `depot serve` that requires a key
stands for the proprietary API; a closed port stands for one that is down."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.registry.gateway import Remote
from server.conftest import free_port, start_server

pytestmark = pytest.mark.slow
CHAT = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    upstream_home = tmp_path_factory.mktemp("upstream") / "depot"
    with Depot(Settings(home=upstream_home)) as depot:
        depot.intake.pull("smollm2")
    upstream, upstream_url = start_server(upstream_home, DEPOT_API_KEYS="upstream-secret",
                                          DEPOT_CONTEXT="1024")  # fmt: skip
    home = tmp_path_factory.mktemp("front") / "depot"
    with Depot(Settings(home=home, user="admin")) as depot:
        depot.intake.pull("smollm2")
        depot.gateway.add_remote(Remote("cloud", f"{upstream_url}/v1", "smollm2", "CLOUD_KEY"))
        depot.gateway.add_remote(Remote("wrongkey", f"{upstream_url}/v1", "smollm2", "WRONG_KEY"))
        depot.gateway.add_remote(Remote("dead", f"http://127.0.0.1:{free_port()}/v1", "x"))
        depot.gateway.set_alias("chat", ["cloud", "smollm2"])
        depot.gateway.set_alias("fragile", ["dead", "wrongkey", "smollm2"])
        keys = {name: depot.keys.create(name, private=name == "internal")[1]
                for name in ("admin", "internal")}  # fmt: skip
    proc, url = start_server(home, CLOUD_KEY="upstream-secret", WRONG_KEY="nope",
                             DEPOT_CONTEXT="1024")  # fmt: skip
    yield url, keys
    proc.terminate()
    upstream.terminate()
    proc.wait(30)
    upstream.wait(30)


def _post(url: str, key: str, model: str, **extra: object) -> httpx.Response:
    body = {"model": model, "messages": CHAT, "max_tokens": 4, **extra}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)


def test_remotes_and_aliases_are_listed(front: tuple[str, dict[str, str]]) -> None:
    url, keys = front
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys["admin"])
    ids = {m.id for m in client.models.list()}
    assert {"cloud", "chat", "fragile", "dead", "smollm2:latest"} <= ids


def test_remote_model_is_called_like_a_local_one(front: tuple[str, dict[str, str]]) -> None:
    url, keys = front
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys["admin"], max_retries=0)
    reply = client.chat.completions.with_raw_response.create(
        model="cloud",
        messages=CHAT,
        max_tokens=4,  # type: ignore[arg-type]
    )
    assert reply.headers["x-depot-upstream"] == "cloud"
    assert reply.parse().choices[0].message.content
    streamed = client.chat.completions.create(
        model="cloud",
        messages=CHAT,
        max_tokens=4,
        stream=True,  # type: ignore[arg-type]
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)


def test_private_requests_never_leave(front: tuple[str, dict[str, str]]) -> None:
    url, keys = front
    admin = keys["admin"]
    refused = _post(url, admin, "cloud", metadata={"private": True})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "private_request"
    kept = _post(url, admin, "chat", metadata={"private": True})
    assert kept.status_code == 200
    assert kept.headers["x-depot-upstream"] == "smollm2:latest"
    assert _post(url, admin, "chat").headers["x-depot-upstream"] == "cloud"


def test_fallback_skips_failing_targets(front: tuple[str, dict[str, str]]) -> None:
    url, keys = front
    admin = keys["admin"]
    reply = _post(url, admin, "fragile")
    assert reply.status_code == 200
    assert reply.headers["x-depot-upstream"] == "smollm2:latest"
    down = _post(url, admin, "dead")
    assert down.status_code == 503
    rejected = _post(url, admin, "wrongkey")
    assert rejected.status_code == 502 and "WRONG_KEY" in rejected.json()["error"]["message"]


def test_private_key_is_kept_local(front: tuple[str, dict[str, str]]) -> None:
    url, keys = front
    reply = _post(url, keys["internal"], "chat")
    assert reply.status_code == 200 and reply.headers["x-depot-upstream"] == "smollm2:latest"
    assert _post(url, keys["internal"], "cloud").status_code == 403
