"""OpenAI's Batch API on the depot: `depot batch run` in this process, and /v1/files with
/v1/batches on a running server driven by the official openai client; each bad input line is
named before any request is sent, and a key may batch only the models it may use."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from servers import DEPOT

pytestmark = pytest.mark.slow


def _lines(n: int, model: str = "smollm2") -> str:
    return "".join(json.dumps({
        "custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": model, "max_tokens": 3, "temperature": 0,
                 "messages": [{"role": "user", "content": f"Count to {i}."}]},
    }) + "\n" for i in range(n))  # fmt: skip


def test_batch_run_in_process(served_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(_lines(5) + _lines(1, "nosuch").replace('"q0"', '"missing"'))
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "DEPOT_HOME": str(served_home), "DEPOT_THREADS": "2"}
    env.pop("DEPOT_DATABASE_URL", None)
    done = subprocess.run([*DEPOT, "batch", "run", str(source), "-o", str(out), "--json"],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1  # one request failed: said, and named in the errors file
    summary = json.loads(done.stdout)
    assert (summary["completed"], summary["failed"]) == (5, 1)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"q{i}" for i in range(5)]
    assert all(r["response"]["status_code"] == 200 and r["error"] is None for r in rows)
    assert rows[0]["response"]["body"]["choices"][0]["message"]["content"]
    errors = [json.loads(x) for x in Path(summary["errors"]).read_text().splitlines()]
    assert errors[0]["custom_id"] == "missing" and errors[0]["response"]["status_code"] == 404
    # a malformed line is named, and nothing is sent
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_lines(2) + '{"custom_id": "x", "method": "GET"}\n')
    done = subprocess.run([*DEPOT, "batch", "run", str(bad), "-o", str(tmp_path / "b.jsonl")],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "line 3: method: POST" in done.stderr
    assert not (tmp_path / "b.jsonl").exists()


def test_batch_api_with_the_openai_client(server: str, tmp_path: Path) -> None:
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="local")
    source = tmp_path / "batch.jsonl"
    source.write_text(_lines(4))
    uploaded = client.files.create(file=source.open("rb"), purpose="batch")
    assert uploaded.bytes == source.stat().st_size
    created = client.batches.create(input_file_id=uploaded.id,
                                     endpoint="/v1/chat/completions",
                                     completion_window="24h")  # fmt: skip
    deadline = time.monotonic() + 240
    batch = created
    while batch.status not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = client.batches.retrieve(created.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == 4
    assert batch.output_file_id is not None
    content = client.files.content(batch.output_file_id).text
    rows = [json.loads(x) for x in content.splitlines()]
    assert sorted(r["custom_id"] for r in rows) == [f"q{i}" for i in range(4)]
    assert any(b.id == created.id for b in client.batches.list())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/nope", "body": {}}\n')
    with pytest.raises(BadRequestError, match="line 1: url"):
        client.files.create(file=bad.open("rb"), purpose="batch")
