"""Fetching a repository from a Hugging Face Hub: huggingface.co, another depot's `/hf`, or
any endpoint speaking the Hub's API, the way `huggingface_hub` asks it:

    GET {endpoint}/api/models/{repo}/revision/{rev}               the commit (`sha`)
    GET {endpoint}/api/models/{repo}/tree/{sha}?recursive=true    every file: size, sha256
                                                                  (LFS) or git blob id
    GET {endpoint}/{repo}/resolve/{sha}/{path}                    each file's bytes

The upstream is hostile until its bytes are checked. Every answer is bounded and timed
(`receive/remote.py`); the tree is paged only within the upstream's own origin, at most
`MAX_FILES` files; every path is checked (`paths.check_relpath`) before anything is fetched;
each file must be exactly the size the tree declares and hash to the sha256 it declares (the
git blob id, for a file outside LFS). Files are written into a folder the caller owns; a
failure leaves nothing there but what the caller removes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from modeldepot.errors import DepotError, FormatError, IntegrityError, ModelNotFound, UsageError
from modeldepot.paths import check_relpath
from modeldepot.receive.remote import Answer, Limits, Remote
from modeldepot.store import Progress

__all__ = ["MAX_FILES", "HubFile", "HubRepo", "check_repo_id", "fetch", "listing"]

MAX_FILES = 10_000
"""Files in one repository (a model has tens)."""
_MAX_PAGES = 1_000
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,96}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_WHO = "the hub"


def check_repo_id(repo: str) -> str:
    """A Hugging Face repo id (`[namespace/]name`, each `[A-Za-z0-9_.-]`, no `..` or `--`)."""
    parts = repo.split("/")
    if (not 1 <= len(parts) <= 2 or any(_SEGMENT.fullmatch(p) is None for p in parts)
            or ".." in repo or "--" in repo
            or any(p[0] in ".-" or p[-1] in ".-" for p in parts)):  # fmt: skip
        raise UsageError(f"{repo!r} is not a Hugging Face repo id ([namespace/]name)")
    return repo


class _Lfs(BaseModel):
    oid: str | None = None
    sha256: str | None = None
    size: int


class _Entry(BaseModel):
    type: str
    path: str
    size: int = 0
    oid: str | None = None
    lfs: _Lfs | None = None


class _Info(BaseModel):
    sha: str


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None
    """Declared for a file in LFS."""
    git: str | None
    """The git blob id, declared for every file (checked for one outside LFS)."""


@dataclass(frozen=True)
class HubRepo:
    """A fetched repository: where from, which commit, and each file's path and sha256."""

    endpoint: str
    repo: str
    revision: str
    commit: str
    files: tuple[tuple[str, str], ...]
    """(path, sha256 hex) of each file, as written under the caller's folder."""


def _check(answer: Answer, what: str) -> None:
    code = answer.headers.get("x-error-code", "")
    message = answer.headers.get("x-error-message", "")[:300]
    if code in ("RepoNotFound", "RevisionNotFound", "EntryNotFound") or answer.status == 404:
        raise ModelNotFound(f"{what}: not on the hub ({code or 404}{': ' if message else ''}"
                            f"{message})")  # fmt: skip
    if code == "GatedRepo" or answer.status in (401, 403):
        raise DepotError(f"{what}: the hub refused access ({answer.status}"
                         f"{': ' if message else ''}{message})")  # fmt: skip
    if answer.status != 200:
        raise DepotError(f"{what}: the hub answered {answer.status}: {message or answer.text}")


def _commit(remote: Remote, endpoint: str, repo: str, revision: str) -> str:
    what = f"{repo}@{revision}"
    answer = remote.get(f"{endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}",
                        what)  # fmt: skip
    _check(answer, what)
    try:
        sha = _Info.model_validate(answer.json(what)).sha
    except ValidationError:
        raise FormatError(f"{what}: the hub's model info names no commit") from None
    if _HEX40.fullmatch(sha) is None:
        raise FormatError(f"{what}: the hub names the commit {sha[:80]!r}, not 40 hex digits")
    return sha


def _file(entry: _Entry, what: str) -> HubFile:
    try:
        check_relpath(entry.path)
    except DepotError as exc:
        raise type(exc)(f"{what}: {exc}; nothing was fetched") from None
    sha256 = (entry.lfs.sha256 or entry.lfs.oid) if entry.lfs else None
    if entry.size < 0 or (entry.lfs is not None and entry.lfs.size != entry.size):
        raise FormatError(f"{what}: {entry.path!r} has an impossible size")
    if sha256 is not None and _HEX64.fullmatch(sha256) is None:
        raise FormatError(f"{what}: {entry.path!r} names no sha256")
    git = entry.oid if entry.oid and _HEX40.fullmatch(entry.oid) else None
    if sha256 is None and git is None:
        raise FormatError(f"{what}: the hub declares no hash for {entry.path!r}")
    return HubFile(entry.path, entry.size, sha256, git)


def listing(remote: Remote, endpoint: str, repo: str, commit: str) -> list[HubFile]:
    """Every file of `repo` at `commit` (dot files left out: `.gitattributes`), checked."""
    what = f"{repo}@{commit}"
    url: str | None = f"{endpoint}/api/models/{repo}/tree/{commit}?recursive=true&expand=false"
    origin = httpx.URL(endpoint).copy_with(path="/", query=None)
    files: dict[str, HubFile] = {}
    for _ in range(_MAX_PAGES):
        if url is None:
            break
        answer = remote.get(url, what)
        _check(answer, what)
        page = answer.json(what)
        if not isinstance(page, list):
            raise FormatError(f"{what}: the hub's tree is not a list")
        for raw in page:
            try:
                entry = _Entry.model_validate(raw)
            except ValidationError as exc:
                raise FormatError(f"{what}: a tree entry is not one ({exc.errors()[0]['msg']})"
                                  ) from None  # fmt: skip
            if entry.type != "file":
                continue
            found = _file(entry, what)  # its path checked before anything else
            if any(p.startswith(".") for p in found.path.split("/")):
                continue  # .gitattributes and the like: not the model's
            if found.path in files:
                raise FormatError(f"{what}: the tree lists {found.path!r} twice")
            files[found.path] = found
            if len(files) > MAX_FILES:
                raise FormatError(f"{what}: more than {MAX_FILES} files; refused")
        following = httpx.Response(200, headers=answer.headers).links.get("next", {}).get("url")
        if following and httpx.URL(following).copy_with(path="/", query=None) != origin:
            raise FormatError(f"{what}: the hub's next page is on another server; refused")
        url = following
    else:
        raise FormatError(f"{what}: more than {_MAX_PAGES} pages of files; refused")
    if not files:
        raise FormatError(f"{what}: the repository holds no files")
    folders = {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}
    if clash := sorted(folders & set(files)):
        raise FormatError(f"{what}: {clash[0]!r} is both a file and a folder; refused")
    return sorted(files.values(), key=lambda f: f.path)


def fetch(
    endpoint: str,
    repo: str,
    revision: str,
    dest: Path,
    *,
    token: str | None = None,
    limits: Limits | None = None,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
) -> HubRepo:
    """Fetch every file of `repo` at `revision` from the hub at `endpoint` into the empty
    folder `dest`, each checked against its declared size and hash."""
    check_repo_id(repo)
    endpoint = endpoint.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with Remote(_WHO, limits, headers=headers, transport=transport) as remote:
        commit = _commit(remote, endpoint, repo, revision)
        files = listing(remote, endpoint, repo, commit)
        fetched = []
        for f in files:
            what = f"{repo}@{commit[:12]}: {f.path}"
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"{endpoint}/{repo}/resolve/{commit}/{quote(f.path)}"
            got = remote.download(url, what, target, f.size, _check,
                                  declared_by="the hub's tree", progress=progress)  # fmt: skip
            if (got.sha256 != f.sha256) if f.sha256 else (got.git != f.git):
                target.unlink()
                raise IntegrityError(f"{what}: the bytes the hub sent hash to sha256:"
                                     f"{got.sha256}, not what its tree declares; nothing was "
                                     "stored")  # fmt: skip
            fetched.append((f.path, got.sha256))
    return HubRepo(endpoint, repo, revision, commit, tuple(fetched))
