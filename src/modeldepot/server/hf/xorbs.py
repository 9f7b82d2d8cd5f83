"""A stored file as the Xet protocol's xorbs: how `hf_xet` (huggingface_hub's downloader)
rebuilds it from ranges of "xorbs", each a run of chunks that carry an 8-byte header.

The depot stores whole files under their sha256, so it answers with a fixed layout derived from
the file alone, computed, never stored:

    file id    the file's sha256 (64 hex digits, as the protocol's ids are)
    chunks     `CHUNK` bytes of the file each (the last one shorter), stored uncompressed
               (scheme 0): model weights do not compress
    xorb n     chunks n*`PER_XORB` .. (n+1)*`PER_XORB` - 1 (64 MiB of the file), its id the
               sha256 of the file id and n
    chunk k    in xorb bytes: a header (version 0, length, scheme 0, length; the lengths three
               bytes little-endian) then the chunk's bytes

Nothing is deduplicated across files, and the ids are the depot's, not Xet's merkle hashes:
the protocol is used for its native, parallel download path, which reads straight into the
client's file. The bytes a client gets are the bytes admitted; the client's own checks (the
size it was told) and `hf cache verify` (the sha256) hold.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["CHUNK", "HEADER", "PER_XORB", "ReadInto", "Term", "is_file_id", "plan",
           "xorb_bytes", "xorb_count", "xorb_id", "xorb_length"]  # fmt: skip

CHUNK = 128 * 1024
"""Bytes of the file per chunk: the protocol's largest (`MAX_CHUNK_SIZE`)."""
PER_XORB = 512
"""Chunks per xorb: 64 MiB of the file, the protocol's largest xorb."""
HEADER = 8
ReadInto = Callable[[list[memoryview], int], int]
"""Fills the buffers with the stored file's bytes from an offset, and says how many it read
(`os.preadv` on the file): perhaps fewer than asked, 0 at the end of the file."""
_HEX = re.compile(r"[0-9a-f]{64}")


def is_file_id(text: str) -> bool:
    return _HEX.fullmatch(text) is not None


def xorb_id(file_id: str, n: int) -> str:
    return hashlib.sha256(b"modeldepot-xorb\0" + bytes.fromhex(file_id) + n.to_bytes(8, "big")
                          ).hexdigest()  # fmt: skip


def _chunks(size: int) -> int:
    return -(-size // CHUNK)


def xorb_count(size: int) -> int:
    return -(-_chunks(size) // PER_XORB)


def _chunk_length(size: int, k: int) -> int:
    return min(CHUNK, size - k * CHUNK)


def _xorb_chunks(size: int, n: int) -> int:
    return min(_chunks(size), (n + 1) * PER_XORB) - n * PER_XORB


def xorb_length(size: int, n: int) -> int:
    """Bytes of xorb `n` of a file of `size` bytes, headers included."""
    first = n * PER_XORB
    count = _xorb_chunks(size, n)
    return count * HEADER + min(size, (first + count) * CHUNK) - first * CHUNK


@dataclass(frozen=True)
class Term:
    """One run of chunks of one xorb that rebuilds part of the file."""

    xorb: int
    chunks: tuple[int, int]
    """[start, end) within the xorb."""
    length: int
    """Bytes of the file they hold."""
    bytes: tuple[int, int]
    """Where they lie in the xorb: [start, end], end included (an HTTP range)."""


def plan(size: int, start: int, end: int) -> tuple[int, list[Term]]:
    """The terms that rebuild bytes [start, end] (end included, at most size - 1) of a file
    of `size` bytes, and how far into the first term `start` lies."""
    g0, g1 = start // CHUNK, end // CHUNK + 1
    terms = []
    for n in range(g0 // PER_XORB, (g1 - 1) // PER_XORB + 1):
        c0 = max(g0, n * PER_XORB) - n * PER_XORB
        c1 = min(g1, (n + 1) * PER_XORB) - n * PER_XORB
        first, last = n * PER_XORB + c0, n * PER_XORB + c1
        length = min(size, last * CHUNK) - first * CHUNK
        at = c0 * (CHUNK + HEADER)
        terms.append(Term(n, (c0, c1), length, (at, at + length + (c1 - c0) * HEADER - 1)))
    return start - g0 * CHUNK, terms


def _header(length: int) -> bytes:
    three = length.to_bytes(3, "little")
    return b"\0" + three + b"\0" + three


def _fill(read_into: ReadInto, buffers: list[memoryview], offset: int, size: int) -> None:
    """Fill every buffer, however few bytes each read gives."""
    while buffers:
        got = read_into(buffers, offset)
        if got <= 0:
            raise OSError(f"the stored file ended at byte {offset} of {size}")
        offset += got
        while buffers and got >= len(buffers[0]):
            got -= len(buffers.pop(0))
        if got:
            buffers[0] = buffers[0][got:]


def xorb_bytes(size: int, n: int, start: int, end: int, read_into: ReadInto,
               group: int = 32) -> Iterator[memoryview]:  # fmt: skip
    """Bytes [start, end] (end included) of xorb `n`, `group` chunks at a time: each block
    framed in one buffer, the file's bytes read straight into their places between the
    headers (`read_into(buffers, offset)`, as `os.preadv` does). The caller has checked the
    range."""
    step = CHUNK + HEADER
    k = start // step
    last = min(end // step, _xorb_chunks(size, n) - 1)
    while k <= last:
        upto = min(last + 1, k + group)
        offset = (n * PER_XORB + k) * CHUNK
        lengths = [_chunk_length(size, n * PER_XORB + j) for j in range(k, upto)]
        view = memoryview(bytearray(sum(lengths) + HEADER * len(lengths)))
        buffers, at = [], 0
        for length in lengths:
            view[at : at + HEADER] = _header(length)
            buffers.append(view[at + HEADER : at + HEADER + length])
            at += HEADER + length
        _fill(read_into, buffers, offset, size)
        yield view[max(start - k * step, 0) : min(end - k * step + 1, len(view))]
        k = upto
