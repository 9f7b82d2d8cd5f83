"""The command line decides where log lines go: standard error, WARNING unless `-v`, `-vv` or
DEPOT_LOG_LEVEL say otherwise, INFO on `depot serve`'s console."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from builders import write_gguf
from fake_engine import llama_server_stand_in
from modeldepot.cli import app
from modeldepot.config import Settings
from modeldepot.depot import Depot
from servers import start_server

Run = Callable[..., Result]


@pytest.fixture
def depot_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("DEPOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEPOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("DEPOT_LOG_LEVEL", raising=False)
    logger = logging.getLogger("modeldepot")
    level, handlers = logger.level, list(logger.handlers)
    yield lambda *args: CliRunner().invoke(app, list(args), catch_exceptions=False)
    logger.setLevel(level)  # as it was, for the tests that follow
    logger.handlers[:] = handlers


def test_verbose_logs_what_a_command_does_on_stderr(depot_cli: Run, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    quiet = depot_cli("import", str(path), "-n", "quiet")
    assert quiet.exit_code == 0 and "modeldepot.receive" not in quiet.stderr
    told = depot_cli("-v", "import", str(path), "-n", "told")
    assert told.exit_code == 0
    assert " INFO modeldepot.receive: stored told:latest sha256:" in told.stderr
    assert " INFO modeldepot.verify: scanned told:latest sha256:" in told.stderr
    assert "modeldepot" not in told.stdout  # log lines never mix with what a command prints
    assert " DEBUG modeldepot.plugins: " in depot_cli("-vv", "import", str(path), "-n", "d").stderr


def test_a_log_line_is_one_line_whatever_it_names(depot_cli: Run, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf\n2026-01-01 00:00:00 INFO forged.gguf")
    told = depot_cli("-v", "import", str(path), "-n", "m")
    assert told.exit_code == 1 and "holds a control character" in told.stderr  # and refused
    (line,) = [x for x in told.stderr.splitlines() if "importing" in x]
    assert line.endswith("m.gguf\\x0a2026-01-01 00:00:00 INFO forged.gguf as m:latest")
    assert not any(x.startswith("2026-01-01") for x in told.stderr.splitlines())


def test_depot_log_level_is_read_once_and_checked(
    depot_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    monkeypatch.setenv("DEPOT_LOG_LEVEL", "info")
    assert "INFO modeldepot.receive: stored" in depot_cli("import", str(path), "-n", "a").stderr
    monkeypatch.setenv("DEPOT_LOG_LEVEL", "loud")
    refused = depot_cli("list")
    assert refused.exit_code == 2
    assert "DEPOT_LOG_LEVEL='loud': one of DEBUG, INFO, WARNING, ERROR" in refused.stderr


def test_serve_console_shows_requests_and_engines(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    with Depot(Settings(home=home, user="t")) as depot:
        version = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
    stand_in = str(llama_server_stand_in(tmp_path))
    proc, url = start_server(home, DEPOT_LLAMA_SERVER=stand_in, DEPOT_LOG_LEVEL="")
    try:
        chat = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        reply = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=60)
        assert reply.status_code == 200, reply.text
    finally:
        proc.terminate()
        proc.wait(30)
    console = (home / "serve.log").read_text()
    assert '"POST /v1/chat/completions" 200' in console
    assert (f"INFO modeldepot.runtime: starting the llama-server engine (generate) for m:latest "
            f"{version.digest}: pid ") in console  # fmt: skip
    assert "INFO modeldepot.runtime: unloading m:latest" in console
