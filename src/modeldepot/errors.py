"""Every error modeldepot raises on purpose.

    DepotError                      base; its message tells the user what to do
    ├── UsageError                  the request itself is malformed (exit code 2)
    │   └── InvalidReference        a model name that does not follow the grammar
    ├── NotFound                    a path, model, tag or blob that does not exist
    │   ├── ModelNotFound
    │   └── PackageNotInstalled     a packaged model whose Python package is missing
    ├── FormatError                 a file that is truncated, corrupt or not what it claims
    │   ├── UnsupportedFormat       no importer recognises the input
    │   └── UnsafePath              a file path from outside that could leave its folder
    ├── IntegrityError              stored or shipped bytes do not match their digest
    ├── ConflictError               the operation would break an invariant (e.g. tag in use)
    └── StoreLocked                 another process holds the store for garbage collection

The command line maps `UsageError` to exit code 2 and every other `DepotError` to 1.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "DepotError",
    "FormatError",
    "IntegrityError",
    "InvalidReference",
    "ModelNotFound",
    "NotFound",
    "PackageNotInstalled",
    "StoreLocked",
    "UnsafePath",
    "UnsupportedFormat",
    "UsageError",
]


class DepotError(Exception):
    """Base of every error modeldepot raises on purpose."""

    exit_code = 1


class UsageError(DepotError):
    """The request is malformed: fix the command or call."""

    exit_code = 2


class InvalidReference(UsageError):
    """A model name does not follow `[namespace/]name[:tag][@sha256:<hex>]`."""


class NotFound(DepotError):
    """A path, model, tag or blob does not exist."""


class ModelNotFound(NotFound):
    """No model in the registry answers to this name."""


class PackageNotInstalled(NotFound):
    """A Python package is not installed: a packaged model's, or an optional feature's (the
    message names the extra to install)."""


class FormatError(DepotError):
    """A file is truncated, corrupt, or not in the format it claims."""


class UnsupportedFormat(FormatError):
    """No importer recognises the input."""


class UnsafePath(FormatError):
    """A file path from outside (a remote manifest, an imported folder, a file name) is
    absolute, climbs out of its folder, or is malformed (see `modeldepot.paths`)."""


class IntegrityError(DepotError):
    """Bytes do not match the digest recorded for them."""


class ConflictError(DepotError):
    """The operation would break an invariant of the store or registry."""


class StoreLocked(DepotError):
    """Another process holds the store exclusively."""
