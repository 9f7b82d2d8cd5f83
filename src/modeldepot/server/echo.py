"""Prompt scoring over the API: `/v1/completions` with `echo` (and `logprobs`), answered by
the scoring engine (`runtime.scorer`) in OpenAI's legacy completions format."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
from fastapi.responses import JSONResponse, Response

from modeldepot.monitor import Accounting
from modeldepot.registry import ModelVersion
from modeldepot.runtime import Capability
from modeldepot.server.errors import APIError, engine_failed, error_body
from modeldepot.server.routing import engine_spec
from modeldepot.server.state import ServerState

__all__ = ["DEFAULT_TOKENS", "MAX_ECHO_TOKENS", "score"]


MAX_ECHO_TOKENS = 64
DEFAULT_TOKENS = 16
"""Tokens generated after the prompt when `max_tokens` is not given (OpenAI's default)."""


async def score(
    state: ServerState, version: ModelVersion, body: dict[str, Any], account: Accounting
) -> Response:
    """`echo` with `logprobs`: the prompt's own tokens scored (and up to MAX_ECHO_TOKENS greedy
    tokens after it), as lm-evaluation-harness's `local-completions` asks for. The depot's own
    `logprobs_from` (a character offset, or a list of one per prompt) limits the scoring to the
    tokens that reach past it; the others come back with null log-probabilities, which saves
    the output layer over a long context."""
    prompt = body["prompt"]
    if isinstance(prompt, str) or (
        isinstance(prompt, list) and all(isinstance(t, int) for t in prompt)
    ):
        prompts = [prompt]
    else:
        prompts = list(prompt)
    generate = int(body.get("max_tokens", DEFAULT_TOKENS) or 0)
    if generate > MAX_ECHO_TOKENS:
        raise APIError.bad_request(f"with `echo`, `max_tokens` is at most {MAX_ECHO_TOKENS}")
    top = int(body.get("logprobs") or 0)
    start = body.get("logprobs_from")
    offsets = start if isinstance(start, list) else [start]
    if start is not None and (
        (isinstance(start, list) and len(start) != len(prompts))
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
    ):
        raise APIError.bad_request(
            "`logprobs_from` is a character offset (an integer >= 0) or a list of one per prompt"
        )
    spec = engine_spec(state, version, Capability.SCORING)
    async with state.pool.use(spec) as engine:
        try:
            reply = await state.client.post(
                f"{engine.base_url}/score",
                json={"prompts": prompts, "top": top, "generate": generate, "from": start},
            )
        except httpx.HTTPError as exc:
            return engine_failed(spec.name, exc)
    if reply.status_code != 200:
        message = reply.json().get("error", reply.text)
        return JSONResponse(error_body(message, "invalid_request_error", None), reply.status_code)
    choices = []
    for index, (original, result) in enumerate(zip(prompts, reply.json()["results"], strict=True)):
        pieces = result["pieces"]
        offsets, position = [], 0
        for piece in pieces:
            offsets.append(position)
            position += len(piece)
        generated = "".join(pieces[result["prompt_tokens"] :])
        text = original if isinstance(original, str) else "".join(pieces[: result["prompt_tokens"]])
        logprobs = None
        if body.get("logprobs") is not None:
            logprobs = {
                "tokens": pieces,
                "token_logprobs": result["logprobs"],
                "top_logprobs": [
                    None if alt is None else {piece: lp for _, piece, lp in alt}
                    for alt in result["top"]
                ],
                "text_offset": offsets,
            }
        choices.append({"index": index, "text": text + generated, "logprobs": logprobs,
                        "finish_reason": "length"})  # fmt: skip
    prompt_tokens = sum(r["prompt_tokens"] for r in reply.json()["results"])
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": generate * len(prompts),
             "total_tokens": prompt_tokens + generate * len(prompts)}  # fmt: skip
    account.read_body({"usage": usage})
    return JSONResponse({
        "id": f"cmpl-{secrets.token_hex(12)}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": spec.name,
        "choices": choices,
        "usage": usage,
    })  # fmt: skip
