"""API keys, scopes, quotas, usage records and metrics against a real `depot serve`."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import sqlalchemy as sa

from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from server.conftest import DEPOT, start_server

pytestmark = pytest.mark.slow
CHAT = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    home = tmp_path_factory.mktemp("keyed") / "depot"
    secrets = {}
    with Depot(Settings(home=home, user="admin")) as depot:
        depot.intake.pull("smollm2")
        for name, options in {
            "team": {"models": "smollm2*"},
            "limited": {"models": "smollm2", "rpm": 2},
            "small": {"tpd": 60},
            "other": {"models": "gemma*"},
            "doomed": {},
        }.items():
            _, secrets[name] = depot.keys.create(name, **options)  # type: ignore[arg-type]
    proc, url = start_server(home, DEPOT_API_KEYS="env-secret-1=smollm2*", DEPOT_CONTEXT="1024")
    yield url, home, secrets
    proc.terminate()
    proc.wait(30)


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def _chat(url: str, key: str) -> openai.types.chat.ChatCompletion:
    return _client(url, key).chat.completions.create(model="smollm2", messages=CHAT, max_tokens=2)


def test_missing_or_wrong_key_is_401(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, _, _ = keyed
    response = httpx.post(f"{url}/v1/chat/completions", json={"model": "smollm2", "messages": CHAT})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as caught:
        _chat(url, "md-not-a-key")
    assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]


def test_store_and_environment_keys_work(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, _, secrets = keyed
    assert _chat(url, secrets["team"]).choices[0].message.content is not None
    assert _chat(url, "env-secret-1").choices
    assert {m.id for m in _client(url, secrets["team"]).models.list()} >= {"smollm2:latest"}


def test_scope_limits_models(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, _, secrets = keyed
    with pytest.raises(openai.PermissionDeniedError):
        _chat(url, secrets["other"])
    assert list(_client(url, secrets["other"]).models.list()) == []


def test_requests_per_minute(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, _, secrets = keyed
    _chat(url, secrets["limited"])
    _chat(url, secrets["limited"])
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(url, secrets["limited"])
    assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]


def test_tokens_per_day(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, _, secrets = keyed
    # its prompt may take 42 tokens: the first request fits, and leaves less than that
    _chat(url, secrets["small"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            _chat(url, secrets["small"])
        except openai.RateLimitError as exc:
            assert exc.body["code"] == "insufficient_quota"  # type: ignore[index]
            return
        time.sleep(0.1)
    pytest.fail("the tokens-per-day quota was never enforced")


def test_revoked_key_is_refused(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, home, secrets = keyed
    assert _chat(url, secrets["doomed"]).choices
    subprocess.run([*DEPOT, "key", "revoke", "doomed"], check=True,
                   env={"DEPOT_HOME": str(home), "PATH": "/usr/bin:/bin"})  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _chat(url, secrets["doomed"])
        except openai.AuthenticationError:
            return
        time.sleep(0.2)
    pytest.fail("a revoked key was still accepted")


def test_usage_records_and_metrics(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, home, secrets = keyed
    reply = _chat(url, secrets["team"])
    stream = _client(url, secrets["team"]).chat.completions.create(
        model="smollm2", messages=CHAT, max_tokens=3, stream=True
    )
    assert list(stream)
    time.sleep(0.5)  # usage is recorded after the response is sent
    with Depot(Settings(home=home)) as depot:
        usage = depot.usage.records()
        assert not depot.audit.events(action="request")  # usage is not an audit event
    mine = [r for r in usage if r.key == "team"]
    assert len(mine) >= 2
    assert any(r.completion_tokens == reply.usage.completion_tokens for r in mine)  # type: ignore[union-attr]
    assert all(r.prompt_tokens > 0 and r.latency_ms > 0 for r in mine)
    assert any(r.ttft_ms is not None for r in mine)  # the streamed one
    assert httpx.get(f"{url}/metrics").status_code == 401  # metrics need a key
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {secrets['other']}"}).text
    assert (
        'depot_requests_total{endpoint="/v1/chat/completions",model="smollm2:latest",status="200"}'
        in text
    )
    assert 'depot_tokens_total{kind="completion",model="smollm2:latest"}' in text
    assert "depot_loaded_models 1.0" in text
    assert "depot_time_to_first_token_seconds_count" in text


def test_daily_quota_survives_a_restart(keyed: tuple[str, Path, dict[str, str]]) -> None:
    url, home, secrets = keyed
    with contextlib.suppress(openai.RateLimitError):  # spent already if test_tokens_per_day ran
        _chat(url, secrets["small"])  # leaves less of the key's 60 tokens than a prompt takes
    time.sleep(0.5)  # usage is recorded after the response is sent
    proc, second = start_server(home, DEPOT_CONTEXT="1024")
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            _chat(second, secrets["small"])
        assert caught.value.body["code"] == "insufficient_quota"  # type: ignore[index]
        assert _chat(second, secrets["team"]).choices  # other keys are unaffected
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_names_of_callers_without_a_stored_key_are_reserved(tmp_path: Path) -> None:
    """A stored key called `local-run` or `env-1` would be taken for the local `depot run` or
    a `DEPOT_API_KEYS` entry wherever a key is found again by name (sessions, batches, Xet
    grants), and outlive its own revocation there."""
    with Depot(Settings(home=tmp_path / "depot", user="admin")) as depot:
        for name in ("local", "local-run", "env-1", "ENV-12"):
            with pytest.raises(UsageError, match="without a stored key"):
                depot.keys.create(name)
        assert depot.keys.create("env-team")[0].name == "env-team"
        assert depot.keys.active("env-team") is not None
        # one stored before such names were refused is never honoured
        _, secret = depot.keys.create("old")
        with depot.registry.engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_keys SET name = 'local-run' WHERE name = 'old'"))
        assert depot.keys.lookup(secret) is None and depot.keys.active("local-run") is None
