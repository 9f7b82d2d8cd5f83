"""Training examples: the loss counts the assistant turns (with their end-of-turn token) or the
completion, never the prompt; the built-in templates render a conversation exactly as
llama-server does for a model whose file has none."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modeldepot.config import Settings
from modeldepot.customise.examples import BUILTIN_TEMPLATES, IGNORE, encode
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.runtime.llama import find_llama_server
from servers import free_port

pytestmark = pytest.mark.slow
transformers = pytest.importorskip("transformers")


def _tokenizer(path: Path) -> Any:
    return transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _trained(tokenizer: Any, example: Any) -> str:
    return str(tokenizer.decode([t for t in example.labels if t != IGNORE]))


CHAT = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "First?"},
    {"role": "assistant", "content": "Not this one.", "weight": 0},
    {"role": "user", "content": "Second?"},
    {"role": "assistant", "content": "This one."},
]}  # fmt: skip


def test_only_assistant_turns_and_completions_are_trained(smollm2_path: Path) -> None:
    tokenizer = _tokenizer(smollm2_path)
    chat = encode([CHAT], "chat", tokenizer, None, 512)[0]
    assert _trained(tokenizer, chat) == "This one.<|im_end|>"
    assert "Second?" in tokenizer.decode(chat.ids)  # the prompt is there, untrained
    both = dict(CHAT, messages=[{k: v for k, v in m.items() if k != "weight"}
                                for m in CHAT["messages"]])  # fmt: skip
    assert _trained(tokenizer, encode([both], "chat", tokenizer, None, 512)[0]) == (
        "Not this one.<|im_end|>This one.<|im_end|>"
    )
    completion = encode([{"prompt": "The capital of France is", "completion": " Paris."}],
                        "prompt-completion", tokenizer, None, 512)[0]  # fmt: skip
    assert _trained(tokenizer, completion) == " Paris.<|im_end|>"
    text = encode([{"text": "All of it."}], "text", tokenizer, None, 512)[0]
    assert _trained(tokenizer, text) == "All of it.<|im_end|>"
    cut = encode([{"text": "one two three four five six seven"}], "text", tokenizer, None, 4)[0]
    assert len(cut.ids) == 4 == cut.trained_tokens
    with pytest.raises(UsageError, match="example 1: no token left to train on within 8"):
        encode([CHAT], "chat", tokenizer, None, 8)  # the answer lies beyond the cut


def test_builtin_template_renders_as_llama_server_does(tmp_path: Path) -> None:
    """Gemma 3 270M's file has no chat template: llama-server serves it with its built-in
    `gemma` template, and training must render conversations the same way."""
    with Depot(Settings(home=tmp_path / "depot", user="tests")) as depot:
        version = depot.intake.pull("gemma3")
        gguf = depot.store.local_path(next(f.digest for f in version.files if f.kind == "weights"))
    port = free_port()
    server = subprocess.Popen(
        [str(find_llama_server(Settings(home=tmp_path))), "-m", str(gguf), "--port", str(port),
         "--host", "127.0.0.1", "-c", "512", "--no-jinja", "--chat-template", "gemma",
         "--no-webui"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        messages = [{k: v for k, v in m.items() if k != "weight"} for m in CHAT["messages"]]
        served = httpx.post(f"{url}/apply-template", json={"messages": messages[:-1]},
                            timeout=30).json()["prompt"]  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
    tokenizer = _tokenizer(gguf)
    ours = tokenizer.apply_chat_template(messages[:-1], chat_template=BUILTIN_TEMPLATES["gemma"],
                                         tokenize=False, add_generation_prompt=True)  # fmt: skip
    assert ours == served
    example = encode([CHAT], "chat", tokenizer, BUILTIN_TEMPLATES["gemma"], 512)[0]
    assert _trained(tokenizer, example) == "This one.<end_of_turn>"
