"""Containers: zip (PyTorch, .keras, .npz), tar, 7z and compressed streams (joblib).

Zip archives are checked for the tricks that make two readers see different files: a local
header naming another file than the central directory, bad CRCs, overlapping or duplicate
entries, names that climb out of the extraction folder, members flagged as encrypted in either
header (a trick to make scanners skip a member; such a member is also read as if in the
clear, so a payload inside is found). Every member is then scanned by its
content, so a PyTorch archive is read whatever its inner folder is called.
"""

from __future__ import annotations

import bz2
import copy
import gzip
import io
import itertools
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO, Any, ClassVar

from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import HEAD_SIZE, MAX_DEPTH, Item, Nested

__all__ = ["CompressedScanner", "SevenZipScanner", "TarScanner", "ZipScanner"]

TORCH_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin"}
_SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"
_BOMB_RATIO = 200
_BOMB_SIZE = 1024**3
_CHUNK = 1 << 20
_ENCRYPTED = 0x1  # general purpose flag bit 0


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or ".." in path.parts or (len(name) > 1 and name[1] == ":")


class ZipScanner:
    name: ClassVar[str] = "zip"

    def accepts(self, item: Item) -> bool:
        return item.head[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        out: list[Finding] = []
        with item.seekable() as raw:
            try:
                archive = zipfile.ZipFile(raw)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                return [Finding(item.location, "zip.damaged", Severity.HIGH,
                                f"zip archive cannot be read ({exc})")]  # fmt: skip
            with archive:
                infos = archive.infolist()
                out += self._structure(item, raw, infos)
                members = {i.filename for i in infos}
                for info in infos:
                    if info.is_dir():
                        continue
                    out += self._member(item, archive, info, nested)
                out += self._kind(item, members)
        return out

    def _structure(self, item: Item, raw: IO[bytes], infos: list[zipfile.ZipInfo]) -> list[Finding]:
        out: list[Finding] = []
        seen: set[str] = set()
        spans: list[tuple[int, int, str]] = []
        for info in infos:
            where = f"{item.location}:{info.filename}"
            if info.filename in seen:
                out.append(Finding(where, "zip.duplicate-name", Severity.HIGH,
                                   "the archive holds two entries with this name; readers "
                                   "disagree on which one counts"))  # fmt: skip
            seen.add(info.filename)
            if _unsafe_name(info.filename):
                out.append(Finding(where, "zip.path-traversal", Severity.HIGH,
                                   "entry name leaves the extraction folder"))  # fmt: skip
            raw.seek(info.header_offset)
            header = raw.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                out.append(
                    Finding(
                        where,
                        "zip.bad-local-header",
                        Severity.HIGH,
                        "the central directory points at no local file header",
                    )
                )
                continue  # fmt: skip
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            local = raw.read(name_len)
            flags = struct.unpack("<H", header[6:8])[0]
            if info.flag_bits & _ENCRYPTED:
                out.append(Finding(where, "zip.encrypted-member", Severity.HIGH,
                                   "flagged as encrypted: what it holds cannot be vouched for, "
                                   "so it is not passed (scanned as if stored in the "
                                   "clear)"))  # fmt: skip
            elif flags & _ENCRYPTED:
                out.append(Finding(where, "zip.encrypted-member", Severity.HIGH,
                                   "its local header says encrypted and the central directory "
                                   "does not: readers disagree on it (PyTorch loads it, "
                                   "scanners that follow the flag skip it)"))  # fmt: skip
            local_name = local.decode("utf-8" if flags & 0x800 else "cp437", "replace")
            if local_name != info.orig_filename:
                out.append(Finding(where, "zip.name-mismatch", Severity.HIGH,
                                   f"local header names {local_name!r} but the central "
                                   f"directory names {info.orig_filename!r}"))  # fmt: skip
            start = info.header_offset
            spans.append((start, start + 30 + name_len + extra_len + info.compress_size, where))
            if info.file_size > _BOMB_SIZE and info.file_size > _BOMB_RATIO * max(
                info.compress_size, 1
            ):
                out.append(
                    Finding(
                        where,
                        "zip.bomb",
                        Severity.MEDIUM,
                        f"expands {info.compress_size} bytes to {info.file_size}",
                    )
                )
        spans.sort()  # fmt: skip
        for (_s1, end1, where1), (start2, _e2, where2) in itertools.pairwise(spans):
            if start2 < end1:
                out.append(Finding(where2, "zip.overlapping-entries", Severity.HIGH,
                                   f"entry overlaps the data of {where1}"))  # fmt: skip
        return out

    def _member(
        self, item: Item, archive: zipfile.ZipFile, info: zipfile.ZipInfo, nested: Nested
    ) -> list[Finding]:
        where = f"{item.location}:{info.filename}"
        if info.file_size > _BOMB_SIZE and info.file_size > _BOMB_RATIO * max(
            info.compress_size, 1
        ):
            return []  # reported as a bomb, not expanded
        if info.flag_bits & _ENCRYPTED:  # read as if in the clear (a payload is found)
            info = copy.copy(info)
            info.flag_bits &= ~_ENCRYPTED
        try:
            with archive.open(info) as member:
                head = member.read(HEAD_SIZE)
                child = Item.from_bytes(info.filename, where, head, item.depth + 1)
                child.size = info.file_size
                interesting = item.depth < MAX_DEPTH and _wants_content(child)
                chunks = [head] if interesting else []
                while chunk := member.read(_CHUNK):  # reading to the end checks the CRC
                    if interesting:
                        chunks.append(chunk)
        except zipfile.BadZipFile as exc:
            return [Finding(where, "zip.bad-crc", Severity.HIGH,
                            f"member does not match its recorded CRC ({exc})")]  # fmt: skip
        except (OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
            return [Finding(where, "zip.unreadable-member", Severity.MEDIUM,
                            f"member cannot be read ({exc})")]  # fmt: skip
        if not interesting:
            return []
        return nested(Item.from_bytes(info.filename, where, b"".join(chunks), item.depth + 1))

    def _kind(self, item: Item, members: set[str]) -> list[Finding]:
        out: list[Finding] = []
        if item.suffix in TORCH_SUFFIXES and not any(m.endswith(".pkl") for m in members):
            out.append(Finding(item.location, "pytorch.no-data-pkl", Severity.MEDIUM,
                               "a PyTorch-named zip without a pickle record"))  # fmt: skip
        code = sorted(m for m in members if m.split("/")[-2:-1] == ["code"] or "/code/" in m)
        if any(m.endswith(".py") for m in code):
            out.append(Finding(item.location, "torchscript.code", Severity.MEDIUM,
                               "TorchScript archive: loading it runs the serialized code "
                               f"({len(code)} files under code/)"))  # fmt: skip
        return out


def _wants_content(child: Item) -> bool:
    """Whether a member's whole content is needed (anything some scanner accepts)."""
    from modeldepot.scan.scanners import accepting

    return accepting(child) is not None or child.name == "config.json"


class TarScanner:
    name: ClassVar[str] = "tar"

    def accepts(self, item: Item) -> bool:
        return len(item.head) > 262 and item.head[257:262] == b"ustar"

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        out: list[Finding] = []
        if item.suffix in TORCH_SUFFIXES:
            out.append(Finding(item.location, "pytorch.tar-container", Severity.HIGH,
                               "a PyTorch-named file that is a tar archive (the legacy format "
                               "older loaders still unpickle member by member)"))  # fmt: skip
        with item.seekable() as raw:
            try:
                archive = tarfile.TarFile(fileobj=raw, mode="r")
            except tarfile.TarError as exc:
                return [*out, Finding(item.location, "tar.damaged", Severity.HIGH, str(exc))]
            with archive:
                for member in archive:
                    where = f"{item.location}:{member.name}"
                    if _unsafe_name(member.name) or member.issym() or member.islnk():
                        out.append(
                            Finding(
                                where,
                                "tar.unsafe-entry",
                                Severity.HIGH,
                                "link or name that leaves the extraction folder",
                            )
                        )
                    if not member.isfile() or item.depth >= MAX_DEPTH:
                        continue  # fmt: skip
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        data = extracted.read()
                        out += nested(Item.from_bytes(member.name, where, data, item.depth + 1))
        return out


class SevenZipScanner:
    name: ClassVar[str] = "7z"

    def accepts(self, item: Item) -> bool:
        return item.head[:6] == _SEVEN_ZIP

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        if item.suffix in TORCH_SUFFIXES:
            return [Finding(item.location, "pytorch.7z-container", Severity.HIGH,
                            "a PyTorch-named file that is a 7z archive: PyTorch writes zip, "
                            "so this file was made to evade zip-based scanners")]  # fmt: skip
        message = "7z archive: its members cannot be inspected, so it is not passed"
        return [Finding(item.location, "archive.uninspectable", Severity.HIGH, message)]


_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"ZF", "joblib-zlib"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
    (b"\x5d\x00\x00", "lzma"),
)
_MAX_EXPANDED = 2 * 1024**3
_OPENERS: dict[str, Callable[[IO[bytes]], Any]] = {
    "gzip": gzip.open,
    "bz2": bz2.open,
    "xz": lzma.open,
    "lzma": lzma.open,
}


class CompressedScanner:
    """gzip, bz2, xz, lzma and zlib streams (joblib's compressed pickles) are expanded, within a
    bound, and their content scanned."""

    name: ClassVar[str] = "compressed"

    def accepts(self, item: Item) -> bool:
        return self._kind(item) is not None

    @staticmethod
    def _kind(item: Item) -> str | None:
        for magic, kind in _COMPRESSED:
            if item.head.startswith(magic):
                if kind == "joblib-zlib" or kind == "zlib":
                    return kind if item.depth < MAX_DEPTH else None
                return kind
        return None

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        kind = self._kind(item)
        data = item.read_all()
        try:
            if kind in _OPENERS:
                with _OPENERS[kind](io.BytesIO(data)) as stream:
                    expanded = stream.read(_MAX_EXPANDED + 1)
                if len(expanded) > _MAX_EXPANDED:
                    raise ValueError("expands beyond 2 GiB")
            else:
                payload = data[data.index(b"\x78") :] if kind == "joblib-zlib" else data
                expanded = zlib.decompressobj().decompress(payload, _MAX_EXPANDED)
        except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
            if kind in ("zlib", "lzma"):
                return []  # two magic bytes are a weak signal: not a stream after all
            return [Finding(item.location, "compressed.damaged", Severity.MEDIUM,
                            f"{kind} stream cannot be expanded ({exc})")]  # fmt: skip
        inner = item.name.removesuffix(".gz").removesuffix(".bz2").removesuffix(".xz")
        return nested(Item.from_bytes(inner, f"{item.location}:<{kind}>", expanded, item.depth + 1))
