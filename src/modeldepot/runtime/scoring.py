"""The scoring engine: log-probabilities of a prompt's own tokens (OpenAI's `echo` with
`logprobs`), which llama.cpp's server does not offer and evaluation harnesses need.

Runs as its own process, one per model, like the generation engine:

    python -m modeldepot.runtime.scoring --model PATH --port N [--threads N] [--ctx N]

Each token's log-probability is read from the logits at the position before it (llama-cpp-
python's own `echo` reads them at the token's own position, which is wrong for some models).
Consecutive prompts that share a prefix (a question followed by each of its answers) reuse the
prefix's evaluation instead of computing it again.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import numpy as np

from modeldepot.runtime.engine_http import JSONHandler, serve

__all__ = ["Scorer", "main"]


class Scorer:
    def __init__(self, model: str, *, threads: int, context: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=model,
            n_ctx=context,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=True,
            verbose=False,
        )
        self.context = context
        self.lock = threading.RLock()
        """Held for a whole request, so that its prompts (a question and each of its answers)
        run back to back and share their prefix."""
        self._pieces: dict[int, str] = {}
        self._lse: list[float] = []
        """Log-sum-exp of the logits at each evaluated position (aligned with the cache)."""

    def tokens(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            return list(self.llm.tokenize(prompt.encode(), add_bos=True, special=False))
        return [int(t) for t in prompt]

    def piece(self, token: int) -> str:
        found = self._pieces.get(token)
        if found is None:
            found = self._pieces[token] = self.llm.detokenize([token]).decode("utf-8", "replace")
        return found

    def score(self, prompt: str | list[int], top: int, generate: int) -> dict[str, Any]:
        """The prompt's tokens with their log-probabilities (None for the first) and the top
        alternatives at each position, then `generate` greedy tokens scored the same way."""
        tokens = self.tokens(prompt)
        if not tokens:
            raise ValueError("the prompt is empty")
        if len(tokens) + generate > self.context:
            raise ValueError(
                f"the prompt has {len(tokens)} tokens; scoring takes at most "
                f"{self.context - generate}"
            )
        with self.lock:
            llm = self.llm
            common = 0
            cached = llm.input_ids[: llm.n_tokens]
            while common < min(len(cached), len(tokens) - 1) and cached[common] == tokens[common]:
                common += 1
            llm.n_tokens = common
            llm.eval(tokens[common:])
            for _ in range(generate):
                tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
                llm.eval(tokens[-1:])
            # Log-sum-exp of each position's logits, kept for the shared prefix: a question's
            # answers then cost only their own rows.
            del self._lse[common:]
            for position in range(len(self._lse), len(tokens) - 1):
                row = llm.scores[position]
                peak = float(row.max())
                self._lse.append(peak + float(np.log(np.exp(row - peak).sum(dtype=np.float64))))
            chosen: list[float | None] = [None]
            alternatives: list[list[tuple[int, float]] | None] = [None]
            for position, token in enumerate(tokens[1:]):
                row = llm.scores[position]
                lse = self._lse[position]
                chosen.append(float(row[token]) - lse)
                if not top:
                    alternatives.append([])
                    continue
                best = np.argpartition(row, -top)[-top:]
                best = best[np.argsort(-row[best])]
                alternatives.append([(int(t), float(row[t]) - lse) for t in best])
        return {
            "tokens": tokens,
            "pieces": [self.piece(t) for t in tokens],
            "logprobs": chosen,
            "top": [
                None if alt is None else [(t, self.piece(t), lp) for t, lp in alt]
                for alt in alternatives
            ],
            "prompt_tokens": len(tokens) - generate,
        }


def _handler(scorer: Scorer) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_POST(self) -> None:
            try:
                request = self.read_json()
                with scorer.lock:
                    results = [
                        scorer.score(p, int(request.get("top", 1)), int(request.get("generate", 0)))
                        for p in request["prompts"]
                    ]
            except (ValueError, KeyError, TypeError) as exc:
                self.reply(400, {"error": str(exc)})
                return
            self.reply(200, {"results": results})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="modeldepot scoring engine")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=1024)
    args = parser.parse_args()
    scorer = Scorer(args.model, threads=args.threads, context=args.ctx)
    serve(_handler(scorer), args.port)


if __name__ == "__main__":
    main()
