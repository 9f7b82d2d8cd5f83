"""Training examples as token ids with the positions the loss counts: a chat record rendered
with the base's own chat template (or, for a model whose file has none, the same built-in
template llama-server will use to serve it), and only the assistant turns trained on; a
prompt/completion record trained on its completion; a text record on all of it.

Kept free of torch: it needs only a tokenizer with offsets (any Hugging Face fast tokenizer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modeldepot import jsonl
from modeldepot.errors import FormatError, UsageError

__all__ = ["BUILTIN_TEMPLATES", "Example", "encode", "read_records"]

IGNORE = -100
"""The label of a position the loss does not count (PyTorch's cross-entropy default)."""

# llama.cpp's built-in templates (src/llama-chat.cpp), written as Jinja so training renders a
# conversation exactly as llama-server will when it serves the model with `--chat-template`.
BUILTIN_TEMPLATES = {
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "gemma": (
        "{% set ns = namespace(system='') %}{% for m in messages %}"
        "{% if m['role'] == 'system' %}{% set ns.system = ns.system + m['content'] | trim %}"
        "{% else %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
        "<start_of_turn>{{ role }}\n{% if ns.system and role != 'model' %}{{ ns.system }}\n\n"
        "{% set ns.system = '' %}{% endif %}{{ m['content'] | trim }}<end_of_turn>\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
}


class Tokenizer(Protocol):
    eos_token: str | None

    def __call__(self, text: str, **kwargs: Any) -> Any: ...

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Example:
    ids: tuple[int, ...]
    labels: tuple[int, ...]
    """The id at each position the loss counts, IGNORE elsewhere."""

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file already passed by `check_data` (read within the same
    bounds: a file changed since is refused, not trusted)."""
    with open(path, "rb") as f:
        for line in jsonl.read_lines(f):
            if line.problem is not None or not isinstance(line.value, dict):
                raise FormatError(f"{path}: line {line.number}: {line.problem or 'not an object'}")
            yield line.value


def _render(tokenizer: Tokenizer, template: str | None, messages: list[dict[str, Any]],
            tools: Any, generation: bool) -> str:  # fmt: skip
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation}
    if template is not None:
        kwargs["chat_template"] = template
    if tools:
        kwargs["tools"] = tools
    return str(tokenizer.apply_chat_template(messages, **kwargs))


def _chat_spans(tokenizer: Tokenizer, template: str | None,
                record: dict[str, Any]) -> tuple[str, list[tuple[int, int]]]:  # fmt: skip
    """The rendered conversation and the character spans of the assistant turns trained on
    (each turn's text and its end-of-turn marker)."""
    messages = [{k: v for k, v in m.items() if k != "weight"} for m in record["messages"]]
    tools = record.get("tools")
    text = _render(tokenizer, template, messages, tools, generation=False)
    spans = []
    for i, message in enumerate(record["messages"]):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        before = _render(tokenizer, template, messages[:i], tools, generation=True)
        through = _render(tokenizer, template, messages[: i + 1], tools, generation=False)
        if not (text.startswith(through) and through.startswith(before)):
            raise UsageError(
                "the chat template does not render a conversation as the sum of its turns, "
                "so the assistant's tokens cannot be told apart; use prompt/completion data"
            )
        spans.append((len(before), len(through.rstrip())))
    return text, spans


def encode(records: Sequence[dict[str, Any]], kind: str, tokenizer: Tokenizer,
           template: str | None, max_length: int) -> list[Example]:  # fmt: skip
    """Token ids and labels for each record (`kind` as `check_data` found it). A record longer
    than `max_length` tokens is cut; one with nothing left to train on is an error naming it."""
    examples = []
    for number, record in enumerate(records, start=1):
        if kind == "chat":
            text, spans = _chat_spans(tokenizer, template, record)
        elif kind == "prompt-completion":
            eos = tokenizer.eos_token or ""
            text = record["prompt"] + record["completion"] + eos
            spans = [(len(record["prompt"]), len(text))]
        else:
            text = record["text"] + (tokenizer.eos_token or "")
            spans = [(0, len(text))]
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
        ids = list(encoded["input_ids"])[:max_length]
        offsets = list(encoded["offset_mapping"])[:max_length]
        # A token is trained on when it overlaps a trained span (a completion's first token
        # may carry the space that ends its prompt).
        labels = [
            token if end > start and any(start < e and end > s for s, e in spans) else IGNORE
            for token, (start, end) in zip(ids, offsets, strict=True)
        ]
        example = Example(tuple(ids), tuple(labels))
        if example.trained_tokens == 0:
            raise UsageError(
                f"example {number}: no token left to train on within {max_length} tokens "
                "(raise --max-length or shorten it)"
            )
        examples.append(example)
    return examples
