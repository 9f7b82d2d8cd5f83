"""`depot run` goes through the depot's own routing even without a running `depot serve`:
remote models and aliases answer, and `/bye` or Ctrl-D ends a chat. The remote is a small
OpenAI-compatible server on loopback that streams a fixed answer."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from servers import DEPOT

ANSWER = "hello from upstream"


class _Upstream(BaseHTTPRequestHandler):
    asked: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Upstream.asked.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in ANSWER.split(" "):
            chunk = {"id": "c1", "object": "chat.completion.chunk", "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": word + " "}}]}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Upstream.asked.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _depot(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPOT_HOME": str(home)}
    env.pop("DEPOT_DATABASE_URL", None)
    return subprocess.run([*DEPOT, *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_remotes_and_aliases_run_without_a_server(tmp_path: Path, upstream: str) -> None:
    home = tmp_path / "depot"
    assert _depot(home, "remote", "add", "cloud", "--base-url", upstream, "--model",
                  "up-1").returncode == 0  # fmt: skip
    assert _depot(home, "alias", "set", "chat", "cloud").returncode == 0
    once = _depot(home, "run", "cloud", "Say hello.")
    assert once.returncode == 0, once.stderr
    assert once.stdout.strip() == ANSWER
    assert _Upstream.asked[-1]["model"] == "up-1"
    aliased = _depot(home, "run", "chat", "Say hello.")
    assert aliased.returncode == 0 and aliased.stdout.strip() == ANSWER, aliased.stderr
    assert not (home / "serve.json").exists()  # its own server was never announced

    asked = len(_Upstream.asked)
    chat = _depot(home, "run", "chat", stdin="Hello!\n\n/bye\nnever sent\n")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.count(">>> ") == 3  # the question, the empty line, /bye
    assert len(_Upstream.asked) == asked + 1
    assert "/bye or Ctrl-D ends the chat" in chat.stderr
    ended = _depot(home, "run", "chat", stdin="Hello!\n")  # then Ctrl-D (end of input)
    assert ended.returncode == 0 and ended.stdout.count(ANSWER) == 1
    missing = _depot(home, "run", "nope", "hi")
    assert missing.returncode == 1 and "no model named nope" in missing.stderr
