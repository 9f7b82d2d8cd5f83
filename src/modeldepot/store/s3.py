"""Blobs in S3-compatible object storage (`DEPOT_BLOBS=s3://BUCKET/PREFIX`), through obstore
(the Python binding of the Rust `object_store` crate, which Apache Arrow and DataFusion use).

- A stream (a packaged model's chunks, another depot's blob) is written to
  `PREFIX/tmp/HOST-PID-RANDOM` (multipart) while hashed; only once the digest is known (and
  matches `expected`) is the object copied to `PREFIX/sha256/HEX` and the temporary one
  deleted. A local file is hashed first and then uploaded straight under its digest while
  hashed again: a multipart upload completes only after its last part, and the upload is
  aborted (no object appears) if the bytes differ from the digest. Either way a blob is
  visible under its digest only when its bytes are verified, and an interrupted write leaves
  at most a temporary object or an unfinished multipart upload, never a blob.
- Reads verify: whatever the depot reads whole is hashed as it is read.
- Consumers that need a real file (engines, scanners, signing) get one from a local cache
  (`DEPOT_HOME/cache/blobs`), filled and verified on first use and kept within a byte budget,
  the least recently used (by access time, which a use sets) evicted first. `verified_path`
  hashes a cached copy again only when the file changed (size, modification and change
  times, inode) since this process last found it good or used it unchanged, so a file
  served range by range is hashed once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from modeldepot.errors import DepotError, IntegrityError, NotFound, UsageError
from modeldepot.refs import parse_digest
from modeldepot.store.blobs import Blob, Progress, Readable

__all__ = ["S3BlobStore", "S3Config", "StorageUnavailable"]

CHUNK = 8 * 1024 * 1024
"""Multipart part size (and read size)."""


class StorageUnavailable(DepotError):
    """The object store could not be reached or refused the request."""

    http_status = 503


class S3Config:
    def __init__(self, url: str, *, endpoint: str | None, access_key: str | None,
                 secret_key: str | None, region: str | None) -> None:  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise UsageError(f"DEPOT_BLOBS={url!r}: expected s3://BUCKET[/PREFIX]")
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.endpoint = endpoint
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region or "us-east-1"


def _hex(digest: str) -> str:
    return parse_digest(digest).removeprefix("sha256:")


def _stamp(path: Path) -> str:
    return _stamp_of(path.stat())


def _stamp_of(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _fail(exc: Exception, what: str) -> DepotError:
    if isinstance(exc, FileNotFoundError) or type(exc).__name__ == "NotFoundError":
        return NotFound(f"{what}: not in the object store")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageUnavailable(f"object storage: {what} failed ({message[:300]})")


class S3BlobStore:
    def __init__(self, config: S3Config, cache: Path, cache_budget: int) -> None:
        from obstore.store import S3Store

        self.config = config
        self.location = config.url
        self.cache = cache
        self.cache_budget = cache_budget
        plain_http = bool(config.endpoint and config.endpoint.startswith("http://"))
        options: Any = {"allow_http": True} if plain_http else None
        self._store = S3Store(
            config.bucket, prefix=config.prefix or None, endpoint=config.endpoint,
            access_key_id=config.access_key, secret_access_key=config.secret_key,
            region=config.region, virtual_hosted_style_request=False,
            client_options=options,
        )  # fmt: skip
        self._good: dict[str, str] = {}
        """Digest to the stamp of its cached copy when last found good."""

    # -- names ------------------------------------------------------------------------------

    @staticmethod
    def _key(digest: str) -> str:
        return f"sha256/{_hex(digest)}"

    def _cached(self, digest: str) -> Path:
        return self.cache / f"sha256-{_hex(digest)}"

    # -- reading ----------------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        try:
            self.size(digest)
        except NotFound:
            return False
        return True

    def size(self, digest: str) -> int:
        import obstore

        try:
            return int(obstore.head(self._store, self._key(digest))["size"])
        except Exception as exc:
            raise _fail(exc, digest) from None

    def _chunks(self, digest: str) -> Iterator[bytes]:
        import obstore

        try:
            result = obstore.get(self._store, self._key(digest))
            for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)
        except Exception as exc:
            raise _fail(exc, digest) from None

    def read_bytes(self, digest: str) -> bytes:
        data = b"".join(self._chunks(digest))
        if f"sha256:{hashlib.sha256(data).hexdigest()}" != parse_digest(digest):
            raise IntegrityError(f"{digest}: the object store's bytes do not match their digest")
        return data

    def open(self, digest: str) -> BinaryIO:
        return open(self.local_path(digest), "rb")

    def local_path(self, digest: str) -> Path:
        """The blob in the local cache (downloaded and verified on first use)."""
        path = self._cached(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            pass
        else:  # most recently used; the modification time stays the file's own
            hexed, before = _hex(digest), _stamp_of(st)
            os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
            if self._good.get(hexed) == before:  # still good: the new change time is ours
                self._good[hexed] = _stamp(path)
            return path
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f".{_hex(digest)}.{os.getpid()}.{secrets.token_hex(4)}.partial"
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for chunk in self._chunks(digest):
                    h.update(chunk)
                    out.write(chunk)
            if f"sha256:{h.hexdigest()}" != parse_digest(digest):
                raise IntegrityError(
                    f"{digest}: the object store's bytes do not match their digest"
                )
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
            self._good[_hex(digest)] = _stamp(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._evict(keep=path)
        return path

    def verified_path(self, digest: str, progress: Progress | None = None) -> Path:
        path = self.local_path(digest)
        if self._good.get(_hex(digest)) == _stamp(path):
            return path
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
                if progress:
                    progress(len(chunk))
        if f"sha256:{h.hexdigest()}" != parse_digest(digest):
            path.unlink(missing_ok=True)  # a damaged cache copy: fetched again next time
            raise IntegrityError(f"{digest}: the cached copy changed; it was removed")
        self._good[_hex(digest)] = _stamp(path)
        return path

    def _evict(self, keep: Path) -> None:
        """Keep the cache within its budget, least recently used out first."""
        entries = [(p.stat().st_atime, p.stat().st_size, p) for p in self.cache.glob("sha256-*")]
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.cache_budget:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

    def rehash(self, digest: str, progress: Progress | None = None) -> str:
        h = hashlib.sha256()
        for chunk in self._chunks(digest):
            h.update(chunk)
            if progress:
                progress(len(chunk))
        return f"sha256:{h.hexdigest()}"

    def digests(self) -> Iterator[tuple[str, int]]:
        import obstore

        try:
            for batch in obstore.list(self._store, prefix="sha256/"):
                for meta in batch:
                    name = str(meta["path"]).rsplit("/", 1)[-1]
                    yield f"sha256:{name}", int(meta["size"])
        except Exception as exc:
            raise _fail(exc, "listing the blobs") from None

    # -- writing ----------------------------------------------------------------------------

    def _temporary_name(self) -> str:
        return f"tmp/{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(8)}"

    def _write(self, sources: Iterable[Readable], expected: str | None,
               progress: Progress | None) -> Blob:  # fmt: skip
        import obstore

        h = hashlib.sha256()
        size = 0

        def chunks() -> Iterator[bytes]:
            nonlocal size
            buffer = bytearray(CHUNK)
            for source in sources:
                while n := source.readinto(buffer):
                    piece = bytes(buffer[:n])
                    h.update(piece)
                    size += n
                    if progress:
                        progress(n)
                    yield piece

        temporary = self._temporary_name()
        try:
            obstore.put(self._store, temporary, chunks(), chunk_size=CHUNK)
            digest = f"sha256:{h.hexdigest()}"
            if expected is not None and parse_digest(expected) != digest:
                raise IntegrityError(
                    f"content has digest {digest} but {parse_digest(expected)} was expected: "
                    "the source is corrupt or not the file it claims to be; nothing was stored"
                )
            if self.has(digest):
                return Blob(digest, size, new=False)
            obstore.copy(self._store, temporary, self._key(digest))
            return Blob(digest, size, new=True)
        except DepotError:
            raise
        except Exception as exc:
            raise _fail(exc, "storing a blob") from None
        finally:
            with contextlib.suppress(Exception):
                obstore.delete(self._store, temporary)

    def put_bytes(self, data: bytes) -> Blob:
        """Bytes in memory: their digest is known before anything is sent, and one PUT (which
        is atomic) stores them under it."""
        import obstore

        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if self.has(digest):
            return Blob(digest, len(data), new=False)
        try:
            obstore.put(self._store, self._key(digest), data)
        except Exception as exc:
            raise _fail(exc, "storing a blob") from None
        return Blob(digest, len(data), new=True)

    def put_file(self, source: Path, *, expected: str | None = None,
                 progress: Progress | None = None, consume: bool = False) -> Blob:  # fmt: skip
        """A local file: hashed first, then uploaded straight under its digest while hashed
        again (a file that changed meanwhile aborts the upload before it completes, so no
        object appears), and kept in the local cache as it goes."""
        import obstore

        try:
            size = Path(source).stat().st_size
            digest = _file_digest(Path(source))
        except FileNotFoundError:
            raise NotFound(f"{source}: no such file") from None
        if expected is not None and parse_digest(expected) != digest:
            raise IntegrityError(
                f"content has digest {digest} but {parse_digest(expected)} was expected: "
                "the source is corrupt or not the file it claims to be; nothing was stored"
            )
        if self.has(digest):
            if progress:
                progress(size)
            return Blob(digest, size, new=False)
        self.cache.mkdir(parents=True, exist_ok=True)
        cached = self.cache / f".{_hex(digest)}.{os.getpid()}.{secrets.token_hex(4)}.partial"

        # The cache copy is written by a thread of its own while the upload goes on.
        pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=8)

        def write_copy() -> None:
            with open(cached, "wb") as copy:
                while (piece := pieces.get()) is not None:
                    copy.write(piece)

        writer = threading.Thread(target=write_copy, daemon=True)

        def chunks() -> Iterator[bytes]:
            h = hashlib.sha256()
            with open(source, "rb") as f:
                while piece := f.read(CHUNK):
                    h.update(piece)
                    pieces.put(piece)
                    if progress:
                        progress(len(piece))
                    yield piece
            if f"sha256:{h.hexdigest()}" != digest:
                raise IntegrityError(f"{source} changed while it was being stored")

        writer.start()
        try:
            try:
                obstore.put(self._store, self._key(digest), chunks(), chunk_size=CHUNK)
            finally:
                pieces.put(None)
                writer.join()
            os.chmod(cached, 0o444)
            os.replace(cached, self._cached(digest))
        except DepotError:
            raise
        except Exception as exc:
            raise _fail(exc, "storing a blob") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                cached.unlink()
        self._evict(keep=self._cached(digest))
        if consume:
            Path(source).unlink(missing_ok=True)
        return Blob(digest, size, new=True)

    def put_stream(self, sources: Iterable[Readable], *, expected: str | None = None,
                   progress: Progress | None = None) -> Blob:  # fmt: skip
        return self._write(sources, expected, progress)

    def delete(self, digest: str) -> None:
        import obstore

        with contextlib.suppress(FileNotFoundError):
            self._cached(digest).unlink()
        try:
            obstore.delete(self._store, self._key(digest))
        except Exception as exc:
            error = _fail(exc, digest)
            if not isinstance(error, NotFound):
                raise error from None

    # -- unfinished writes ------------------------------------------------------------------

    def _temporaries(self) -> list[tuple[str, int]]:
        import obstore

        try:
            return [
                (str(m["path"]), int(m["size"]))
                for batch in obstore.list(self._store, prefix="tmp/")
                for m in batch
            ]
        except Exception as exc:
            raise _fail(exc, "listing unfinished writes") from None

    def temporary_bytes(self) -> int:
        return sum(size for _, size in self._temporaries())

    def clean_temporaries(self, *, all_owners: bool = False) -> int:
        """Unfinished writes of dead processes on this host (or everyone's, with
        `all_owners`). A multipart upload never completed leaves no object to clean."""
        import obstore

        freed = 0
        host = socket.gethostname()
        for path, size in self._temporaries():
            name = path.rsplit("/", 1)[-1]
            owner_host, _, rest = name.rpartition("-")[0].rpartition("-")
            pid = rest
            mine_dead = owner_host == host and pid.isdigit() and not _alive(int(pid))
            if all_owners or mine_dead:
                with contextlib.suppress(Exception):
                    obstore.delete(
                        self._store,
                        path.removeprefix(f"{self.config.prefix}/" if self.config.prefix else ""),
                    )
                    freed += size
        return freed


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(CHUNK):
            h.update(piece)
    return f"sha256:{h.hexdigest()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
