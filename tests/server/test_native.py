"""The depot's own API checks what it serves and what it is handed: `/depot/api/blobs` never serves
bytes that changed since they were admitted, and `/v1/files` refuses a file name that is not a
safe relative path. The app runs in-process over ASGI, on a tiny GGUF."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import httpx
import pytest

from builders import write_gguf
from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import asgi_depot


async def _get(settings: Settings, *paths: str) -> list[httpx.Response]:
    async with asgi_depot(settings) as (_, client):
        return [await client.get(path) for path in paths]


def test_a_blob_whose_stored_bytes_changed_is_refused_not_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path / "depot", user="t")
    with Depot(settings) as depot:
        version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
        weights = next(f.digest for f in version.files if f.kind == "weights")
        stored = depot.store.local_path(weights)
    (good,) = asyncio.run(_get(settings, f"/depot/api/blobs/{weights}"))
    assert good.status_code == 200
    assert "sha256:" + hashlib.sha256(good.content).hexdigest() == weights
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        (refused,) = asyncio.run(_get(settings, f"/depot/api/blobs/{weights}"))
    assert refused.status_code == 500
    error = refused.json()["error"]
    assert error["code"] == "stored_bytes_changed" and weights in error["message"]
    assert bytes(data) not in refused.content
    # Where the store lies is the server's log's to say, never the client's.
    assert str(tmp_path) not in refused.text
    assert str(settings.home) in caplog.text


async def _upload(settings: Settings, filename: str, content: bytes) -> httpx.Response:
    async with asgi_depot(settings) as (_, client):
        return await client.post("/v1/files", data={"purpose": "batch"},
                                 files={"file": (filename, content)})  # fmt: skip


def test_a_batch_file_name_that_could_leave_its_folder_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "depot", user="t")
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
    content = (json.dumps(line) + "\n").encode()
    for bad in ("../../etc/cron.d/x", "/etc/passwd", "a//batch.jsonl"):
        refused = asyncio.run(_upload(settings, bad, content))
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
        assert message.startswith(f"file name {bad!r} is refused"), message
    accepted = asyncio.run(_upload(settings, "batch.jsonl", content))
    assert accepted.status_code == 200 and accepted.json()["filename"] == "batch.jsonl"


def test_the_paths_older_depots_pull_from_still_answer_read_only(tmp_path: Path) -> None:
    """A depot from before `/depot/api` pulls from `/api/models|manifests|blobs`: they answer
    as the new paths do, to GET only."""
    settings = Settings(home=tmp_path / "depot", user="t")
    with Depot(settings) as depot:
        version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
        weights = next(f.digest for f in version.files if f.kind == "weights")
    paths = ["/models/m", "/manifests/m", f"/blobs/{weights}"]

    async def scenario() -> list[tuple[httpx.Response, httpx.Response]]:
        async with asgi_depot(settings) as (_, client):
            return [(await client.get(f"/depot/api{p}"), await client.get(f"/api{p}"))
                    for p in paths]  # fmt: skip

    answers = asyncio.run(scenario())
    for new, old in answers:
        assert new.status_code == old.status_code == 200
        assert new.content == old.content
    assert answers[0][1].json()["digest"] == version.digest
    assert answers[1][1].headers["x-depot-digest"] == version.digest
