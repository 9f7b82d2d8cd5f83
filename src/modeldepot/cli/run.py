"""`depot run MODEL [PROMPT]`: chat with a stored model in the terminal."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import click
import httpx

from modeldepot.cli.app import app, pass_depot
from modeldepot.cli.render import stderr, stdout
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.runtime.runner import Runner, RunnerSpec, engine_client_limits, find_llama_server

__all__: list[str] = []


def _stream(client: httpx.Client, runner: Runner, messages: list[dict[str, str]], max_tokens: int,
            temperature: float) -> Iterator[str]:  # fmt: skip
    body = {
        "model": runner.spec.name,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    with client.stream("POST", f"{runner.base_url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            detail = json.loads(response.read()).get("error", {}).get("message", "")
            raise DepotError(f"{runner.spec.name}: {detail or response.status_code}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            for choice in event.get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text


def _answer(client: httpx.Client, runner: Runner, messages: list[dict[str, str]],
            max_tokens: int, temperature: float) -> str:  # fmt: skip
    parts = []
    for piece in _stream(client, runner, messages, max_tokens, temperature):
        stdout.out(piece, end="", highlight=False)
        stdout.file.flush()
        parts.append(piece)
    stdout.out("")
    return "".join(parts)


@app.command()
@click.argument("model")
@click.argument("prompt", required=False)
@click.option("--system", help="A system prompt.")
@click.option("--max-tokens", default=512, show_default=True, help="Longest answer, in tokens.")
@click.option("--temperature", default=0.7, show_default=True, type=float)
@pass_depot
def run(depot: Depot, model: str, prompt: str | None, system: str | None, max_tokens: int,
        temperature: float) -> None:  # fmt: skip
    """Answer PROMPT with MODEL, streaming; without PROMPT, open an interactive chat."""
    version = depot.show(model)
    weights = next((f for f in version.files if f.kind == "weights"), None)
    if weights is None:
        raise DepotError(f"{version.reference} has no weights file")
    settings = depot.settings
    spec = RunnerSpec.for_version(version, depot.blobs.path(weights.digest), settings)
    spec = dataclasses.replace(spec, parallel=1, context=spec.context // spec.parallel)
    runner = Runner.start(spec, find_llama_server(settings), settings.home / "logs")
    messages = [{"role": "system", "content": system}] if system else []
    try:
        with httpx.Client(timeout=None, limits=engine_client_limits()) as client:
            if prompt is not None:
                messages.append({"role": "user", "content": prompt})
                _answer(client, runner, messages, max_tokens, temperature)
                return
            stderr.print(f"chatting with {version.reference}; an empty line or Ctrl-D ends")
            while True:
                try:
                    line = input(">>> ")
                except EOFError:
                    break
                if not line.strip():
                    break
                messages.append({"role": "user", "content": line})
                reply = _answer(client, runner, messages, max_tokens, temperature)
                messages.append({"role": "assistant", "content": reply})
    finally:
        runner.stop()
