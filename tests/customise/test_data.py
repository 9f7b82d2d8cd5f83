"""Fine-tuning data is checked record by record before any training: the three formats people
have are accepted, and every bad record is named by its line and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from modeldepot.customise import check_data

DEPOT = [sys.executable, "-c", "from modeldepot.cli import main; main()"]


def _jsonl(path: Path, *records: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_the_three_formats_are_accepted(tmp_path: Path) -> None:
    chat = check_data(_jsonl(tmp_path / "chat.jsonl",
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Capital of France?"},
                      {"role": "assistant", "content": "Paris.", "weight": 0},
                      {"role": "user", "content": "And of Italy?"},
                      {"role": "assistant", "content": "Rome."}]},
        {"messages": [{"role": "user", "content": "Add 2 and 3."},
                      {"role": "assistant", "content": None, "tool_calls": [
                          {"id": "1", "type": "function",
                           "function": {"name": "add", "arguments": "{}"}}]}],
         "tools": [{"type": "function", "function": {"name": "add"}}]}))  # fmt: skip
    assert chat.ok and chat.format == "chat" and chat.examples == 2
    assert chat.trained_messages == 2  # the weight-0 answer is context, not trained on
    pairs = check_data(_jsonl(tmp_path / "pc.jsonl", {"prompt": "2+2=", "completion": "4"}))
    assert pairs.ok and pairs.format == "prompt-completion"
    text = check_data(_jsonl(tmp_path / "t.jsonl", {"text": "Lighthouses guide ships."}))
    assert text.ok and text.format == "text"


def test_bad_records_are_named_by_line_and_field(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl",
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"messages": [{"role": "bot", "content": "hi"}]},
        "{not json",
        {"messages": [{"role": "user", "content": "hi", "weight": 1},
                      {"role": "assistant", "content": "ok", "weight": 2}]},
        {"messages": [{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "ok", "weight": 0}]},
        {"prompt": "mixed", "completion": "formats"},
        {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]},
        {"nothing": 1},
    )  # fmt: skip
    report = check_data(path)
    assert not report.ok
    joined = "\n".join(report.errors)
    for expected in (
        "line 2: messages[0].role: 'bot'",
        "line 3: not valid JSON",
        "line 4: messages[0].weight: only assistant messages",
        "line 4: messages[1].weight: 0 or 1",
        "line 5: messages: no assistant message to train on",
        "line 6: a prompt-completion record in a chat file",
        "line 7: messages[0].content: a non-empty string",
        "line 8: no `messages`",
    ):
        assert expected in joined, joined
    assert not any(e.startswith("line 1:") for e in report.errors)


def test_the_command_exits_1_with_every_problem(tmp_path: Path) -> None:
    bad = _jsonl(tmp_path / "bad.jsonl", {"prompt": "", "completion": "x"})
    done = subprocess.run([*DEPOT, "data", "check", str(bad), "--json"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert json.loads(done.stdout)["errors"] == ["line 1: prompt: a non-empty string"]
    empty = subprocess.run([*DEPOT, "data", "check", str(_jsonl(tmp_path / "e.jsonl"))],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert empty.returncode == 1 and "no examples" in empty.stderr
    missing = subprocess.run([*DEPOT, "data", "check", str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 1 and "no such file" in missing.stderr


_MEASURED = (
    "import resource, sys\nfrom modeldepot.cli import main\ntry:\n    main()\nfinally:\n"
    "    print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def test_a_huge_or_deeply_nested_line_is_one_clean_error(tmp_path: Path) -> None:
    """A 768 MiB line (a sparse file: nothing of it is written to disk) is reported by its
    number without being held in memory, and so is a line nested 100,000 levels deep; the
    records around them are still checked."""
    good = json.dumps({"text": "Lighthouses guide ships."}).encode() + b"\n"
    path = tmp_path / "hostile.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"text": "')
        f.seek(768 * 1024**2)  # a hole of NUL bytes: one line
        f.write(b'"}\n' + good + b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n" + good)
    done = subprocess.run([sys.executable, "-c", _MEASURED, "data", "check", str(path), "--json"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert not any(word in done.stderr for word in ("Traceback", "MemoryError", "Recursion"))
    report = json.loads(done.stdout)
    assert report["errors"] == [
        "line 1: longer than 4194304 bytes",
        "line 3: nested deeper than 64 levels",
    ]
    assert report["examples"] == 2
    peak_kib = int(done.stderr.rsplit("maxrss", 1)[1])
    assert peak_kib < 256 * 1024, f"the check held {peak_kib} KiB"
