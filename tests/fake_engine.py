"""A fake engine program for tests of the engine seam and the API: serves `GET /health` and
OpenAI-shaped answers on a loopback port, like llama-server (it takes llama-server's command
line, so it can stand in for it through DEPOT_LLAMA_SERVER). Each answer names the model, a
request count and the `max_tokens` it was asked for; `fake_delay` (seconds) makes it work that
long first, stopping early, as llama-server does, when the client closes the connection. A
`stream` request is answered with `fake_events` events (default 3), `fake_delay` apart, then
one with the usage. `GET /stats` counts answered and cancelled requests; `GET /last` is the last
request's body, as the engine received it. `--child-linger S` starts a child process that takes
S seconds to exit once asked (as vLLM's engine core and worker do); /stats names its pid."""

from __future__ import annotations

import argparse
import itertools
import json
import select
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from modeldepot.runtime.engine_http import JSONHandler, serve


def llama_server_stand_in(folder: Path) -> Path:
    """An executable in `folder` that runs this fake with llama-server's command line (for
    DEPOT_LLAMA_SERVER)."""
    script = folder / "llama-server"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__)}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", "--alias", dest="name", default="fake")
    parser.add_argument("--child-linger", type=float, default=None)
    args, _ = parser.parse_known_args()
    counter = itertools.count(1)
    stats = {"answered": 0, "cancelled": 0}
    if args.child_linger is not None:
        linger = (f"import signal, sys, time\n"
                  f"signal.signal(signal.SIGTERM, lambda *_: (time.sleep({args.child_linger}),"
                  f" sys.exit(0)))\ntime.sleep(600)\n")  # fmt: skip
        stats["child"] = subprocess.Popen([sys.executable, "-c", linger]).pid
    last: dict[str, Any] = {}

    class Handler(JSONHandler):
        def do_GET(self) -> None:
            if self.path == "/stats":
                self.reply(200, dict(stats))
            elif self.path == "/last":
                self.reply(200, dict(last))
            else:
                super().do_GET()

        def _client_gone(self, seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    return True
            return False

        def _stream(self, n: int, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            events = int(body.get("fake_events") or 3)
            for i in range(events):
                delta = {"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}
                chunk = {"id": f"fake-{n}", "object": "chat.completion.chunk",
                         "model": body.get("model"), "choices": [delta]}  # fmt: skip
                try:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                except OSError:
                    stats["cancelled"] += 1
                    return
                if self._client_gone(float(body.get("fake_delay") or 0)):
                    stats["cancelled"] += 1
                    return
            usage = {"prompt_tokens": 3, "completion_tokens": events, "total_tokens": 3 + events}
            last = {"id": f"fake-{n}", "object": "chat.completion.chunk", "choices": [],
                    "model": body.get("model"), "usage": usage}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            stats["answered"] += 1

        def do_POST(self) -> None:
            body: dict[str, Any] = self.read_json()
            last.clear()
            last.update(body, path=self.path)
            n = next(counter)
            if body.get("stream"):
                self._stream(n, body)
                return
            if self.path == "/v1/embeddings":
                texts = body.get("input")
                texts = [texts] if isinstance(texts, str) else list(texts or [])
                self.reply(200, {"object": "list", "model": body.get("model"),
                                 "data": [{"object": "embedding", "index": i,
                                           "embedding": [3.0, 4.0, float(len(t))]}
                                          for i, t in enumerate(texts)],
                                 "usage": {"prompt_tokens": len(texts),
                                           "total_tokens": len(texts)}})  # fmt: skip
                return
            if self._client_gone(float(body.get("fake_delay") or 0)):
                stats["cancelled"] += 1
                return
            text = f"{args.name} answer {n} max_tokens={body.get('max_tokens')}"
            usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
            if self.path == "/v1/chat/completions":
                choice: dict[str, Any] = {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
                kind = "chat.completion"
            else:
                choice = {"index": 0, "finish_reason": "stop", "text": text}
                kind = "text_completion"
            stats["answered"] += 1
            self.reply(
                200,
                {
                    "id": f"fake-{n}",
                    "object": kind,
                    "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [choice],
                    "usage": usage,
                },
            )

    serve(Handler, args.port)


if __name__ == "__main__":
    main()
