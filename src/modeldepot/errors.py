"""Every error modeldepot raises on purpose.

                                                                              HTTP
    DepotError                  base; its message tells the user what to do          500
    ├── UsageError              the request itself is malformed (exit code 2)        400
    │   └── InvalidReference    a model name that does not follow the grammar        400
    ├── NotFound                a path, model, tag or blob that does not exist       404
    │   ├── ModelNotFound                                                            404
    │   └── PackageNotInstalled a package (a packaged model's, a feature's) missing  501
    ├── FormatError             a file truncated, corrupt or not what it claims      400
    │   ├── UnsupportedFormat   no importer recognises the input                     415
    │   └── UnsafePath          a file path from outside that could leave its folder 400
    ├── IntegrityError          stored or shipped bytes do not match their digest    500
    ├── ConflictError           the operation would break an invariant (tag in use)  409
    ├── StoreLocked             another process holds the store (garbage collection) 503
    └── PluginError             an installed format, scanner or engine fails to load 500

The command line maps `UsageError` to exit code 2 and every other `DepotError` to 1; the HTTP
server answers each with its class's `http_status` (the right column), so an error whose class
says nothing more (the base, an outage) is the server's, never the client's.
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
    "PluginError",
    "StoreLocked",
    "UnsafePath",
    "UnsupportedFormat",
    "UsageError",
]


class DepotError(Exception):
    """Base of every error modeldepot raises on purpose."""

    exit_code = 1
    http_status = 500


class UsageError(DepotError):
    """The request is malformed: fix the command or call."""

    exit_code = 2
    http_status = 400


class InvalidReference(UsageError):
    """A model name does not follow `[namespace/]name[:tag][@sha256:<hex>]`."""


class NotFound(DepotError):
    """A path, model, tag or blob does not exist."""

    http_status = 404


class ModelNotFound(NotFound):
    """No model in the registry answers to this name."""


class PackageNotInstalled(NotFound):
    """A Python package is not installed: a packaged model's, or an optional feature's (the
    message names the extra to install)."""

    http_status = 501


class FormatError(DepotError):
    """A file is truncated, corrupt, or not in the format it claims."""

    http_status = 400


class UnsupportedFormat(FormatError):
    """No importer recognises the input."""

    http_status = 415


class UnsafePath(FormatError):
    """A file path from outside (a remote manifest, an imported folder, a file name) is
    absolute, climbs out of its folder, or is malformed (see `modeldepot.paths`)."""


class IntegrityError(DepotError):
    """Bytes do not match the digest recorded for them."""


class ConflictError(DepotError):
    """The operation would break an invariant of the store or registry."""

    http_status = 409


class StoreLocked(DepotError):
    """Another process holds the store exclusively."""

    http_status = 503


class PluginError(DepotError):
    """An installed plugin (a format, scanner or engine entry point) fails to load."""
