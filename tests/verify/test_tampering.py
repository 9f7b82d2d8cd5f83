"""Stored bytes that changed after import are never trusted: signing refuses them, verifying
names them, `verify --all` quarantines their version, and no engine loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from builders import write_gguf
from fake_engine import llama_server_stand_in
from modeldepot.config import Settings
from modeldepot.depot import Depot
from server.conftest import start_server

DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


def _flip(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_changed_bytes_are_never_signed_served_or_passed(tmp_path: Path) -> None:
    home = tmp_path / "depot"
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)

    def depot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*DEPOT, *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    with Depot(Settings(home=home, user="t")) as d:
        version = d.intake.import_path(write_gguf(tmp_path / "m.gguf"), "m")
        weights = d.store.local_path(next(f.digest for f in version.files if f.kind == "weights"))
    assert depot("keygen").returncode == 0
    assert depot("sign", "m").returncode == 0
    proc, url = start_server(home, DEPOT_LLAMA_SERVER=str(llama_server_stand_in(tmp_path)))
    try:
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=60).status_code == 200
        _flip(weights)
        # Every request re-checks the file the engine would load: the changed bytes are refused.
        refused = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=60)
        assert refused.status_code == 500
        assert refused.json()["error"]["code"] == "stored_bytes_changed"
    finally:
        proc.terminate()
        proc.wait(30)
    signed = depot("sign", "m")
    assert (
        signed.returncode == 1
        and "m.gguf" in signed.stderr
        and "nothing was signed" in signed.stderr
    )
    verified = depot("verify", "m")
    assert verified.returncode == 1 and "m.gguf differs" in verified.stderr
    every = depot("verify", "--all", "--json")
    assert every.returncode == 1
    report = json.loads(every.stdout)
    assert report[0]["status"] == "quarantined"
    assert any("integrity" in p and "m.gguf" in p for p in report[0]["problems"])
