"""The API against malformed, oversized and hostile requests, and the access rules, on a real
`depot serve` whose llama-server is the fake engine (tests/fake_engine.py takes its command
line), so no model is loaded: every malformed request is a 400 in OpenAI's shape, never a 500;
bodies and `n` are bounded; keys never reopen the server; blobs are reached only through a model
the key may use; token quotas are reserved before generating; a client that leaves stops the
engine's work, all `n` of them; a stream cut short is charged its prompt; every request is a
line in the server's log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from builders import write_gguf
from fake_engine import llama_server_stand_in
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.server.requests import prompt_bound
from server.conftest import start_server

CHAT = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A depot with two tiny models, keys with scopes and quotas, served with the fake engine."""
    tmp = tmp_path_factory.mktemp("hardening")
    home = tmp / "depot"
    with Depot(Settings(home=home, user="admin")) as depot:
        depot.intake.import_path(write_gguf(tmp / "a.gguf"), "mine")
        depot.intake.import_path(write_gguf(tmp / "b.gguf", seed=2), "theirs")
        secrets = {
            "all": depot.keys.create("all")[1],
            "mine": depot.keys.create("mine-only", models="mine*")[1],
            "quota": depot.keys.create("quota", tpd=50)[1],
            "slow": depot.keys.create("slow", rpm=1)[1],
            "gone": depot.keys.create("gone")[1],
            "prompted": depot.keys.create("prompted", tpd=100)[1],
            "choices": depot.keys.create("choices", tpd=100)[1],
            "dropped": depot.keys.create("dropped", tpd=100_000)[1],
        }
        depot.keys.revoke("gone")
    proc, url = start_server(home, DEPOT_LLAMA_SERVER=str(llama_server_stand_in(tmp)),
                             DEPOT_KEEP_ALIVE="600")  # fmt: skip
    yield url, home, secrets
    proc.terminate()
    proc.wait(30)


def _post(url: str, secret: str, body: object, path: str = "/v1/chat/completions",
          **kwargs: object) -> httpx.Response:  # fmt: skip
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}{path}", content=content, timeout=60,
                      headers={"Authorization": f"Bearer {secret}",
                               "Content-Type": "application/json"}, **kwargs)  # type: ignore[arg-type]  # fmt: skip


def _is_openai_error(reply: httpx.Response, status: int) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"} and error["message"]
    return error  # type: ignore[no-any-return]


MALFORMED: list[tuple[str, bytes | dict[str, object]]] = [
    ("deep nesting", b'{"model": "mine", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("n not a number", {"model": "mine", "messages": CHAT, "n": "abc"}),
    ("NaN literal", b'{"model": "mine", "messages": [{"role": "user", "content": "x"}], '
                    b'"temperature": NaN}'),
    ("tools not a list", {"model": "mine", "messages": CHAT, "tools": {"type": "function"}}),
    ("tool without function", {"model": "mine", "messages": CHAT, "tools": [{"type": "function"}]}),
    ("tool name not a string", {"model": "mine", "messages": CHAT,
                                "tools": [{"type": "function", "function": {"name": 3}}]}),
    ("tool_choice malformed", {"model": "mine", "messages": CHAT, "tool_choice": {"x": 1},
                               "tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("tool_calls not a list", {"model": "mine", "messages": [
        {"role": "assistant", "content": None, "tool_calls": "call"}, *CHAT]}),
    ("tool_calls arguments not JSON", {"model": "mine", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{"}}]},
        *CHAT]}),
    ("image part to a text model", {"model": "mine", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}),
    ("negative max_tokens", {"model": "mine", "messages": CHAT, "max_tokens": -5}),
    ("negative temperature", {"model": "mine", "messages": CHAT, "temperature": -1}),
    ("top_p above 1", {"model": "mine", "messages": CHAT, "top_p": 1.5}),
    ("top_logprobs above 20", {"model": "mine", "messages": CHAT, "logprobs": True,
                               "top_logprobs": 21}),
    ("unknown role", {"model": "mine", "messages": [{"role": "wizard", "content": "x"}]}),
    ("n above the bound", {"model": "mine", "messages": CHAT, "n": 1000}),
]  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_requests_are_400_in_openai_shape(
    served: tuple[str, Path, dict[str, str]], case: tuple[str, bytes | dict[str, object]]
) -> None:
    url, _, secrets = served
    _is_openai_error(_post(url, secrets["all"], case[1]), 400)


def test_prompt_that_cannot_fit_the_context_is_400(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served  # the tiny model's context is 256 tokens
    long = {"model": "mine", "messages": [{"role": "user", "content": "word " * 4000}]}
    error = _is_openai_error(_post(url, secrets["all"], long), 400)
    assert "cannot fit" in str(error["message"])


def test_oversized_body_is_413(served: tuple[str, Path, dict[str, str]]) -> None:
    url, _, secrets = served
    big = {"model": "mine", "messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]}
    _is_openai_error(_post(url, secrets["all"], big), 413)


def test_unknown_routes_and_methods_answer_in_openai_shape(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    headers = {"Authorization": f"Bearer {secrets['all']}"}
    _is_openai_error(httpx.get(f"{url}/v1/nothing", headers=headers), 404)
    _is_openai_error(httpx.get(f"{url}/v1/chat/completions", headers=headers), 405)
    assert httpx.get(f"{url}/docs").status_code == 404
    _is_openai_error(httpx.get(f"{url}/openapi.json"), 401)
    assert httpx.get(f"{url}/openapi.json", headers=headers).json()["info"]["title"]


def test_models_retrieve(served: tuple[str, Path, dict[str, str]]) -> None:
    import openai

    url, _, secrets = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=secrets["all"])
    assert client.models.retrieve("mine").id == "mine:latest"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nothing")
    scoped = openai.OpenAI(base_url=f"{url}/v1", api_key=secrets["mine"])
    with pytest.raises(openai.NotFoundError):
        scoped.models.retrieve("theirs")


def test_health_tells_strangers_only_that_it_is_up(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    assert _post(url, secrets["all"], {"model": "mine", "messages": CHAT}).status_code == 200
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    inside = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {secrets['all']}"})
    assert inside.json()["loaded"]


def test_revoking_the_last_key_never_opens_the_server(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    with Depot(Settings(home=home, user="admin")) as depot:
        depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
        _, secret = depot.keys.create("only")
        depot.keys.revoke("only")
    proc, url = start_server(home)
    try:
        _is_openai_error(httpx.get(f"{url}/v1/models"), 401)
        _is_openai_error(httpx.get(f"{url}/v1/models",
                                   headers={"Authorization": f"Bearer {secret}"}), 401)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(30)


def test_blobs_only_through_a_model_the_key_may_use(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, home, secrets = served
    with Depot(Settings(home=home)) as depot:
        theirs = depot.names.show("theirs")
        mine = depot.names.show("mine")
    weights = next(f.digest for f in theirs.files if f.kind == "weights")
    own = next(f.digest for f in mine.files if f.kind == "weights")

    def get(secret: str, digest: str) -> httpx.Response:
        return httpx.get(
            f"{url}/depot/api/blobs/{digest}", headers={"Authorization": f"Bearer {secret}"}
        )

    _is_openai_error(get(secrets["mine"], weights), 404)
    assert get(secrets["mine"], own).status_code == 200
    assert get(secrets["all"], weights).status_code == 200
    _is_openai_error(get(secrets["gone"], own), 401)


def test_every_429_says_when_to_retry(served: tuple[str, Path, dict[str, str]]) -> None:
    url, _, secrets = served
    body = {"model": "mine", "messages": CHAT}
    assert _post(url, secrets["slow"], body).status_code == 200
    refused = _post(url, secrets["slow"], body)
    _is_openai_error(refused, 429)
    assert int(refused.headers["Retry-After"]) >= 1


def test_token_quota_is_reserved_before_generating(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    bound = prompt_bound({"messages": CHAT})  # what its prompt may take, reserved with it
    # The engine is asked for no more than the 50 tokens the key has left, less the prompt's,
    # not the 200 asked.
    first = _post(url, secrets["quota"], {"model": "mine", "messages": CHAT, "max_tokens": 200,
                                          "fake_delay": 1.5})  # fmt: skip
    assert first.json()["choices"][0]["message"]["content"].endswith(f"max_tokens={50 - bound}")
    time.sleep(0.5)  # the first request is settled after its response is sent
    # 5 tokens used of 50: while one request holds the other 45, a second is refused.
    import threading

    held: list[httpx.Response] = []
    holder = threading.Thread(
        target=lambda: held.append(
            _post(url, secrets["quota"], {"model": "mine", "messages": CHAT, "fake_delay": 8})
        )
    )
    holder.start()
    time.sleep(2)
    refused = _post(url, secrets["quota"], {"model": "mine", "messages": CHAT})
    holder.join()
    _is_openai_error(refused, 429)
    assert "Retry-After" in refused.headers
    assert held[0].json()["choices"][0]["message"]["content"].endswith(f"max_tokens={45 - bound}")


def test_the_prompt_counts_against_the_token_quota(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    # 300 bytes of prompt may be 300 tokens: more than the key's 100 a day, refused unread
    long = {"model": "mine", "messages": [{"role": "user", "content": "é" * 150}]}
    error = _is_openai_error(_post(url, secrets["prompted"], long), 429)
    assert error["code"] == "insufficient_quota" and "up to" in str(error["message"])
    assert _post(url, secrets["prompted"], {"model": "mine", "messages": CHAT}).status_code == 200


def test_every_choice_counts_against_the_token_quota(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    body = {"model": "mine", "messages": CHAT, "n": 4}
    reply = _post(url, secrets["choices"], body)
    each = (100 - prompt_bound(body)) // 4  # four answers share what the prompt leaves
    texts = [c["message"]["content"] for c in reply.json()["choices"]]
    assert len(texts) == 4 and all(t.endswith(f"max_tokens={each}") for t in texts)


def _engine_stats(url: str, secret: str) -> dict[str, int]:
    loaded = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {secret}"})
    pid = loaded.json()["loaded"][0]["pid"]
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    port = args[args.index(b"--port") + 1].decode()
    return httpx.get(f"http://127.0.0.1:{port}/stats").json()  # type: ignore[no-any-return]


def test_a_client_that_leaves_stops_the_engines_work(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    assert _post(url, secrets["all"], {"model": "mine", "messages": CHAT}).status_code == 200
    before = _engine_stats(url, secrets["all"])["cancelled"]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/chat/completions", timeout=1,
                   json={"model": "mine", "messages": CHAT, "fake_delay": 60},
                   headers={"Authorization": f"Bearer {secrets['all']}"})  # fmt: skip
    deadline = time.monotonic() + 20
    while _engine_stats(url, secrets["all"])["cancelled"] == before:
        assert time.monotonic() < deadline, "the engine kept working for a client that left"
        time.sleep(0.2)


def test_a_client_that_leaves_stops_every_choice(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, secrets = served
    assert _post(url, secrets["all"], {"model": "mine", "messages": CHAT}).status_code == 200
    before = _engine_stats(url, secrets["all"])["cancelled"]
    with pytest.raises(httpx.ReadTimeout):  # n=4: four requests to the engine
        httpx.post(f"{url}/v1/chat/completions", timeout=1,
                   json={"model": "mine", "messages": CHAT, "fake_delay": 60, "n": 4},
                   headers={"Authorization": f"Bearer {secrets['all']}"})  # fmt: skip
    deadline = time.monotonic() + 20
    while _engine_stats(url, secrets["all"])["cancelled"] < before + 4:
        assert time.monotonic() < deadline, "the engine kept working for a client that left"
        time.sleep(0.2)


def test_a_stream_cut_short_is_charged_its_prompt(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, home, secrets = served
    body = {"model": "mine", "messages": CHAT, "stream": True, "fake_events": 200,
            "fake_delay": 0.2}  # fmt: skip
    headers = {"Authorization": f"Bearer {secrets['dropped']}"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers,
                      timeout=30) as reply:  # fmt: skip
        events = 0
        for line in reply.iter_lines():
            events += line.startswith("data: {")
            if events == 2:
                break  # the client leaves after two tokens
    deadline = time.monotonic() + 20
    while True:
        with Depot(Settings(home=home)) as depot:
            rows = [r for r in depot.usage.records() if r.key == "dropped"]
        if rows:
            break
        assert time.monotonic() < deadline, "the stream cut short was never accounted"
        time.sleep(0.2)
    assert rows[0].prompt_tokens == prompt_bound(body)  # the engine read it, and never said
    assert rows[0].completion_tokens >= 2


def test_every_request_is_a_line_in_the_servers_log(
    served: tuple[str, Path, dict[str, str]],
) -> None:
    url, home, secrets = served
    assert _post(url, secrets["all"], {"model": "mine", "messages": CHAT}).status_code == 200
    refused = _post(url, "md-wrong", {"model": "mine", "messages": CHAT})
    assert refused.status_code == 401
    hostile = "mine\n2026-01-01 INFO forged line"
    assert _post(url, secrets["all"], {"model": hostile, "messages": CHAT}).status_code == 404
    # a line is written once its response has been sent, so the client can be ahead of the
    # log; and earlier tests on this server wrote lines of their own: wait for all three
    wanted = {
        "answered": lambda x: " 200 " in x and "key=all model=mine:latest" in x,
        "refused": lambda x: " 401 " in x and "key=" not in x,
        "unknown": lambda x: " 404 " in x and "model=mine\\n2026" in x,
    }
    deadline = time.monotonic() + 10
    while True:
        lines = (home / "serve.log").read_text().splitlines()
        asked = [x for x in lines if '"POST /v1/chat/completions"' in x]
        missing = [name for name, seen in wanted.items() if not any(map(seen, asked))]
        if not missing:
            break
        assert time.monotonic() < deadline, f"missing from the server's log: {missing}"
        time.sleep(0.2)
    assert not any(x.startswith("2026-01-01 INFO forged") for x in lines)
