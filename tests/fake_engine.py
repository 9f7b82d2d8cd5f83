"""A fake engine program for the engine seam's tests: serves `GET /health` and OpenAI-shaped
answers on a loopback port, answering every chat with the model's name and a request count."""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

from modeldepot.runtime.engine_http import JSONHandler, serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    counter = itertools.count(1)

    class Handler(JSONHandler):
        def do_POST(self) -> None:
            body: dict[str, Any] = self.read_json()
            n = next(counter)
            text = f"{args.name} answer {n}"
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
