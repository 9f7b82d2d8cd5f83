"""Errors as the Hugging Face Hub gives them, so `huggingface_hub` raises its own types.

The client reads the kind of an error from the `X-Error-Code` header and shows the text of
`X-Error-Message` and of the body's `error`:

    RepoNotFound      404  RepositoryNotFoundError   no such model (or not a depot name)
    RevisionNotFound  404  RevisionNotFoundError     the model has no such tag or version
    EntryNotFound     404  RemoteEntryNotFoundError  the version has no such file or folder
    GatedRepo         403  GatedRepoError            the depot refuses it: pending,
                                                     quarantined, refused by the policy, or
                                                     outside the key's scope
    RepoNotFound      401  RepositoryNotFoundError   no key ("make sure you are authenticated",
                                                     as the Hub answers without a token)
    (none)            401  HfHubHTTPError            a wrong key (the Hub's exact words)

An entry that does not exist carries `X-Repo-Commit`, so the client remembers its absence for
that commit and does not ask again.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

__all__ = ["ENTRY", "GATED", "REPO", "REVISION", "WRONG_KEY", "HubError", "hub_error_handler"]

REPO = "RepoNotFound"
REVISION = "RevisionNotFound"
ENTRY = "EntryNotFound"
GATED = "GatedRepo"
WRONG_KEY = "Invalid credentials in Authorization header"
"""What the Hub says of a token it does not know (the client tells it from a missing repo by
these words)."""
_HEADER_TEXT = 1024


class HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None,
                 extra: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.commit = commit
        self.extra = extra or {}

    @property
    def headers(self) -> dict[str, str]:
        found = {"X-Error-Message": _header_text(str(self))}
        if self.code:
            found["X-Error-Code"] = self.code
        if self.commit:
            found["X-Repo-Commit"] = self.commit
        return found | self.extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self)}, status_code=self.status, headers=self.headers)


def _header_text(message: str) -> str:
    """One line of printable ASCII (a header cannot carry more): names from outside are
    escaped, never passed through."""
    line = " ".join(message.split())[:_HEADER_TEXT]
    return "".join(ch if " " <= ch <= "~" else ascii(ch)[1:-1] for ch in line)


async def hub_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    return exc.response()
