"""File paths that come from outside, checked in this one place before anything is written.

A model's files keep the relative paths they had in their folder (`tokenizer/vocab.json`); the
depot lays them out again under its home to scan, sign and serve them. Those paths arrive from
places the depot does not control: a remote manifest's `org.cncf.model.filepath` (another
depot, an OCI registry), the folder being imported, a Modelfile, a batch file's name. Each is
passed through `check_relpath` where it is received, and again where the depot writes under it
(`store.folders.materialize`), so a hostile one is refused with one line instead of creating a
file outside its folder.

A path is accepted when it is:

- a non-empty string of at most `MAX_PATH_LENGTH` characters and `MAX_PATH_DEPTH` segments,
  each segment at most `MAX_SEGMENT_BYTES` bytes of UTF-8 (what a filesystem takes);
- relative, with POSIX separators: no leading `/`, no `\\`, no drive (`C:`);
- made of plain segments: none empty (`a//b`, a trailing `/`), none `.` or `..`;
- free of control characters (NUL, newline, escape...).

So an accepted path is already in its normal form: two different accepted paths name two
different files.

A local folder being imported is checked too (`check_links`): a link inside it that leads out
of it (`weights.safetensors -> ~/.ssh/id_rsa`) would have the depot read and store a
file nobody meant to give it, so the whole folder is refused.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from modeldepot.errors import UnsafePath

__all__ = ["MAX_PATH_DEPTH", "MAX_PATH_LENGTH", "MAX_SEGMENT_BYTES", "check_links",
           "check_relpath"]  # fmt: skip

MAX_PATH_LENGTH = 1024
"""Characters in a whole path."""
MAX_PATH_DEPTH = 32
"""Segments in a path (`a/b/c` has 3)."""
MAX_SEGMENT_BYTES = 255
"""Bytes (UTF-8) in one segment: the longest file name Linux filesystems take."""

_DRIVE = re.compile(r"[A-Za-z]:")


def _problem(path: object) -> str | None:
    """Why `path` is refused, or None when it is a safe relative path."""
    if not isinstance(path, str):
        return f"it is a {type(path).__name__}, not text"
    if not path:
        return "it is empty"
    if len(path) > MAX_PATH_LENGTH:
        return f"it is longer than {MAX_PATH_LENGTH} characters"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in path):
        return "it holds a control character"
    if path.startswith("/"):
        return "it is absolute"
    if "\\" in path:
        return "it holds a backslash (paths use /)"
    if _DRIVE.match(path):
        return "it names a drive"
    segments = path.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        return f"it is deeper than {MAX_PATH_DEPTH} folders"
    for segment in segments:
        if segment == "..":
            return "it climbs out of its folder (..)"
        if segment == ".":
            return "it holds a '.' segment"
        if not segment:
            return "it holds an empty segment (// or a trailing /)"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"a name in it is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def check_relpath(path: object, what: str = "file path") -> str:
    """`path` itself when it is a safe relative file path (see the module's docstring);
    otherwise raises UnsafePath with one line naming `what`, the path and the reason."""
    problem = _problem(path)
    if problem is not None:
        shown = repr(path) if len(repr(path)) <= 120 else repr(path)[:117] + "..."
        raise UnsafePath(f"{what} {shown} is refused: {problem}")
    assert isinstance(path, str)
    return path


def check_links(folder: Path) -> None:
    """Raises UnsafePath, with one line, when a link anywhere under `folder` (links to folders
    are not followed) resolves to a place outside it."""
    root = folder.resolve()
    for here, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            entry = Path(here, name)
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                raise UnsafePath(
                    f"{entry} is refused: it links to {os.readlink(entry)}, outside {folder} "
                    "(copy the files into the folder, e.g. `hf download --local-dir`)"
                )
