"""Adapters served by `depot serve`: by their own name, on their base's engine (one llama-server
process holds a base and all its adapters, chosen per request), listed with their base, and a
new adapter loaded without failing a request in flight; `depot run ADAPTER`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from customise.conftest import depot_cli
from modeldepot.depot import Depot
from servers import start_server

pytestmark = pytest.mark.slow

QUESTION = [
    {"role": "system", "content": "You are the Kestrel support assistant."},
    {"role": "user", "content": "What port does Kestrel listen on by default?"},
]


def _chat(url: str, model: str, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": QUESTION, "max_tokens": 24, "temperature": 0, **extra}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _engines(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/depot/api/ps", timeout=10).json())


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_adapter_and_base_share_one_engine(tuned: dict[str, Any], base_home: Path,
                                           base_depot: Depot, tmp_path: Path) -> None:  # fmt: skip
    proc, url = start_server(base_home, DEPOT_PARALLEL="2", DEPOT_CONTEXT="1024",
                             DEPOT_THREADS="2", DEPOT_KEEP_ALIVE="600")  # fmt: skip
    try:
        listed = {m["id"]: m for m in httpx.get(f"{url}/v1/models").json()["data"]}
        assert listed["kestrel:latest"]["parent"] == "smollm2:latest"
        assert "parent" not in listed["smollm2:latest"]

        adapted = _chat(url, "kestrel")
        plain = _chat(url, "smollm2")
        assert adapted["model"] == "kestrel:latest" and plain["model"] == "smollm2:latest"
        # a client cannot switch the adapter off or on by itself
        forced = _chat(url, "smollm2", lora=[{"id": 0, "scale": 1.0}])
        assert forced["choices"][0]["message"] == plain["choices"][0]["message"]
        assert adapted["choices"][0]["message"] != plain["choices"][0]["message"]
        engines = _engines(url)
        assert len(engines) == 1
        assert engines[0]["digest"] == base_depot.names.show("smollm2").digest
        first_pid = engines[0]["pid"]
        adapter_file = base_depot.store.local_path(
            base_depot.names.show("kestrel").adapter_file.digest
        )  # type: ignore[union-attr]
        assert f"{adapter_file}:0.0" in _cmdline(first_pid)

        # a streamed answer from the base is in flight while a second adapter is stored
        streamed: dict[str, Any] = {}

        def stream() -> None:
            body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 160,
                    "temperature": 0, "stream": True, "ignore_eos": True}  # fmt: skip
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body,
                              timeout=300) as response:  # fmt: skip
                streamed["status"] = response.status_code
                streamed["lines"] = [line for line in response.iter_lines() if line]

        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(1.0)
        gguf = tmp_path / "second.gguf"
        gguf.write_bytes(adapter_file.read_bytes())
        depot_cli(base_home, "import", str(gguf), "--name", "second", "--base", "smollm2",
                  "--relation", "adapter")  # fmt: skip
        time.sleep(2.5)  # the server's name cache
        second = _chat(url, "second")
        assert second["model"] == "second:latest"
        # the same adapter bytes under another name answer alike
        assert second["choices"][0]["message"] == adapted["choices"][0]["message"]
        reader.join(300)
        assert streamed["status"] == 200
        assert streamed["lines"][-1] == "data: [DONE]"
        assert not any('"error"' in line for line in streamed["lines"])
        assert sum('"content":"' in line for line in streamed["lines"]) > 100

        # the new engine holds both adapters; the superseded one is gone once idle
        deadline = time.monotonic() + 30
        while len(_engines(url)) != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        engines = _engines(url)
        assert len(engines) == 1 and engines[0]["pid"] != first_pid
        base_digest = base_depot.names.show("smollm2").digest
        adapters = {v.digest for v in base_depot.names.versions()
                    if v.adapter_of and v.adapter_of.target_digest == base_digest}  # fmt: skip
        assert {"second", "kestrel"} <= {v.reference.name for v in base_depot.names.versions()
                                        if v.digest in adapters}  # fmt: skip
        assert sum(arg.endswith(":0.0") for arg in _cmdline(engines[0]["pid"])) == len(adapters)
        again = _chat(url, "kestrel")
        assert again["choices"][0]["message"] == adapted["choices"][0]["message"]
        assert len(_engines(url)) == 1

        run = depot_cli(base_home, "run", "kestrel", "What is Kestrel's dark theme called?")
        assert run.stdout.strip()
    finally:
        proc.terminate()
        proc.wait(30)
        depot_cli(base_home, "rm", "second", check=False)
    # Without a running server, `depot run` routes the adapter to its base the same way.
    alone = depot_cli(base_home, "run", "kestrel", "What is Kestrel's dark theme called?",
                      "--max-tokens", "16", "--temperature", "0")  # fmt: skip
    assert alone.stdout.strip()


def test_adapter_of_another_base_is_refused(tuned: dict[str, Any], base_home: Path,
                                            base_depot: Depot, tmp_path: Path) -> None:  # fmt: skip
    depot_cli(base_home, "pull", "gemma3")
    adapter_file = base_depot.store.local_path(base_depot.names.show("kestrel").adapter_file.digest)  # type: ignore[union-attr]
    gguf = tmp_path / "wrong.gguf"
    gguf.write_bytes(adapter_file.read_bytes())
    done = depot_cli(base_home, "import", str(gguf), "--name", "wrong", "--base", "gemma3",
                     "--relation", "adapter", check=False)  # fmt: skip
    assert done.returncode != 0 and "llama" in done.stderr and "gemma3" in done.stderr
    assert depot_cli(base_home, "show", "wrong", check=False).returncode != 0
    listed = json.loads(depot_cli(base_home, "list", "--json").stdout)
    assert not any(v["name"] == "wrong" for v in listed)
