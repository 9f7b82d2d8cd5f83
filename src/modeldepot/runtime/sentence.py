"""The sentence-embedding engine: a sentence-transformers model (such as the packaged
all-MiniLM-L6-v2) behind an OpenAI-style `/v1/embeddings`, one process per model:

    python -m modeldepot.runtime.sentence --model FOLDER --port N [--threads N]

FOLDER is the model's files laid out under their own names (the depot links them to the
stored blobs). Nothing is fetched: the model loads from that folder, and the runner starts
this process with the Hugging Face libraries set offline.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["main"]


def _handler(model: Any, name: str) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(200 if self.path == "/health" else 404, {"status": "ok"})

        def do_POST(self) -> None:
            try:
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                texts = request["input"]
                texts = [texts] if isinstance(texts, str) else list(texts)
                if not texts or not all(isinstance(t, str) for t in texts):
                    raise ValueError("`input` must be a string or a list of strings")
            except (ValueError, KeyError, TypeError) as exc:
                self._reply(400, {"error": {"message": str(exc), "type": "invalid_request_error",
                                            "code": None}})  # fmt: skip
                return
            with lock:
                vectors = model.encode(texts, convert_to_numpy=True)
                tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
            self._reply(200, {
                "object": "list",
                "model": name,
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })  # fmt: skip

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="modeldepot sentence-embedding engine")
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", default="model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu", local_files_only=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(model, args.name))
    server.serve_forever()


if __name__ == "__main__":
    main()
