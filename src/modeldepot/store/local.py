"""The blob store on a local filesystem (the default): each distinct file stored once, named
by its sha256, under `DEPOT_HOME/blobs`.

A blob is written to a private temporary file while it is hashed (one pass over the bytes),
flushed with fsync, made read-only, then renamed to `blobs/sha256-<hex>`: a reader never sees
a partial blob, and a crash leaves only a temporary file that the next run removes.

The pass is pipelined so that a large file moves at disk speed: sha256 of one chunk runs on a
helper thread (hashlib releases the GIL) while the previous chunk is written, and the kernel is
asked to start writing each chunk back at once (`sync_file_range`), so the closing fsync finds
little left to do. Where the
filesystem can clone (reflink), the bytes are cloned instead of copied and the clone is hashed;
a hard link is never used, since a later edit of the source would change the stored blob.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from modeldepot.errors import IntegrityError, NotFound
from modeldepot.layout import Layout
from modeldepot.refs import parse_digest
from modeldepot.store.blobs import Blob, Progress, Readable

__all__ = ["LocalBlobStore", "hash_stream"]

CHUNK = 4 * 1024 * 1024
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_NO_CLONE = {errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS, errno.EPERM}
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> Callable[[int, int, int], None]:
    """`sync_file_range(fd, offset, n, WRITE)`: start writeback without waiting (Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, n: None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return lambda fd, offset, n: call(fd, offset, n, _SYNC_FILE_RANGE_WRITE)


_start_writeback = _load_sync_file_range()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hash_stream(
    sources: Iterable[Readable], out_fd: int | None, progress: Progress | None
) -> tuple[str, int]:
    """Hash (and write to `out_fd`) the concatenation of `sources` in one pass.

    Two buffers alternate: while chunk k is hashed on the helper thread, chunk k+1 is read
    and written here; hashing stays in order because each update waits for the last.
    """
    hasher = hashlib.sha256()
    buffers = (bytearray(CHUNK), bytearray(CHUNK))
    size = 0
    turn = 0
    pending: Future[None] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hashing:
        for src in sources:
            while n := src.readinto(buffers[turn]):
                chunk = memoryview(buffers[turn])[:n]
                if pending is not None:
                    pending.result()
                pending = hashing.submit(hasher.update, chunk)
                if out_fd is not None:
                    written = 0
                    while written < n:
                        written += os.write(out_fd, chunk[written:])
                    _start_writeback(out_fd, size, n)
                size += n
                turn = 1 - turn
                if progress:
                    progress(n)
        if pending is not None:
            pending.result()
    return f"sha256:{hasher.hexdigest()}", size


class LocalBlobStore:
    """Blobs under `root/blobs`, temporary files under `root/tmp` (same filesystem)."""

    location: str

    def __init__(self, root: Path) -> None:
        layout = Layout(root)
        self.dir = layout.blobs
        self.tmp = layout.tmp
        self.checked = layout.checked
        """When each blob file was last found to match its digest (size, times, inode)."""
        self.location = str(self.dir)

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    # -- reading ---------------------------------------------------------------------------

    def path(self, digest: str) -> Path:
        return self.dir / parse_digest(digest).replace(":", "-")

    def local_path(self, digest: str) -> Path:
        """The blob's own file (read-only); raises NotFound when it is not stored."""
        path = self.path(digest)
        if not path.is_file():
            raise NotFound(f"blob {digest} is missing from {self.dir}")
        return path

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from {self.dir}") from None

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from {self.dir}") from None

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from {self.dir}") from None

    def digests(self) -> Iterator[tuple[str, int]]:
        """Every stored blob with its size."""
        if not self.dir.is_dir():
            return
        for entry in os.scandir(self.dir):
            if entry.name.startswith("sha256-") and entry.is_file():
                yield entry.name.replace("-", ":", 1), entry.stat().st_size

    def rehash(self, digest: str, progress: Progress | None = None) -> str:
        """Hash a stored blob again and return the digest its bytes have now."""
        try:
            with open(self.path(digest), "rb", buffering=0) as src:
                return hash_stream([src], None, progress)[0]
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from {self.dir}") from None

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Blob:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if self.has(digest):
            return Blob(digest, len(data), new=False)
        with self._temporary() as (tmp, fd):
            os.write(fd, data)
            return self._commit(tmp, fd, digest, len(data), expected=None, cloned=False)

    def put_file(
        self,
        source: Path,
        *,
        expected: str | None = None,
        progress: Progress | None = None,
        clone: bool = True,
        consume: bool = False,
    ) -> Blob:
        """Store one file. With `clone`, try a reflink first and fall back to copying; with
        `consume`, move the file in (hashed where it lies) when it is on the store's
        filesystem."""
        if consume:
            adopted = self._adopt(source, expected, progress)
            if adopted is not None:
                return adopted
        try:
            src = open(source, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"{source}: no such file") from None
        with src, self._temporary() as (tmp, fd):
            if clone and self._clone(src.fileno(), fd):
                size = os.fstat(fd).st_size
                with open(tmp, "rb", buffering=0) as copy:
                    digest, _ = hash_stream([copy], None, progress)
                return self._commit(tmp, fd, digest, size, expected=expected, cloned=True)
            with contextlib.suppress(OSError):
                os.posix_fadvise(src.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            digest, size = hash_stream([src], fd, progress)
            return self._commit(tmp, fd, digest, size, expected=expected, cloned=False)

    def _adopt(self, source: Path, expected: str | None, progress: Progress | None
               ) -> Blob | None:  # fmt: skip
        """Move `source` into the store; None when it lies on another filesystem."""
        self.ensure()
        tmp = self.tmp / f"{os.getpid()}-{secrets.token_hex(8)}.partial"
        try:
            os.rename(source, tmp)
        except FileNotFoundError:
            raise NotFound(f"{source}: no such file") from None
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return None
            raise
        fd = os.open(tmp, os.O_RDONLY)
        try:
            with open(tmp, "rb", buffering=0) as moved:
                digest, size = hash_stream([moved], None, progress)
            return self._commit(tmp, fd, digest, size, expected=expected, cloned=False)
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def put_stream(
        self,
        sources: Iterable[Readable],
        *,
        expected: str | None = None,
        progress: Progress | None = None,
    ) -> Blob:
        """Store the concatenation of several readers as one blob (e.g. a model in chunks)."""
        with self._temporary() as (tmp, fd):
            digest, size = hash_stream(sources, fd, progress)
            return self._commit(tmp, fd, digest, size, expected=expected, cloned=False)

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()
        with contextlib.suppress(FileNotFoundError):
            self._stamp_path(digest).unlink()

    def temporary_bytes(self) -> int:
        """Bytes held by temporary files (imports in progress or interrupted)."""
        if not self.tmp.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.tmp.glob("*"))

    def clean_temporaries(self, *, all_owners: bool = False) -> int:
        """Remove temporary files left by dead processes (or by anyone, when the caller holds
        the store exclusively). Returns how many bytes were freed."""
        freed = 0
        if not self.tmp.is_dir():
            return 0
        for entry in os.scandir(self.tmp):
            owner = entry.name.split("-", 1)[0]
            if not all_owners and owner.isdigit() and _pid_alive(int(owner)):
                continue
            with contextlib.suppress(FileNotFoundError):
                size = entry.stat().st_size
                os.unlink(entry.path)
                freed += size
        return freed

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _temporary(self) -> Iterator[tuple[Path, int]]:
        self.ensure()
        tmp = self.tmp / f"{os.getpid()}-{secrets.token_hex(8)}.partial"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            yield tmp, fd
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @staticmethod
    def _clone(src_fd: int, dst_fd: int) -> bool:
        try:
            fcntl.ioctl(dst_fd, _FICLONE, src_fd)
        except OSError as exc:
            if exc.errno in _NO_CLONE:
                return False
            raise
        return True

    def _commit(
        self, tmp: Path, fd: int, digest: str, size: int, *, expected: str | None, cloned: bool
    ) -> Blob:
        if expected is not None and parse_digest(expected) != digest:
            raise IntegrityError(
                f"content has digest {digest} but {parse_digest(expected)} was expected: "
                "the source is corrupt or not the file it claims to be; nothing was stored"
            )
        final = self.path(digest)
        if final.exists():
            return Blob(digest, size, new=False, cloned=cloned)
        os.fsync(fd)
        os.fchmod(fd, 0o444)
        os.rename(tmp, final)
        _fsync_dir(self.dir)
        self._remember(digest)
        return Blob(digest, size, new=True, cloned=cloned)

    # -- verified reads --------------------------------------------------------------------

    def _stamp_path(self, digest: str) -> Path:
        return self.checked / parse_digest(digest).replace(":", "-")

    @staticmethod
    def _stamp(path: Path) -> str:
        st = path.stat()
        return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"

    def _remember(self, digest: str) -> None:
        """Note the blob file's identity now that its bytes are known to match `digest`."""
        self.checked.mkdir(parents=True, exist_ok=True)
        stamp = self._stamp_path(digest)
        partial = stamp.with_name(f"{stamp.name}.{os.getpid()}.partial")
        partial.write_text(self._stamp(self.path(digest)))
        partial.rename(stamp)

    def verified_path(self, digest: str, progress: Progress | None = None) -> Path:
        """The blob's file, after making sure its bytes still hash to `digest`: hashed again
        only when the file changed (size, times, inode) since it was last found good. Raises
        IntegrityError when the bytes changed, NotFound when the blob is gone."""
        path = self.local_path(digest)
        try:
            if self._stamp_path(digest).read_text() == self._stamp(path):
                return path
        except FileNotFoundError:
            pass
        actual = self.rehash(digest, progress)
        if actual != parse_digest(digest):
            raise IntegrityError(
                f"blob {digest} in {self.dir} has changed on disk (its bytes now hash to "
                f"{actual}); `depot check` lists what is damaged"
            )
        self._remember(digest)
        return path
