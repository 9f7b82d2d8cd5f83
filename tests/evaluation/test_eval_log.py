"""An evaluation run says in the log what it scored, over how many items, and what failed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from builders import write_gguf
from modeldepot.depot import Depot
from modeldepot.evaluation.runs import RunOptions, evaluate
from modeldepot.evaluation.tasks import resolve


def test_a_run_logs_its_score_and_its_failed_items(
    depot: Depot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modeldepot")
    version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:  # the depot's API, as a fake
        asked.append(request.url.path)
        if len(asked) == 2:
            return httpx.Response(500, json={"error": {"message": "engine gone"}})
        return httpx.Response(200, json={"choices": [{"text": " 3"}]})

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.MockTransport(answer)
        async with httpx.AsyncClient(transport=transport, base_url="http://depot") as client:
            yield client

    (result,) = evaluate(depot, ["m"], resolve(["bbh_object_counting"], None),
                         RunOptions(limit=3, concurrency=1), connect=connect)  # fmt: skip
    assert len(result.items) == 2 and len(result.failed) == 1
    said = [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "modeldepot.evaluation"]  # fmt: skip
    assert said[0] == ("INFO", "evaluating m:latest on bbh_object_counting")
    assert said[1][1].startswith(
        f"evaluated m:latest ({version.digest}) on bbh_object_counting v1: exact_match "
    )
    assert " over 2 items (0 cached) in " in said[1][1]
    assert said[2][0] == "WARNING"
    assert said[2][1].startswith("1 items of bbh_object_counting on m:latest failed, the first: ")
    assert "engine gone" in said[2][1]
