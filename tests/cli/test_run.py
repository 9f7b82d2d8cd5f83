"""`depot run` with the real SmolLM2: one prompt, and an interactive chat fed on stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "DEPOT_HOME": str(home), "DEPOT_CONTEXT": "1024"}


def test_run_answers_a_prompt_and_chats(served_home: Path) -> None:
    once = subprocess.run(
        [*DEPOT, "run", "smollm2", "What is 2 + 2?", "--max-tokens", "12", "--temperature", "0"],
        env=_env(served_home), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert once.stdout.strip()
    chat = subprocess.run(
        [*DEPOT, "run", "smollm2", "--max-tokens", "8"],
        input="Hello!\nAnd again?\n/bye\n", env=_env(served_home), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.count(">>> ") == 3  # two questions, then /bye
    answers = [part.strip() for part in chat.stdout.split(">>> ")[1:3]]
    assert all(answers)


def test_run_unknown_model_is_a_clear_error(served_home: Path) -> None:
    result = subprocess.run([*DEPOT, "run", "nope", "hi"], env=_env(served_home),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "no model named nope" in result.stderr and "Traceback" not in result.stderr


def test_run_refuses_a_quarantined_model_with_the_reason(tmp_path: Path) -> None:
    from builders import write_gguf

    home = tmp_path / "depot"
    home.mkdir()
    (home / "policy.toml").write_text('[licences]\ndeny = ["Apache-2.0"]\n')
    env = _env(home)
    env.pop("DEPOT_DATABASE_URL", None)
    model = write_gguf(tmp_path / "m.gguf")
    imported = subprocess.run([*DEPOT, "import", str(model), "-n", "denied"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert imported.returncode == 1 and "quarantined" in imported.stderr
    result = subprocess.run([*DEPOT, "run", "denied", "hi"], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "denied:latest may not be run" in result.stderr and "Apache-2.0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((home / "logs").glob("*.log")) if (home / "logs").exists() else True


def test_run_goes_through_a_running_server_of_the_same_home(served_home: Path) -> None:
    import httpx

    from server.conftest import start_server

    proc, url = start_server(served_home, DEPOT_CONTEXT="1024")
    try:
        assert httpx.get(f"{url}/health").json()["loaded"] == []
        once = subprocess.run(
            [*DEPOT, "run", "smollm2", "Say hi.", "--max-tokens", "6", "--temperature", "0"],
            env=_env(served_home), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert once.returncode == 0, once.stderr
        assert once.stdout.strip()
        loaded = httpx.get(f"{url}/health").json()["loaded"]
        assert [(m["name"], m["kind"]) for m in loaded] == [("smollm2:latest", "generate")]
        # Text piped in joins the prompt.
        piped = subprocess.run(
            [*DEPOT, "run", "smollm2", "Repeat the word above.", "--max-tokens", "6",
             "--temperature", "0"],
            input="lighthouse\n", env=_env(served_home), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert piped.returncode == 0 and piped.stdout.strip(), piped.stderr
        # depot ps and depot stop talk to the same server.
        ps = subprocess.run([*DEPOT, "ps", "--json"], env=_env(served_home), capture_output=True,
                            text=True, timeout=60)  # fmt: skip
        assert [m["name"] for m in json.loads(ps.stdout)] == ["smollm2:latest"]
        stop = subprocess.run([*DEPOT, "stop", "smollm2", "--json"], env=_env(served_home),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert [m["kind"] for m in json.loads(stop.stdout)] == ["generate"]
        assert httpx.get(f"{url}/health").json()["loaded"] == []
    finally:
        proc.terminate()
        proc.wait(30)
    assert not (served_home / "serve.json").exists()  # withdrawn when the server stopped
    gone = subprocess.run([*DEPOT, "ps"], env=_env(served_home), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert gone.returncode == 1 and "no depot serve" in gone.stderr
