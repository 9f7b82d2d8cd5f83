"""`depot run MODEL [PROMPT]`: chat with a stored model in the terminal.

The model goes through the same gate as the server (a pending or quarantined version, or one
today's policy refuses, is not run). When a `depot serve` of the same DEPOT_HOME is running,
the chat goes through it, as `ollama run` talks to its daemon; otherwise an engine is started
for this chat alone."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.daemon import running_server
from modeldepot.cli.render import stderr, stdout, working
from modeldepot.depot import Depot
from modeldepot.errors import DepotError
from modeldepot.runtime import Capability, EngineProcess, Engines, StoredFiles
from modeldepot.runtime.process import engine_client_limits, free_port

__all__: list[str] = []


@dataclasses.dataclass(frozen=True)
class _Endpoint:
    base_url: str
    """Up to and including `/v1`."""
    model: str
    key: str | None = None
    through_server: bool = False


def _stream(client: httpx.Client, endpoint: _Endpoint, messages: list[dict[str, str]],
            max_tokens: int, temperature: float) -> Iterator[str]:  # fmt: skip
    body = {
        "model": endpoint.model,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    headers = {"Authorization": f"Bearer {endpoint.key}"} if endpoint.key else {}
    with client.stream("POST", f"{endpoint.base_url}/chat/completions", json=body,
                       headers=headers) as response:  # fmt: skip
        if response.status_code != 200:
            detail = json.loads(response.read()).get("error", {}).get("message", "")
            raise DepotError(f"{endpoint.model}: {detail or response.status_code}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if isinstance(event.get("error"), dict):  # the engine failed mid-stream
                raise DepotError(f"{endpoint.model}: {event['error'].get('message', 'failed')}")
            for choice in event.get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text


def _answer(client: httpx.Client, endpoint: _Endpoint, messages: list[dict[str, str]],
            max_tokens: int, temperature: float) -> str:  # fmt: skip
    parts = []
    for piece in _stream(client, endpoint, messages, max_tokens, temperature):
        stdout.out(piece, end="", highlight=False)
        stdout.file.flush()
        parts.append(piece)
    stdout.out("")
    return "".join(parts)


@contextlib.contextmanager
def _history(path: Path) -> Iterator[None]:
    """Line editing and a history kept across chats, on a terminal."""
    if not sys.stdin.isatty():
        yield
        return
    import readline

    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    try:
        yield
    finally:
        readline.set_history_length(1000)
        with contextlib.suppress(OSError):
            readline.write_history_file(path)


@app.command()
@click.argument("model")
@click.argument("prompt", required=False)
@click.option("--system", help="A system prompt.")
@click.option("--max-tokens", default=512, show_default=True, help="Longest answer, in tokens.")
@click.option("--temperature", default=0.7, show_default=True, type=float)
@pass_depot
def run(depot: Depot, model: str, prompt: str | None, system: str | None, max_tokens: int,
        temperature: float) -> None:  # fmt: skip
    """Answer PROMPT with MODEL, streaming; without PROMPT, open an interactive chat (with line
    editing and history). Text piped in is added to PROMPT: `cat notes.txt | depot run MODEL
    "summarise this"`."""
    if prompt is not None and not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped.strip():
            prompt = f"{prompt}\n\n{piped}"
    version = depot.names.show(model)
    refusals = depot.admission.refusals(version)
    if refusals:
        for reason in refusals:
            stderr.print(f"  {reason}", markup=False)
        raise CommandError(f"{version.reference} may not be run: {refusals[0]}", 1)
    settings = depot.settings
    with contextlib.ExitStack() as stack:
        server = running_server(settings.home)
        if server is not None:
            endpoint = _Endpoint(f"{server.url}/v1", str(version.reference), server.key, True)
        else:
            engines = Engines.from_entry_points(settings)
            spec = engines.spec(version, Capability.CHAT, StoredFiles(depot.store, settings.home),
                                settings)  # fmt: skip
            spec = dataclasses.replace(spec, parallel=1, context=spec.context // spec.parallel)
            port = free_port()
            launch = engines.get(spec.engine).launch(spec, port, settings)
            with working(f"loading {spec.name}"):
                engine = EngineProcess.start(spec, launch, port, settings.home / "logs")
            stack.callback(engine.stop)
            endpoint = _Endpoint(f"{engine.base_url}/v1", spec.name)
        messages = [{"role": "system", "content": system}] if system else []
        with httpx.Client(timeout=None, limits=engine_client_limits()) as client:
            if prompt is not None:
                messages.append({"role": "user", "content": prompt})
                _answer(client, endpoint, messages, max_tokens, temperature)
                return
            via = " through the running depot serve" if endpoint.through_server else ""
            stderr.print(f"chatting with {version.reference}{via}; an empty line or Ctrl-D ends")
            stack.enter_context(_history(settings.home / "run_history"))
            while True:
                try:
                    line = input(">>> ")
                except EOFError:
                    break
                if not line.strip():
                    break
                messages.append({"role": "user", "content": line})
                reply = _answer(client, endpoint, messages, max_tokens, temperature)
                messages.append({"role": "assistant", "content": reply})
