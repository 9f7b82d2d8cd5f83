"""JSON Lines from outside are read within bounds: a long line is never held whole, deep
nesting is refused before it reaches the stack, and each problem names its line; the batch
reader (`depot batch run`, /v1/files) uses the same bounds."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeldepot.errors import FormatError
from modeldepot.jsonl import loads, read_lines
from modeldepot.server.batches import check_batch


def test_lines_are_parsed_or_named_with_their_problem() -> None:
    data = (b'\xef\xbb\xbf{"a": 1}\n\n  \n' + b"x" * 100 + b"\n" + b"[" * 100 + b"]" * 100
            + b"\n\xff\xfe\n[NaN]\n{broken\n[1, 2]")  # fmt: skip
    lines = list(read_lines(io.BytesIO(data), max_bytes=64, max_depth=8))
    assert [(line.number, line.value, line.problem) for line in lines] == [
        (1, {"a": 1}, None),  # a byte-order mark opening the file is allowed
        (4, None, "longer than 64 bytes"),  # blank lines are counted, not reported
        (5, None, "longer than 64 bytes"),
        (6, None, "not UTF-8 text"),
        (7, None, "not valid JSON (NaN is not valid JSON)"),
        (8, None, lines[5].problem),
        (9, [1, 2], None),  # the last line needs no newline
    ]
    assert lines[5].problem and lines[5].problem.startswith("not valid JSON (Expecting")
    assert loads(b"[" * 8 + b"]" * 8, max_depth=8) == [[[[[[[[]]]]]]]]
    for too_deep in (b"[" * 9 + b"]" * 9, b'{"a": ' * 9 + b"1" + b"}" * 9, b"[" * 10**5):
        with pytest.raises(ValueError, match="nested deeper than 8 levels"):
            loads(too_deep, max_depth=8)


def test_a_line_at_the_bound_is_read_and_the_one_after_a_long_line_too() -> None:
    at_bound = b'"' + b"y" * 62 + b'"'  # 64 bytes
    data = at_bound + b"\n" + b"z" * 1000 + b"\n" + b"7\n"
    lines = list(read_lines(io.BytesIO(data), max_bytes=64))
    assert [(line.number, line.value, line.problem) for line in lines] == [
        (1, "y" * 62, None), (2, None, "longer than 64 bytes"), (3, 7, None)]  # fmt: skip


def test_batch_lines_are_bounded() -> None:
    ok = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/embeddings",
                     "body": {"model": "m", "input": "x"}}).encode()  # fmt: skip
    assert len(check_batch(ok + b"\n")) == 1
    deep = ok[:-1] + b', "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(FormatError, match="line 2: nested deeper than 64 levels"):
        check_batch(ok + b"\n" + deep + b"\n")
    with pytest.raises(FormatError, match="line 1: longer than 8388608 bytes"):
        check_batch(b'{"custom_id": "' + b"x" * 9 * 1024**2 + b'"}\n')


# The peak of this process's own memory (VmHWM, in KiB): getrusage's maxrss would carry over the
# parent's peak across fork and exec, and the parent here is a pytest that has loaded models.
_MEASURED = (
    "import re, sys\nfrom modeldepot.cli import main\ntry:\n    main()\nfinally:\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('maxrss', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
)


def test_batch_run_refuses_a_huge_file_without_reading_it(tmp_path: Path) -> None:
    """A 1 GiB input (sparse: nothing written to disk) is refused by its size, one clean line
    and exit 1, without being read whole."""
    source = tmp_path / "huge.jsonl"
    with open(source, "wb") as f:
        f.truncate(1024**3)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, "batch", "run", str(source), "-o",
         str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "DEPOT_HOME": str(tmp_path / "home"), "DEPOT_DATABASE_URL": ""},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    message, peak = done.stderr.rsplit("maxrss", 1)
    assert message.strip() == "error: a batch file holds at most 200 MiB", message
    assert int(peak) < 512 * 1024, f"peak {int(peak)} KiB: the file was read whole"
