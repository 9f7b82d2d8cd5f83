"""Talking to a remote that may be hostile: another depot (`depot pull http://...`, `depot
fetch`) or an OCI registry (`depot pull oci://...`, `depot push`).

Nothing a remote sends is trusted, its sizes included:

- a JSON answer (a manifest, an index, a model's metadata, a token, an error) is read as a
  stream and refused past `MAX_JSON` bytes;
- a blob streams into the store and is refused as soon as more bytes arrive than the manifest
  declares, or when the stream ends short of it (and, as always, when its bytes do not hash to
  its digest); the store removes the temporary file;
- a model's config is at most `MAX_JSON` bytes as well, and is read as a config or refused;
- every request has a connect and read timeout (`DEPOT_REMOTE_TIMEOUT`), and a whole pull a
  deadline (`DEPOT_PULL_DEADLINE`), so a remote that trickles bytes cannot hold it forever;
- redirects (registries send blobs from storage elsewhere) are followed at most
  `MAX_REDIRECTS` times; a loop is refused;
- answers are asked for uncompressed (`Accept-Encoding: identity`) and read raw, so a small
  body cannot inflate into a large one.

Each failure is one DepotError naming the remote; a pull records nothing until every byte is
stored and checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from modeldepot.config import Settings
from modeldepot.errors import DepotError, FormatError, IntegrityError
from modeldepot.formats.base import ModelInfo
from modeldepot.store import Blob, BlobStore, Descriptor, Manifest, ModelConfig, Progress

__all__ = [
    "MAX_JSON",
    "MAX_REDIRECTS",
    "Answer",
    "ChunkReader",
    "Hashes",
    "Limits",
    "Remote",
    "check_config_size",
    "read_config",
]

MAX_JSON = 16 * 1024 * 1024
"""Bytes of any JSON answer or config a remote may send (a model's manifest is a few KiB)."""
MAX_REDIRECTS = 5
"""Redirects followed for one request."""
_ERROR_BODY = 64 * 1024
"""Bytes of an error answer read for its message."""
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How long and how much a remote may take (from `Settings`)."""

    timeout: float = 60.0
    """Seconds to connect, and to wait for each read."""
    deadline: float = 6 * 3600.0
    """Seconds for everything asked of one remote (a whole pull)."""
    max_json: int = MAX_JSON

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(timeout=settings.remote_timeout, deadline=settings.pull_deadline)


@dataclass(frozen=True)
class Hashes:
    """What a downloaded file hashes to (hex): its sha256 and its git blob id."""

    sha256: str
    git: str


@dataclass(frozen=True)
class Answer:
    """A remote's answer, its body read whole (and bounded)."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise FormatError(f"{what}: the answer is not JSON") from None

    @property
    def text(self) -> str:
        """The start of the body, for an error message (one line)."""
        return " ".join(self.body[:200].decode(errors="replace").split())


Check = Callable[[Answer, str], None]
"""Raises the DepotError an answer's status means (`what` names the thing asked for)."""


def _mib(n: int) -> str:
    return f"{n / 1024**2:g} MiB" if n >= 1024**2 else f"{n} bytes"


class Remote:
    """An HTTP client for one remote: bounded reads, timeouts, a deadline, few redirects."""

    def __init__(
        self,
        who: str,
        limits: Limits | None = None,
        *,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.who = who
        """The remote as messages name it: "the other depot", "the registry"."""
        self.limits = limits or Limits()
        self._until = time.monotonic() + self.limits.deadline
        self.http = httpx.Client(
            headers={"Accept-Encoding": "identity", **(headers or {})},
            timeout=httpx.Timeout(self.limits.timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asking ----------------------------------------------------------------------------

    def request(self, method: str, url: str, what: str, *, limit: int | None = None,
                **kwargs: Any) -> Answer:  # fmt: skip
        """Ask, and read the answer whole: at most `limit` bytes (`MAX_JSON` by default)."""
        limit = self.limits.max_json if limit is None else limit
        with self.guard(what), self.http.stream(method, url, timeout=self._timeout(what),
                                                **kwargs) as response:  # fmt: skip
            body = self._read(response, what, limit)
        return Answer(response.status_code, response.headers, body)

    def get(self, url: str, what: str, **kwargs: Any) -> Answer:
        return self.request("GET", url, what, **kwargs)

    def blob(self, url: str, what: str, descriptor: Descriptor, store: BlobStore, check: Check,
             progress: Progress | None = None) -> Blob:  # fmt: skip
        """Stream a blob into `store`: refused (nothing stored) when the remote sends more or
        fewer bytes than `descriptor` declares, or bytes of another digest."""
        with self.guard(what), self.http.stream("GET", url, timeout=self._timeout(what)) as got:
            if got.status_code != 200:
                check(Answer(got.status_code, got.headers,
                             self._read(got, what, _ERROR_BODY, cut=True)), what)  # fmt: skip
                raise DepotError(f"{what}: {self.who} answered {got.status_code}")
            reader = ChunkReader(got.iter_raw(), limit=descriptor.size,
                                 what=what, tick=lambda: self._check_deadline(what))  # fmt: skip
            return store.put_stream([reader], expected=descriptor.digest, progress=progress)

    def download(self, url: str, what: str, dest: Path, size: int, check: Check, *,
                 declared_by: str, progress: Progress | None = None) -> Hashes:  # fmt: skip
        """Stream the body at `url` into the new file `dest`: exactly `size` bytes (more or
        fewer is refused as it arrives, and `dest` removed). Returns the hashes of what was
        written, for the caller to compare with what the remote declared."""
        sha256 = hashlib.sha256()
        git = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        buffer = bytearray(_CHUNK)
        try:
            timeout = self._timeout(what)
            with self.guard(what), self.http.stream("GET", url, timeout=timeout) as got:
                if got.status_code != 200:
                    check(Answer(got.status_code, got.headers,
                                 self._read(got, what, _ERROR_BODY, cut=True)), what)  # fmt: skip
                    raise DepotError(f"{what}: {self.who} answered {got.status_code}")
                reader = ChunkReader(got.iter_raw(), limit=size, what=what,
                                     tick=lambda: self._check_deadline(what),
                                     declared_by=declared_by)  # fmt: skip
                with open(dest, "xb") as out:
                    while n := reader.readinto(buffer):
                        piece = memoryview(buffer)[:n]
                        sha256.update(piece)
                        git.update(piece)
                        out.write(piece)
                        if progress:
                            progress(n)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return Hashes(sha256.hexdigest(), git.hexdigest())

    # -- limits ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn what httpx raises into one line naming the remote."""
        try:
            yield
        except httpx.TooManyRedirects:
            raise DepotError(f"{what}: {self.who} redirected more than {MAX_REDIRECTS} times "
                             "(a redirect loop?); refused") from None  # fmt: skip
        except httpx.TimeoutException:
            if time.monotonic() >= self._until:
                raise self._late(what) from None
            raise DepotError(f"{what}: {self.who} did not answer within {self.limits.timeout:g} "
                             "s (DEPOT_REMOTE_TIMEOUT)") from None  # fmt: skip
        except httpx.HTTPError as exc:
            raise DepotError(f"{what}: cannot reach {self.who} ({exc})") from None

    def _late(self, what: str) -> DepotError:
        return DepotError(f"{what}: {self.who} took longer than {self.limits.deadline:g} s "
                          "in all (DEPOT_PULL_DEADLINE); refused")  # fmt: skip

    def _check_deadline(self, what: str) -> None:
        if time.monotonic() >= self._until:
            raise self._late(what)

    def _timeout(self, what: str) -> httpx.Timeout:
        """The connect and read timeout, cut short by the deadline."""
        left = self._until - time.monotonic()
        if left <= 0:
            raise self._late(what)
        return httpx.Timeout(min(self.limits.timeout, left))

    def _read(self, response: httpx.Response, what: str, limit: int, cut: bool = False) -> bytes:
        """The body, at most `limit` bytes: more is refused (or, with `cut`, left unread)."""
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            self._check_deadline(what)
            size += len(chunk)
            if size > limit:
                if cut:
                    parts.append(chunk[: limit - size + len(chunk)])
                    break
                raise FormatError(f"{what}: {self.who} sent more than {_mib(limit)} where "
                                  "a JSON answer was expected; refused")  # fmt: skip
            parts.append(chunk)
        return b"".join(parts)


class ChunkReader:
    """Chunks (a streamed HTTP body) read like a file (`readinto`), for the blob store; with
    `limit`, exactly that many bytes or IntegrityError (a longer body is refused as soon as
    the excess arrives). `tick` is called before each chunk (a deadline's check)."""

    def __init__(self, chunks: Iterable[bytes], *, limit: int | None = None, what: str = "",
                 tick: Callable[[], None] | None = None,
                 declared_by: str = "the manifest") -> None:  # fmt: skip
        self._parts = iter(chunks)
        self._pending = b""
        self._limit = limit
        self._what = what
        self._tick = tick
        self._seen = 0
        self._by = declared_by

    def readinto(self, buffer: bytearray, /) -> int:
        while not self._pending:
            if self._tick is not None:
                self._tick()
            try:
                self._pending = next(self._parts)
            except StopIteration:
                if self._limit is not None and self._seen < self._limit:
                    raise IntegrityError(f"{self._what}: the stream ended after {self._seen} of "
                                         f"the {self._limit} bytes {self._by} declares, so "
                                         "it cannot match its digest; nothing was "
                                         "stored") from None  # fmt: skip
                return 0
            self._seen += len(self._pending)
            if self._limit is not None and self._seen > self._limit:
                raise IntegrityError(f"{self._what}: more than the {self._limit} bytes "
                                     f"{self._by} declares arrived, so it cannot match its "
                                     "digest; refused, nothing was stored")  # fmt: skip
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def read_config(store: BlobStore, manifest: Manifest, what: str) -> ModelInfo:
    """The metadata in a pulled version's config blob (stored and checked by then), or
    FormatError when the config is not a model config."""
    try:
        config = ModelConfig.model_validate_json(store.read_bytes(manifest.config.digest))
        return ModelInfo.from_dict(config.metadata)
    except (ValidationError, TypeError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise FormatError(f"{what}: the model's config is not a model config ({first}); "
                          "nothing was recorded") from None  # fmt: skip


def check_config_size(manifest: Manifest, what: str) -> None:
    """Refuse, before fetching anything, a config larger than a config can be."""
    if manifest.config.size > MAX_JSON:
        raise FormatError(f"{what}: the manifest declares a config of {manifest.config.size} "
                          f"bytes, more than the {_mib(MAX_JSON)} a config may have; "
                          "refused")  # fmt: skip
