"""Loading within the memory budget: least recently used engines are unloaded to make room,
idle ones after the keep-alive time; all with real engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.conftest import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tight(served_home: Path) -> Iterator[str]:
    # Room for one SmolLM2 engine at a time (generation ~0.26 GB, scoring ~0.37 GB estimated).
    proc, url = start_server(served_home, DEPOT_MAX_MEMORY="420M", DEPOT_KEEP_ALIVE="2",
                             DEPOT_CONTEXT="1024")  # fmt: skip
    yield url
    proc.terminate()
    proc.wait(30)


def _loaded(url: str) -> list[str]:
    return [m["kind"] for m in httpx.get(f"{url}/health").json()["loaded"]]


def test_lru_engine_is_unloaded_to_fit_the_budget(tight: str) -> None:
    chat = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    score = {"model": "smollm2", "prompt": "Hi there", "echo": True, "logprobs": 1,
             "max_tokens": 0}  # fmt: skip
    assert httpx.post(f"{tight}/v1/chat/completions", json=chat, timeout=60).status_code == 200
    assert _loaded(tight) == ["generate"]
    assert httpx.post(f"{tight}/v1/completions", json=score, timeout=60).status_code == 200
    assert _loaded(tight) == ["score"]
    assert httpx.post(f"{tight}/v1/chat/completions", json=chat, timeout=60).status_code == 200
    assert _loaded(tight) == ["generate"]


def test_idle_engines_are_unloaded_after_keep_alive(tight: str) -> None:
    chat = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    assert httpx.post(f"{tight}/v1/chat/completions", json=chat, timeout=60).status_code == 200
    assert _loaded(tight)
    deadline = time.monotonic() + 20
    while _loaded(tight) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _loaded(tight) == []


def test_model_larger_than_the_budget_is_503(served_home: Path) -> None:
    proc, url = start_server(served_home, DEPOT_MAX_MEMORY="50M")
    try:
        chat = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}]}
        reply = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=60)
        assert reply.status_code == 503
        assert "DEPOT_MAX_MEMORY" in reply.json()["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_full_queue_is_429(served_home: Path) -> None:
    proc, url = start_server(served_home, DEPOT_PARALLEL="1", DEPOT_MAX_QUEUE="1",
                             DEPOT_CONTEXT="1024")  # fmt: skip
    try:
        long = {"model": "smollm2", "messages": [{"role": "user", "content": "Tell a story."}],
                "max_tokens": 400, "ignore_eos": True, "stream": True}  # fmt: skip
        short = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}],
                 "max_tokens": 2}  # fmt: skip
        assert httpx.post(f"{url}/v1/chat/completions", json=short, timeout=60).status_code == 200
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=long, timeout=60) as busy:
            lines = busy.iter_lines()  # kept: a dropped iterator closes the connection
            next(lines)  # the first request is decoding
            refused = httpx.post(f"{url}/v1/chat/completions", json=short, timeout=60)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "queue_full"
        assert httpx.post(f"{url}/v1/chat/completions", json=short, timeout=60).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
