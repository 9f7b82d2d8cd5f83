"""Reading an engine's streamed answer straight off its socket.

An engine streams one server-sent event per token. Read through httpx, each event passes
through httpcore and h11 on its way; read here, it is a chunk-size line and a read. That
halves the depot's CPU per relayed token (bench/RESULTS.md), which on a machine whose cores the
engine already uses is decode speed given back to the engine. Only for engines on loopback,
which speak plain HTTP/1.1; remote models go through httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

__all__ = ["EngineStream", "RelayError"]


class RelayError(ConnectionError):
    """The engine closed the connection or answered something that is not HTTP."""


class EngineStream:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int,
        chunked: bool,
    ) -> None:  # fmt: skip
        self._reader = reader
        self._writer = writer
        self.status_code = status
        self._chunked = chunked

    @classmethod
    async def open(cls, url: str, body: dict[str, Any]) -> EngineStream:
        parts = urlsplit(url)
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            payload = json.dumps(body).encode()
            head = (
                f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + payload)
            await writer.drain()
            status_line = await reader.readline()
            fields = status_line.split(b" ", 2)
            if len(fields) < 2 or not fields[0].startswith(b"HTTP/"):
                raise RelayError(f"not an HTTP answer: {status_line[:80]!r}")
            chunked = False
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if writer is not None:
                writer.close()
            raise RelayError(str(exc)) from None
        except BaseException:  # cancelled (the client left): the engine sees the close
            if writer is not None:
                writer.close()
            raise
        return cls(reader, writer, int(fields[1]), chunked)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            if not self._chunked:
                while data := await self._reader.read(65536):
                    yield data
                return
            while True:
                size = int((await self._reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    return
                data = await self._reader.readexactly(size + 2)
                yield data[:-2]
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise RelayError(f"the engine's stream broke off ({exc})") from None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
