"""The layout `server/hf/xorbs.py` gives a stored file for the Xet protocol: every range of
every file size, rebuilt from the terms and xorb bytes it names, is the file's own bytes (the
real client, `hf_xet`, rebuilds files from a running server in test_hf.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modeldepot.server.hf import xorbs
from modeldepot.server.hf.xet import _Stored
from modeldepot.server.hf.xorbs import CHUNK, PER_XORB

XORB = CHUNK * PER_XORB


def _unframe(data: bytes) -> bytes:
    out, at = bytearray(), 0
    while at < len(data):
        assert data[at] == 0 and data[at + 4] == 0, "version 0, no compression"
        length = int.from_bytes(data[at + 1 : at + 4], "little")
        assert length == int.from_bytes(data[at + 5 : at + 8], "little") <= CHUNK
        out += data[at + 8 : at + 8 + length]
        at += 8 + length
    assert at == len(data), "a range ends on a chunk's end"
    return bytes(out)


def _reader(data: bytes) -> xorbs.ReadInto:
    def read_into(buffers: list[memoryview], offset: int) -> int:
        done = 0
        for buffer in buffers:
            piece = data[offset + done : offset + done + len(buffer)]
            buffer[: len(piece)] = piece
            done += len(piece)
        return done

    return read_into


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, XORB, XORB + 5, 2 * XORB + 3])
def test_every_range_rebuilds_the_files_bytes(size: int) -> None:
    data = os.urandom(size)
    total = sum(xorbs.xorb_length(size, n) for n in range(xorbs.xorb_count(size)))
    assert total == size + xorbs.HEADER * -(-size // CHUNK)
    for start, end in [(0, size - 1), (size // 3, size - 1), (size // 2, size * 3 // 4),
                       (size - 1, size - 1)]:  # fmt: skip
        offset, terms = xorbs.plan(size, start, end)
        rebuilt = b""
        for term in terms:
            assert term.bytes[1] < xorbs.xorb_length(size, term.xorb)
            blocks = xorbs.xorb_bytes(size, term.xorb, *term.bytes, _reader(data))
            piece = _unframe(b"".join(blocks))
            assert len(piece) == term.length
            rebuilt += piece
        assert rebuilt[offset : offset + end - start + 1] == data[start : end + 1]
        assert offset < CHUNK and len(rebuilt) - offset - (end - start + 1) < CHUNK


def test_a_short_read_is_an_error_not_short_bytes() -> None:
    blocks = xorbs.xorb_bytes(3 * CHUNK, 0, 0, xorbs.xorb_length(3 * CHUNK, 0) - 1,
                              _reader(b"x" * (2 * CHUNK)))  # fmt: skip
    with pytest.raises(OSError, match="ended at byte"):
        list(blocks)


def test_reads_that_give_fewer_bytes_than_asked_still_fill_every_chunk() -> None:
    size = 2 * CHUNK + 77
    data = os.urandom(size)
    whole = _reader(data)

    def trickle(buffers: list[memoryview], offset: int) -> int:  # 1000 bytes a call at most
        return whole([buffers[0][:1000]], offset)

    got = b"".join(xorbs.xorb_bytes(size, 0, 0, xorbs.xorb_length(size, 0) - 1, trickle))
    assert _unframe(got) == data
    # a range that starts and ends inside chunks, headers included
    start, end = CHUNK + 3, 2 * (CHUNK + xorbs.HEADER) + 20
    part = b"".join(xorbs.xorb_bytes(size, 0, start, end, trickle))
    assert part == got[start : end + 1]


def test_a_transfer_reads_one_descriptor_to_its_end(tmp_path: Path) -> None:
    """Opened by the first read, still readable once the file is gone from its folder (a cache
    may evict it), closed by the end of the transfer."""
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789" * 10)
    stored = _Stored(path)
    first, second = bytearray(10), bytearray(10)
    assert stored.read_into([memoryview(first)], 0) == 10
    path.unlink()
    assert stored.read_into([memoryview(second)], 90) == 10 and bytes(second) == b"0123456789"
    stored.close()
    assert stored.fd == -1
    with pytest.raises(OSError, match="ended"):
        stored.read_into([memoryview(first)], 0)


def test_ids() -> None:
    file_id = "ab" * 32
    assert xorbs.is_file_id(file_id) and not xorbs.is_file_id(file_id.upper())
    assert not xorbs.is_file_id("../" + file_id[3:])
    assert len({xorbs.xorb_id(file_id, n) for n in range(64)}) == 64
    assert all(xorbs.is_file_id(xorbs.xorb_id(file_id, n)) for n in range(4))
