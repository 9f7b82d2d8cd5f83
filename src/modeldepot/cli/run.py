"""`depot run MODEL [PROMPT]`: chat with a model in the terminal.

The chat goes through the depot's own server, so a name reaches what it reaches for any client
(a local version, an adapter on its base, a remote model, an alias and its fallbacks) through
the same gate (a pending or quarantined version, or one today's policy refuses, is not run).
When a `depot serve` of the same DEPOT_HOME is running, the chat goes through it, as `ollama
run` talks to its daemon; otherwise this command starts the server on a loopback port of its
own for the chat, and stops it (and any engine it started) at the end. `/bye` or Ctrl-D ends
a chat."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
import httpx

from modeldepot.cli.app import CommandError, app, pass_depot
from modeldepot.cli.daemon import running_server
from modeldepot.cli.render import stderr, stdout, working
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import DepotError, ModelNotFound
from modeldepot.runtime.process import engine_client_limits, free_port

ENDS = ("/bye", "/exit")
"""What ends an interactive chat (as does Ctrl-D)."""

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


@contextlib.contextmanager
def _own_server(settings: Settings) -> Iterator[tuple[str, str]]:
    """The depot's server on a loopback port of its own, for one chat: its URL and a key that
    only this command knows. Stopping it stops the engines it started."""
    import uvicorn

    from modeldepot.server import create_app

    secret = f"md-run-{secrets.token_urlsafe(24)}"
    keys = ",".join(k for k in (settings.api_keys, secret) if k)
    app_ = create_app(dataclasses.replace(settings, api_keys=keys))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app_, host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, name="depot-run-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise DepotError("the depot's server did not start for this chat")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", secret
    finally:
        server.should_exit = True
        thread.join(60)


def _check(depot: Depot, model: str) -> str:
    """What `model` reaches, as the server will route it; exits with the reason when nothing
    it reaches may be run."""
    try:
        found = depot.resolver.resolve(model)
    except ModelNotFound:
        depot.names.show(model)  # the local name's own message (which tags exist)
        raise
    if found.targets:
        return found.targets[0].name if found.alias is None else model
    for refusal in found.refused:
        stderr.print(f"  {refusal}", markup=False)
    if not found.refused:
        raise CommandError(f"{model} may not be run: nothing answers", 1)
    reference, why = found.refused[0].split(" is ", 1)  # `REF is quarantined: reason`
    raise CommandError(f"{reference} may not be run: it is {why}", 1)


@app.command()
@click.argument("model")
@click.argument("prompt", required=False)
@click.option("--system", help="A system prompt.")
@click.option("--max-tokens", default=512, show_default=True, help="Longest answer, in tokens.")
@click.option("--temperature", default=0.7, show_default=True, type=float)
@pass_depot
def run(depot: Depot, model: str, prompt: str | None, system: str | None, max_tokens: int,
        temperature: float) -> None:  # fmt: skip
    """Answer PROMPT with MODEL (a local model, an adapter, a remote model or an alias),
    streaming; without PROMPT, open an interactive chat (with line editing and history; /bye
    or Ctrl-D ends it). Text piped in is added to PROMPT: `cat notes.txt | depot run MODEL
    "summarise this"`."""
    if prompt is not None and not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped.strip():
            prompt = f"{prompt}\n\n{piped}"
    name = _check(depot, model)
    settings = depot.settings
    with contextlib.ExitStack() as stack:
        server = running_server(settings.home)
        if server is not None:
            endpoint = _Endpoint(f"{server.url}/v1", name, server.key, True)
        else:
            with working("starting the depot's server for this chat"):
                url, key = stack.enter_context(_own_server(settings))
            endpoint = _Endpoint(f"{url}/v1", name, key)
        messages = [{"role": "system", "content": system}] if system else []
        with httpx.Client(timeout=None, limits=engine_client_limits()) as client:
            if prompt is not None:
                messages.append({"role": "user", "content": prompt})
                _answer(client, endpoint, messages, max_tokens, temperature)
                return
            via = " through the running depot serve" if endpoint.through_server else ""
            stderr.print(f"chatting with {name}{via}; /bye or Ctrl-D ends the chat")
            stack.enter_context(_history(settings.layout.run_history))
            _chat(client, endpoint, messages, max_tokens, temperature)


def _chat(client: httpx.Client, endpoint: _Endpoint, messages: list[dict[str, str]],
          max_tokens: int, temperature: float) -> None:  # fmt: skip
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            stdout.out("")
            return
        except KeyboardInterrupt:
            stdout.out("")
            stderr.print("/bye or Ctrl-D ends the chat")
            continue
        if line.strip() in ENDS:
            return
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line})
        reply = _answer(client, endpoint, messages, max_tokens, temperature)
        messages.append({"role": "assistant", "content": reply})
