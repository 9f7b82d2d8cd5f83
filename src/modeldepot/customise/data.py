"""Fine-tuning data, checked before any training starts: a JSONL file with one example per line
in one of the formats people already have.

- OpenAI's chat fine-tuning format: `{"messages": [{"role", "content", "weight"?}, ...]}` (an
  optional `weight` of 0 or 1 on assistant messages says whether it is trained on; optional
  `tools` and assistant `tool_calls`);
- `{"prompt": ..., "completion": ...}` (the completion is trained on);
- `{"text": ...}` (all of it is trained on).

Every record is checked; a bad one is named by its line and field. One file holds one format. A
record is at most `MAX_LINE` bytes (4 MiB) and nests at most `MAX_DEPTH` (64) levels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeldepot import jsonl
from modeldepot.errors import FormatError, NotFound

__all__ = ["FORMATS", "MAX_DEPTH", "MAX_LINE", "DataReport", "check_data"]

FORMATS = ("chat", "prompt-completion", "text")
ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_LINE = jsonl.MAX_LINE
"""Longest record, in bytes (4 MiB)."""
MAX_DEPTH = jsonl.MAX_DEPTH
"""Deepest nesting of a record's arrays and objects (64)."""
MAX_ERRORS = 50


@dataclass
class DataReport:
    path: str
    format: str | None = None
    examples: int = 0
    trained_messages: int = 0
    """Assistant messages (chat), completions or texts that the loss counts."""
    characters: int = 0
    roles: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.examples > 0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "examples": self.examples,
                "trained_messages": self.trained_messages, "characters": self.characters,
                "roles": dict(self.roles), "ok": self.ok, "errors": self.errors}  # fmt: skip


def _kind(record: dict[str, Any]) -> str | None:
    if "messages" in record:
        return "chat"
    if "prompt" in record or "completion" in record:
        return "prompt-completion"
    if "text" in record:
        return "text"
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _chat(record: dict[str, Any], report: DataReport) -> list[str]:
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        return ["messages: a non-empty list of messages"]
    problems = []
    trained = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: an object with a role and content")
            continue
        role = message.get("role")
        if role not in ROLES:
            problems.append(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
            continue
        report.roles[role] += 1
        content = message.get("content")
        calls = message.get("tool_calls")
        if role == "assistant" and calls is not None:
            if not isinstance(calls, list) or not calls:
                problems.append(f"{where}.tool_calls: a non-empty list")
        elif not _text(content):
            problems.append(f"{where}.content: a non-empty string")
        if "weight" in message:
            if role != "assistant":
                problems.append(f"{where}.weight: only assistant messages have a weight")
            elif message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
                problems.append(f"{where}.weight: 0 or 1")
        if role == "assistant" and message.get("weight", 1) == 1:
            trained += 1
        if isinstance(content, str):
            report.characters += len(content)
    tools = record.get("tools")
    described = isinstance(tools, list) and all(
        isinstance(t, dict) and isinstance(t.get("function"), dict) for t in tools
    )
    if tools is not None and not described:
        problems.append("tools: a list of {type: function, function: {...}}")
    if not problems and trained == 0:
        problems.append("messages: no assistant message to train on (all weights are 0)")
    report.trained_messages += trained
    return problems


def _prompt_completion(record: dict[str, Any], report: DataReport) -> list[str]:
    problems = [f"{key}: a non-empty string" for key in ("prompt", "completion")
                if not _text(record.get(key))]  # fmt: skip
    if not problems:
        report.trained_messages += 1
        report.characters += len(record["prompt"]) + len(record["completion"])
    return problems


def _plain(record: dict[str, Any], report: DataReport) -> list[str]:
    if not _text(record.get("text")):
        return ["text: a non-empty string"]
    report.trained_messages += 1
    report.characters += len(record["text"])
    return []


_CHECKS = {"chat": _chat, "prompt-completion": _prompt_completion, "text": _plain}


def check_data(path: Path) -> DataReport:
    """Check every record of a JSONL training file (raises NotFound for a missing file). Lines
    are read within bounds (`modeldepot.jsonl`: at most `MAX_LINE` bytes, `MAX_DEPTH` levels of
    nesting); one that breaks them is reported by its number like any other bad record."""
    report = DataReport(str(path))
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: a folder, not a JSONL file") from None
    with handle:
        for line in jsonl.read_lines(handle, max_bytes=MAX_LINE, max_depth=MAX_DEPTH):
            if len(report.errors) >= MAX_ERRORS:
                report.errors.append(f"(stopped after {MAX_ERRORS} errors)")
                break
            where = f"line {line.number}"
            if line.problem is not None:
                report.errors.append(f"{where}: {line.problem}")
                continue
            record = line.value
            if not isinstance(record, dict):
                report.errors.append(f"{where}: a JSON object")
                continue
            kind = _kind(record)
            if kind is None:
                report.errors.append(f"{where}: no `messages`, `prompt`/`completion` or `text`")
                continue
            if report.format is None:
                report.format = kind
            elif kind != report.format:
                report.errors.append(f"{where}: a {kind} record in a {report.format} file")
                continue
            report.errors += [f"{where}: {p}" for p in _CHECKS[kind](record, report)]
            report.examples += 1
    if report.examples == 0 and not report.errors:
        report.errors.append(f"{path}: no examples")
    return report
