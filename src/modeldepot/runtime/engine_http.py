"""The small HTTP face shared by the engines written in Python (scoring, sentence embeddings):
JSON in and out, `GET /health`, loopback only, no request log."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["JSONHandler", "serve"]


class JSONHandler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["content-length"])))

    def do_GET(self) -> None:
        self.reply(200 if self.path == "/health" else 404, {"status": "ok"})

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler], port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
